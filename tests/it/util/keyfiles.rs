//! Keys other than the patient's (guardians', recovery keys), carnet run with them, and what
//! the reference `age` CLI opens with them: the checks that a removed key opens nothing
//! (`files_opened_by`) and that a guardian's key reads nothing sealed from guardians
//! (`readable_with`). Never carnet's own code, so that a format bug cannot hide itself.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;

use super::{Out, Vault, carnet, files_under, s, temp_dir};

/// `carnet keygen` for a guardian: their key file and card, in `dir`.
pub fn guardian_key(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let card = dir.join(format!("{name}.card.toml"));
    let mut c = carnet();
    c.args([
        "keygen",
        "--name",
        name,
        "-o",
        s(&key),
        "--card",
        s(&card),
        "--unprotected",
    ]);
    c.ok();
    (key, card)
}

/// `key add --guardian --name NAME --card CARD EXTRA…`
pub fn add_guardian(name: &str, card: &Path, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "key",
        "add",
        "--guardian",
        "--name",
        name,
        "--card",
        s(card),
    ]
    .map(String::from)
    .to_vec();
    a.extend(extra.iter().map(|e| e.to_string()));
    a
}

/// carnet on `v` opened with the identity file `key` instead of the vault's own key.
pub fn with_key(v: &Vault, key: &Path, args: &[&str]) -> Out {
    key_on(&v.dir, key, args)
}

/// carnet on the vault folder `dir` (a copy, a restore) opened with the identity file `key`.
pub fn key_on(dir: &Path, key: &Path, args: &[&str]) -> Out {
    let mut c = carnet();
    c.arg("--vault").arg(dir).arg("-i").arg(key).args(args);
    c.run()
}

/// `age -d -i ID… FILE`: the plaintext, or None when no identity opens it.
fn age_open(age: &Path, file: &Path, ids: &[PathBuf]) -> Option<Vec<u8>> {
    let mut c = Command::new(age);
    c.arg("-d");
    for id in ids {
        c.arg("-i").arg(id);
    }
    let out = c.arg(file).output().unwrap();
    out.status.success().then_some(out.stdout)
}

/// Every file of the vault that `age -d -i KEY` opens (the reference tool, not carnet).
pub fn files_opened_by(age: &Path, vault: &Path, key: &Path) -> Vec<String> {
    files_under(vault)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "age"))
        .filter(|p| age_open(age, p, &[key.to_path_buf()]).is_some())
        .map(|p| p.strip_prefix(vault).unwrap().display().to_string())
        .collect()
}

/// The age files carried inside `plain` as standard base64 (a sealed log line's `age`, a sealed
/// grant): every run of base64 characters that decodes to something starting as an age file.
fn carried_age_files(plain: &[u8]) -> Vec<Vec<u8>> {
    let is_b64 = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=');
    plain
        .split(|b| !is_b64(b))
        .filter(|run| run.len() >= 40)
        .filter_map(|run| {
            let e = base64::engine::general_purpose::STANDARD;
            let ne = base64::engine::general_purpose::STANDARD_NO_PAD;
            e.decode(run).or_else(|_| ne.decode(run)).ok()
        })
        .filter(|bytes| bytes.starts_with(b"age-encryption.org/v1\n"))
        .collect()
}

/// Everything someone holding `key` can read in the vault folder with the reference `age` and a
/// base64 decoder, as `(name, plaintext)` pairs (names relative to the vault; `PATH#N` for the
/// N-th age file carried as base64 inside PATH's plaintext):
/// - the files in clear (config, index);
/// - every `.age` file that `age -d` opens with `key`, or with an identity (`AGE-SECRET-KEY-1…`
///   line) found in a plaintext already read — a slot holds the vault identity, so the holder of
///   a slot's key reads what that identity opens, and so on until nothing new opens;
/// - every age file carried in those plaintexts as base64 (sealed log lines, sealed grants) that
///   these identities open, recursively.
pub fn readable_with(age: &Path, vault: &Path, key: &Path) -> Vec<(String, Vec<u8>)> {
    let scratch = temp_dir("carnet-age-scan-");
    let mut ids = vec![key.to_path_buf()];
    let mut secrets = BTreeSet::new();
    let mut readable = Vec::new();
    // (name, file, how many identities it was tried with)
    let mut pending: Vec<(String, PathBuf, usize)> = Vec::new();
    for p in files_under(vault) {
        let name = p.strip_prefix(vault).unwrap().display().to_string();
        if p.extension().is_some_and(|e| e == "age") {
            pending.push((name, p, 0));
        } else if name != "lock" {
            readable.push((name, fs::read(&p).unwrap()));
        }
    }
    let mut carried = 0usize;
    while pending.iter().any(|(_, _, tried)| *tried < ids.len()) {
        let mut next = Vec::new();
        for (name, file, tried) in std::mem::take(&mut pending) {
            if tried == ids.len() {
                next.push((name, file, tried));
                continue;
            }
            let Some(plain) = age_open(age, &file, &ids) else {
                next.push((name, file, ids.len()));
                continue;
            };
            for line in String::from_utf8_lossy(&plain).lines() {
                let line = line.trim();
                if line.starts_with("AGE-SECRET-KEY-1") && secrets.insert(line.to_string()) {
                    let f = scratch
                        .path()
                        .join(format!("identity-{}.txt", secrets.len()));
                    fs::write(&f, format!("{line}\n")).unwrap();
                    ids.push(f);
                }
            }
            for (n, inner) in carried_age_files(&plain).into_iter().enumerate() {
                carried += 1;
                let f = scratch.path().join(format!("carried-{carried}.age"));
                fs::write(&f, inner).unwrap();
                next.push((format!("{name}#{n}"), f, 0));
            }
            readable.push((name, plain));
        }
        pending = next;
    }
    readable
}
