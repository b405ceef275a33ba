//! Sealing what is hidden from guardians, on a long log (issue 11): the one part of `hide
//! --from guardians` whose cost grows with the record is sealing the earlier log entries that
//! named the document, which reads every segment. Measured on a vault whose log holds
//! `BENCH_ENTRIES` (100,000) entries, written through the library as carnet writes them:
//! - the first `hide --from guardians` of a document named by one entry in 1,000 (the sealed
//!   key is made, its object re-encrypted, 100 entries sealed in place);
//! - `hide --from guardians` of a document named by every other entry (the worst case: every
//!   segment rewritten, 99,900 entries sealed);
//! - appending (`show`) of the sealed document against a visible one, and `log -n 20` as the
//!   patient (opening sealed lines) and as the guardian (skipping them).
//!
//! Run with `cargo bench --bench sealed` (env `BENCH_ENTRIES`). The vault's passphrase is set with
//! a lowered scrypt cost (`CARNET_SCRYPT_LOG_N=10`): what is measured is sealing, not scrypt.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use age::secrecy::{ExposeSecret, SecretString};
mod common;

use carnet::keys::{Passphrase, PassphraseSource};
use carnet::vault::KeyOpts;

const PASSPHRASE: &str = "bench passphrase";

struct Fixed;

impl Passphrase for Fixed {
    fn get(&self, _prompt: &str, _confirm: bool) -> anyhow::Result<SecretString> {
        Ok(SecretString::from(PASSPHRASE.to_string()))
    }
}

/// carnet on `vault`, as the patient (passphrase) or as the holder of `key`.
fn carnet(vault: &Path, key: Option<&Path>, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_carnet"));
    c.arg("--vault").arg(vault);
    if let Some(k) = key {
        c.arg("-i").arg(k);
    }
    c.args(args)
        .env_remove("CARNET_VAULT")
        .env("CARNET_PASSPHRASE", PASSPHRASE)
        .env("CARNET_SCRYPT_LOG_N", "10")
        .stdin(Stdio::null());
    c
}

fn run(vault: &Path, key: Option<&Path>, args: &[&str]) -> (Duration, String) {
    let t = Instant::now();
    let out = carnet(vault, key, args).output().expect("carnet runs");
    let d = t.elapsed();
    assert!(
        out.status.success(),
        "carnet {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (d, String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn add(vault: &Path, dir: &Path, name: &str) -> String {
    let f = dir.join(name);
    std::fs::write(&f, format!("{name}\n")).unwrap();
    let (_, out) = run(vault, None, &["add", f.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v[0]["id"].as_str().unwrap().to_string()
}

fn main() {
    let entries: usize = std::env::var("BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let tmp = tempfile::Builder::new()
        .prefix("carnet-bench-sealed")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let vault: PathBuf = tmp.path().join("vault");
    run(&vault, None, &["init"]);
    let rare = add(&vault, tmp.path(), "rare.txt");
    let common = add(&vault, tmp.path(), "common.txt");
    let visible = add(&vault, tmp.path(), "visible.txt");
    let guardian = tmp.path().join("guardian.key");
    let id = age::x25519::Identity::generate();
    std::fs::write(&guardian, format!("{}\n", id.to_string().expose_secret())).unwrap();
    run(
        &vault,
        None,
        &[
            "key",
            "add",
            "--guardian",
            "--name",
            "papa",
            "--recipient",
            &id.to_public().to_string(),
        ],
    );
    let t = Instant::now();
    let opts = KeyOpts {
        identity: None,
        passphrase: PassphraseSource::new(Fixed),
        session: None,
    };
    // One entry in 1,000 names `rare`, the others `common`.
    common::fill_log(&vault, &opts, entries, |i| {
        if i % 1000 == 0 { &rare } else { &common }.clone()
    });
    eprintln!(
        "wrote a {entries}-entry log in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let (first, _) = run(&vault, None, &["hide", &rare, "--from", "guardians"]);
    let (worst, _) = run(&vault, None, &["hide", &common, "--from", "guardians"]);
    let show = |doc: &str| {
        let mut v: Vec<Duration> = (0..5)
            .map(|_| run(&vault, None, &["show", doc]).0)
            .collect();
        v.sort();
        v[2]
    };
    let (sealed, open) = (show(&rare), show(&visible));
    let (log_patient, _) = run(&vault, None, &["log", "-n", "20"]);
    let (log_guardian, _) = run(&vault, Some(&guardian), &["log", "-n", "20"]);
    let (verify, _) = run(&vault, None, &["verify"]);

    println!("carnet sealing benchmark, {entries}-entry log (one run each; show: median of 5)");
    println!(
        "  first hide --from guardians (1 in 1,000 entries name it): {:8.1} ms",
        ms(first)
    );
    println!(
        "  hide --from guardians, the document every other entry names: {:8.1} ms",
        ms(worst)
    );
    println!(
        "  show of a sealed document: {:8.1} ms   of a visible one: {:8.1} ms",
        ms(sealed),
        ms(open)
    );
    println!(
        "  log -n 20, patient: {:8.1} ms   guardian: {:8.1} ms",
        ms(log_patient),
        ms(log_guardian)
    );
    println!(
        "  verify (patient, every sealed line opened): {:8.1} ms",
        ms(verify)
    );
}
