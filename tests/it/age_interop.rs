//! A patient holding only the reference Go `age` CLI and their key can recover every document:
//! stored objects are plain age files that `age -d` opens, with an external identity file or
//! with the vault's own passphrase-protected `identity.age`.
//!
//! These tests need `age` and `age-keygen` on PATH, and `script` to give `age` a terminal; each is
//! skipped when its tool is missing, or fails under CARNET_REQUIRE_INTEROP=1 (`util::tools`).

use crate::util;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use util::*;

/// The single object the vault holds.
fn only_object(v: &Vault) -> std::path::PathBuf {
    let objs = v.objects();
    assert_eq!(objs.len(), 1, "expected one object, found {objs:?}");
    let o = &objs[0];
    assert_eq!(o.extension().and_then(|e| e.to_str()), Some("age"), "{o:?}");
    o.clone()
}

#[test]
fn age_cli_decrypts_an_object_with_the_external_identity_file() {
    let Some(age) = require_tool(Tool::Age) else {
        return;
    };
    let Some(keygen) = require_tool(Tool::AgeKeygen) else {
        return;
    };
    let mut v = Vault::new();
    let key = v.root().join("key.txt");
    let out = Command::new(keygen).args(["-o", s(&key)]).output().unwrap();
    assert!(out.status.success(), "age-keygen: {}", text(&out.stderr));

    // Opened by the key alone: no passphrase anywhere.
    v.identity = Some(key.clone());
    v.passphrase = None;
    v.ok(&["init"]);
    assert!(
        !v.dir.join("identity.age").exists(),
        "an external-identity vault stores no identity of its own"
    );

    let bytes = pseudo_random(200_000, 11);
    v.add(
        &v.write("irm.bin", &bytes),
        &["--title", "IRM-interop-externe"],
    );
    let obj = only_object(&v);

    let plain = v.root().join("decrypted.bin");
    let out = Command::new(&age)
        .args(["-d", "-i", s(&key), "-o", s(&plain), s(&obj)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "age -d -i KEY failed: {}",
        text(&out.stderr)
    );
    assert_bytes_eq(
        &std::fs::read(&plain).unwrap(),
        &bytes,
        "object decrypted by the age CLI",
    );

    // The metadata is recoverable the same way, as FORMAT.md tells: the manifest is an age
    // file naming the shard objects, and the document shard, an age file too, names the
    // document and its object.
    let age_d = |file: &Path| -> serde_json::Value {
        let out = Command::new(&age)
            .args(["-d", "-i", s(&key), s(file)])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "age -d {}: {}",
            file.display(),
            text(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("age -d gives JSON")
    };
    let root = age_d(&v.dir.join("manifest.age"));
    let shards = root["shards"]["documents"].as_object().unwrap();
    assert_eq!(shards.len(), 1);
    let shard_obj = shards.values().next().unwrap()["object"].as_str().unwrap();
    let shard = age_d(
        &v.dir
            .join("objects")
            .join(&shard_obj[..2])
            .join(format!("{shard_obj}.age")),
    );
    let doc = &shard["documents"][0];
    assert_eq!(
        doc["title"], "IRM-interop-externe",
        "the document shard decrypted by age should name the document"
    );
    assert!(obj.ends_with(format!("{}.age", doc["object"].as_str().unwrap())));
}

/// Runs `age -d -i IDENTITY -o OUT OBJ` on a pseudo-terminal made by `script` (the Go CLI reads
/// passphrases only from a terminal) and types `passphrase` when it asks. Returns the exit
/// status and what was shown on the terminal.
fn age_decrypt_typing_passphrase(
    script: &Path,
    age: &Path,
    identity: &Path,
    out: &Path,
    obj: &Path,
    passphrase: &str,
) -> (std::process::ExitStatus, String) {
    let line = format!(
        "'{}' -d -i '{}' -o '{}' '{}'",
        age.display(),
        identity.display(),
        out.display(),
        obj.display()
    );
    let mut child = Command::new(script)
        .args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut shown = Vec::new();
    while !text(&shown).contains("passphrase") {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => shown.extend(chunk),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "age never asked for the passphrase; terminal showed: {}",
                    text(&shown)
                );
            }
        }
    }
    // Typed now, the line waits in the terminal's input buffer until age reads it: switching
    // echo off (TCSETS) does not flush pending input, so nothing here waits for age.
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{passphrase}\n").as_bytes())
        .unwrap();
    stdin.flush().unwrap();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("age did not finish; terminal showed: {}", text(&shown));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(stdin);
    reader.join().unwrap();
    shown.extend(rx.try_iter().flatten());
    (status, text(&shown))
}

#[test]
fn age_cli_decrypts_an_object_with_the_vault_identity_file_and_the_passphrase() {
    let Some(age) = require_tool(Tool::Age) else {
        return;
    };
    let Some(script) = require_tool(Tool::Script) else {
        return;
    };
    let v = Vault::init();
    let identity = v.dir.join("identity.age");
    assert!(identity.is_file(), "a passphrase vault keeps identity.age");
    let bytes = pseudo_random(150_000, 12);
    v.add(&v.write("echo.bin", &bytes), &[]);
    let obj = only_object(&v);

    // The wrong passphrase opens nothing: the passphrase really is what protects the key.
    let wrong = v.root().join("wrong.bin");
    let (status, shown) =
        age_decrypt_typing_passphrase(&script, &age, &identity, &wrong, &obj, "not the passphrase");
    assert!(
        !status.success(),
        "age accepted a wrong passphrase: {shown}"
    );
    assert!(
        !wrong.exists() || std::fs::read(&wrong).unwrap().is_empty(),
        "nothing is decrypted with a wrong passphrase"
    );

    let plain = v.root().join("decrypted.bin");
    let (status, shown) =
        age_decrypt_typing_passphrase(&script, &age, &identity, &plain, &obj, PASSPHRASE);
    assert!(status.success(), "age -d -i identity.age failed: {shown}");
    assert_bytes_eq(
        &std::fs::read(&plain).unwrap(),
        &bytes,
        "object decrypted by the age CLI with the vault passphrase",
    );
}
