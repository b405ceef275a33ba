//! A damaged or tampered object is never passed off as the document: `cat` and `export` stop
//! with the distinct "integrity" exit code 3, and `export` leaves no file behind.

use crate::util;

use std::fs;

use util::*;

const INTEGRITY: i32 = 3;

fn assert_damage_reported(v: &Vault, id: &str) {
    let out = v.run(&["cat", id]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(INTEGRITY), "cat: {err}");
    assert!(err.starts_with("error: the vault is damaged: "), "{err}");

    let dest = v.work.join("export");
    let out = v.run(&["export", id, "-o", s(&dest)]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(INTEGRITY), "export: {err}");
    assert!(err.starts_with("error: the vault is damaged: "), "{err}");
    assert_eq!(
        files_under(&dest),
        Vec::<std::path::PathBuf>::new(),
        "export left a file behind"
    );
}

#[test]
fn flipped_byte_in_an_object_is_reported_as_damage() {
    let v = Vault::init();
    let id = v.add(&v.write("r.bin", &pseudo_random(200_000, 61)), &[]);
    let obj = v.objects().remove(0);
    let mut b = fs::read(&obj).unwrap();
    let at = b.len() - 5000;
    b[at] ^= 1;
    fs::write(&obj, b).unwrap();
    assert_damage_reported(&v, &id);
}

#[test]
fn truncated_object_is_reported_as_damage() {
    let v = Vault::init();
    let id = v.add(&v.write("r.bin", &pseudo_random(200_000, 62)), &[]);
    let obj = v.objects().remove(0);
    let b = fs::read(&obj).unwrap();
    fs::write(&obj, &b[..b.len() - 100]).unwrap();
    assert_damage_reported(&v, &id);
}

/// Anyone can encrypt to the vault's public key, so a valid age file in the wrong place must
/// still be caught: here two documents' objects are swapped.
#[test]
fn swapped_objects_are_reported_as_damage() {
    let v = Vault::init();
    let a = v.add(&v.write("a.txt", b"document A\n"), &[]);
    v.add(&v.write("b.txt", b"document B\n"), &[]);
    let objs = v.objects();
    assert_eq!(objs.len(), 2);
    let (x, y) = (fs::read(&objs[0]).unwrap(), fs::read(&objs[1]).unwrap());
    fs::write(&objs[0], y).unwrap();
    fs::write(&objs[1], x).unwrap();
    assert_damage_reported(&v, &a);
}

/// Regression: `cat` used to stream a replaced object of the same size, and only fail at the
/// end (the plaintext hash), after the foreign bytes had reached stdout.
#[test]
fn cat_of_a_replaced_object_of_the_same_size_releases_nothing() {
    let v = Vault::init();
    let a = v.add(&v.write("a.txt", b"document A\n"), &[]);
    let obj = v.objects().remove(0);
    let size = fs::read(&obj).unwrap().len();
    // Anyone can encrypt to the public recipient; age's random "grease" stanza varies the size,
    // so try until the forgery is exactly as long as the real object.
    let config = fs::read_to_string(v.dir.join("carnet.toml")).unwrap();
    let recipient: age::x25519::Recipient = config
        .lines()
        .find_map(|l| l.strip_prefix("recipients = [\""))
        .and_then(|l| l.split('"').next())
        .unwrap()
        .parse()
        .unwrap();
    let forged = (0..5000)
        .map(|_| {
            let enc =
                age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
                    .unwrap();
            let mut out = Vec::new();
            let mut w = enc.wrap_output(&mut out).unwrap();
            std::io::Write::write_all(&mut w, b"FORGED DOC\n").unwrap();
            w.finish().unwrap();
            out
        })
        .find(|f| f.len() == size)
        .expect("a same-size forgery within 5000 tries");
    fs::write(&obj, forged).unwrap();
    let out = v.run(&["cat", &a]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "released: {:?}", text(&out.stdout));
}
