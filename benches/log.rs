//! Access-log and verify benchmark (issue 3): appending to a 100,000-entry log against an empty
//! one, `carnet log` over 100,000 entries, and `carnet verify` on a 10,000-document vault.
//!
//! Run with `cargo bench --bench log` (env `BENCH_ENTRIES`, `BENCH_DOCS`, `BENCH_RUNS`). The long
//! log is written directly through the library (sealed, chained and MAC'd exactly as carnet
//! writes it) because 100,000 separate commands would take most of an hour; every measurement
//! then runs the real `carnet` binary.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use carnet::keys::PassphraseSource;
use carnet::vault::KeyOpts;

fn env_n(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn carnet(vault: &Path, key: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_carnet"));
    c.arg("--vault").arg(vault).arg("-i").arg(key).args(args);
    c.env_remove("CARNET_VAULT")
        .env_remove("CARNET_PASSPHRASE")
        .stdin(Stdio::null());
    c
}

fn run(vault: &Path, key: &Path, args: &[&str]) -> Duration {
    let t = Instant::now();
    let out = carnet(vault, key, args)
        .stdout(Stdio::null())
        .output()
        .expect("carnet runs");
    let d = t.elapsed();
    assert!(
        out.status.success(),
        "carnet {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    d
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn keygen(dir: &Path) -> std::path::PathBuf {
    let id = age::x25519::Identity::generate();
    let path = dir.join("key.txt");
    use age::secrecy::ExposeSecret;
    std::fs::write(&path, format!("{}\n", id.to_string().expose_secret())).unwrap();
    path
}

fn init(dir: &Path, key: &Path, name: &str) -> std::path::PathBuf {
    let v = dir.join(name);
    let out = carnet(&v, key, &["init"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    v
}

fn main() {
    // `cargo bench` passes --bench; nothing else to parse.
    let entries = env_n("BENCH_ENTRIES", 100_000);
    let docs = env_n("BENCH_DOCS", 10_000);
    let runs = env_n("BENCH_RUNS", 9);
    let tmp = tempfile::Builder::new()
        .prefix("carnet-bench-log")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let key = keygen(tmp.path());

    // One document in each vault, so `show` has something to view (and log).
    let note = tmp.path().join("note.txt");
    std::fs::write(&note, "bench\n").unwrap();
    let small = init(tmp.path(), &key, "small");
    let big = init(tmp.path(), &key, "big");
    for v in [&small, &big] {
        run(v, &key, &["add", note.to_str().unwrap()]);
    }
    let t = Instant::now();
    let opts = KeyOpts {
        identity: Some(key.clone()),
        passphrase: PassphraseSource::default(),
        session: None,
    };
    common::fill_log(&big, &opts, entries, |_| {
        "0123456789abcdef0123456789abcdef".to_string()
    });
    eprintln!(
        "wrote a {entries}-entry log in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let id = {
        let out = carnet(&small, &key, &["ls", "--json"]).output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v[0]["id"].as_str().unwrap()[..8].to_string()
    };
    let big_id = {
        let out = carnet(&big, &key, &["ls", "--json"]).output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v[0]["id"].as_str().unwrap()[..8].to_string()
    };
    // Interleave the two vaults so background load hits both alike.
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        a.push(run(&small, &key, &["show", &id]));
        b.push(run(&big, &key, &["show", &big_id]));
    }
    let (a, b) = (median(a), median(b));
    let log_times: Vec<Duration> = (0..3).map(|_| run(&big, &key, &["log"])).collect();
    let log_json: Vec<Duration> = (0..3)
        .map(|_| run(&big, &key, &["log", "--json"]))
        .collect();
    let unlock: Vec<Duration> = (0..runs).map(|_| run(&big, &key, &["ls"])).collect();

    // verify on a vault of `docs` documents.
    let many = init(tmp.path(), &key, "many");
    let src = tmp.path().join("docs");
    std::fs::create_dir(&src).unwrap();
    for i in 0..docs {
        std::fs::write(
            src.join(format!("doc-{i:05}.txt")),
            format!("document {i}\n"),
        )
        .unwrap();
    }
    let t = Instant::now();
    run(&many, &key, &["add", src.to_str().unwrap()]);
    let add_many = t.elapsed();
    let verify: Vec<Duration> = (0..3).map(|_| run(&many, &key, &["verify"])).collect();

    let ok = |c: bool| if c { "met" } else { "MISSED" };
    let ratio = b.as_secs_f64() / a.as_secs_f64();
    println!("carnet access-log benchmark ({} runs, medians)", runs);
    println!("  append (show) on a 2-entry log:        {:8.1} ms", ms(a));
    println!(
        "  append (show) on a {entries}-entry log:  {:8.1} ms   ratio {ratio:.2} (target <= 1.2: {})",
        ms(b),
        ok(ratio <= 1.2)
    );
    let lg = median(log_times);
    let unlock_ms = ms(median(unlock));
    println!(
        "  carnet log, {entries} entries:           {:8.1} ms   (ls on that vault: {unlock_ms:.1} ms)",
        ms(lg)
    );
    println!(
        "  carnet log --json, {entries} entries:    {:8.1} ms",
        ms(median(log_json))
    );
    println!(
        "    beyond the unlock: {:.1} ms (target < 2000 ms: {})",
        ms(lg) - unlock_ms,
        ok(ms(lg) - unlock_ms < 2000.0)
    );
    let vf = median(verify);
    println!(
        "  carnet verify, {docs} documents:         {:8.1} ms (target < 2000 ms: {})",
        ms(vf),
        ok(vf < Duration::from_secs(2))
    );
    println!(
        "  (adding the {docs} documents in one call: {:.1} s)",
        add_many.as_secs_f64()
    );
}
