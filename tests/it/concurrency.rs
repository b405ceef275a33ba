//! Two `carnet add` run at the same time never lose an update: the writers' lock makes the
//! second re-read the manifest the first one wrote.

use crate::util;

use util::*;

fn spawn_add(v: &Vault, args: &[&str]) -> Spawned {
    v.cmd().arg("add").args(args).start()
}

#[test]
fn two_concurrent_adds_both_end_up_in_the_vault() {
    let v = Vault::init();
    let mut expected: Vec<String> = Vec::new();
    for round in 0..5 {
        let a = v.write(
            &format!("a-{round}.txt"),
            format!("document A, tour {round}\n").as_bytes(),
        );
        let b = v.write(
            &format!("b-{round}.bin"),
            &pseudo_random(100_000 + round, round as u64 + 100),
        );
        let ta = format!("A{round}");
        let tb = format!("B{round}");
        let ca = spawn_add(&v, &[s(&a), "--title", &ta]);
        let cb = spawn_add(&v, &[s(&b), "--title", &tb]);
        let oa = ca.wait();
        let ob = cb.wait();
        oa.assert_ok("");
        ob.assert_ok("");
        expected.push(ta);
        expected.push(tb);

        let mut titles = v.ls_titles(&[]);
        titles.sort();
        let mut want = expected.clone();
        want.sort();
        assert_eq!(titles, want, "documents listed after round {round}");
    }
    assert_eq!(v.objects().len(), 10, "one object per document");
    assert_eq!(
        files_under(&v.dir.join("tmp")),
        Vec::<std::path::PathBuf>::new(),
        "no temp file left behind"
    );
}

#[test]
fn two_concurrent_adds_of_the_same_content_store_it_once() {
    let v = Vault::init();
    for round in 0..3 {
        let bytes = pseudo_random(50_000, round + 200);
        let a = v.write(&format!("copie-a-{round}.bin"), &bytes);
        let b = v.write(&format!("copie-b-{round}.bin"), &bytes);
        let ca = spawn_add(&v, &[s(&a)]);
        let cb = spawn_add(&v, &[s(&b)]);
        let oa = ca.wait();
        let ob = cb.wait();
        oa.assert_ok("");
        ob.assert_ok("");
        let dups = [&oa, &ob]
            .iter()
            .filter(|o| text(&o.stderr).contains("already in vault as"))
            .count();
        assert_eq!(
            dups,
            1,
            "exactly one of the two should find the other's copy:\n{}\n{}",
            text(&oa.stderr),
            text(&ob.stderr)
        );
    }
    assert_eq!(v.ls(&[]).len(), 3);
    assert_eq!(v.objects().len(), 3, "a duplicate left an object behind");
}

/// Two `init` on the same folder at once: one must win and the other fail, and the vault must
/// open with the winner's key. Uses external identities (no scrypt) so both start together.
#[test]
fn two_concurrent_inits_on_one_folder_leave_one_working_vault() {
    let mut failures = Vec::new();
    for round in 0..30 {
        let v = Vault::new();
        let keys = [
            new_identity_file(v.root(), "k1.txt"),
            new_identity_file(v.root(), "k2.txt"),
        ];
        let children: Vec<Spawned> = keys
            .iter()
            .map(|k| v.cmd().arg("-i").arg(k).arg("init").start())
            .collect();
        let outs: Vec<Out> = children.into_iter().map(Spawned::wait).collect();
        let winners: Vec<usize> = (0..2).filter(|&i| outs[i].status.success()).collect();
        if winners.len() != 1 {
            failures.push(format!("round {round}: {} inits succeeded", winners.len()));
        }
        for &w in &winners {
            let out = v.cmd().arg("-i").arg(&keys[w]).arg("ls").run();
            if !out.status.success() {
                failures.push(format!(
                    "round {round}: init #{w} succeeded but its key does not open the vault: {}",
                    text(&out.stderr).lines().next().unwrap_or("")
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The same race in passphrase mode can leave `identity.age` from one init and `carnet.toml`
/// from the other: a vault that nobody can open, after both inits said "Created a vault".
#[test]
fn two_concurrent_passphrase_inits_leave_a_vault_that_opens() {
    let mut failures = Vec::new();
    for round in 0..30 {
        let v = Vault::new();
        let children: Vec<Spawned> = (0..2).map(|_| v.cmd().arg("init").start()).collect();
        let ok = children
            .into_iter()
            .map(Spawned::wait)
            .filter(|o| o.status.success())
            .count();
        let out = v.run(&["ls"]);
        if ok != 1 || !out.status.success() {
            failures.push(format!(
                "round {round}: {ok} inits succeeded; ls: {}",
                text(&out.stderr).lines().next().unwrap_or("")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_command_waiting_for_the_vault_lock_says_so_and_goes_on_once_it_is_free() {
    // A long `rekey` or backup holds the writers' lock: the next command used to wait without
    // a word, as if hung. The test holds the lock itself, so no timing is involved: carnet
    // says it waits before it blocks, and finishes once the lock is released.
    let v = Vault::init();
    let f = v.write("note.txt", b"attendre son tour\n");
    let held = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(v.dir.join("lock"))
        .unwrap();
    held.lock().unwrap();
    let mut child = v.cmd().args(["-v", "add"]).arg(&f).start();
    let stderr = child.child.stderr.take().unwrap();
    // Lines read on a thread: without the note, the test must fail, not wait for ever on a
    // carnet that blocks in silence (the deadline is a watchdog, not a wait for the result).
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let said = loop {
        match rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(l) if l.contains("waiting for another carnet command") => break true,
            Ok(_) => continue,
            Err(_) => break false,
        }
    };
    held.unlock().unwrap();
    assert!(said, "carnet did not say it waits for the vault lock");
    let _ = reader.join();
    let out = child.wait();
    assert_eq!(out.code, Some(0), "{out}");
    let listed = v.ok(&["ls", "--json"]).json();
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(1),
        "the waiting add went through"
    );
}

#[test]
fn a_kill_at_any_rename_of_a_command_leaves_a_vault_that_verifies() {
    // The index's top and its signature are two renames: a kill between them used to leave a
    // top its signature did not sign, which `verify` reported as damage until the next write.
    // Now the signed top before stays in tmp/ until both are in place.
    let Some(strace) = require_tool(Tool::Strace) else {
        return;
    };
    for args in [&["show", "ID"][..], &["add", "FILE", "--title", "Nouveau"]] {
        for n in 1.. {
            assert!(n < 80, "{args:?} makes fewer than 80 renames");
            let v = Vault::init();
            let first = v.write("premier.txt", b"premier document\n");
            let id = v.add(&first, &["--title", "Premier"]);
            let second = v.write("second.txt", b"second document\n");
            let args: Vec<&str> = args
                .iter()
                .map(|a| match *a {
                    "ID" => id.as_str(),
                    "FILE" => s(&second),
                    a => a,
                })
                .collect();
            let wrapper = kill_at(&strace, "renameat", n);
            let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
            let mut c = v.cmd_on(&v.dir, &wrapper);
            c.args(&args);
            if c.run().code == Some(0) {
                assert!(n > 1, "{args:?} made no rename to kill it at");
                break;
            }
            v.ok(&["verify"])
                .assert_ok(&format!("verify after {args:?} was killed at rename #{n}"));
            v.ok(&["ls"]);
            v.ok(&["verify"]);
        }
    }
}
