//! `carnet unlock` in tests: commands run with no key at all (only what `unlock` kept can open
//! the vault), a guard that locks the vault again when a test ends (even by a panic), and the
//! vault's secret key as text, to look for it in files.

use std::path::Path;

use super::{TestCommand, Vault, carnet};

/// Whether this machine's kernel keyring takes a key (Docker's default seccomp profile, for
/// one, refuses keyctl): the unlock tests need it. Without it they stop at their first line,
/// saying why, unless CARNET_REQUIRE_INTEROP=1 asks for every facility the tests use.
pub fn kernel_keyring() -> bool {
    use carnet::session::SecretStore;
    let store = carnet::session::KernelKeyring;
    let name = format!("carnet:test-probe:{}", std::process::id());
    let works = store
        .put(&name, b"probe", std::time::Duration::from_secs(5))
        .is_ok();
    let _ = store.remove(&name);
    if !works {
        let test = std::thread::current()
            .name()
            .unwrap_or("a test")
            .to_string();
        if std::env::var("CARNET_REQUIRE_INTEROP").is_ok_and(|v| v == "1") {
            panic!("{test} needs the kernel keyring (keyctl), which refuses keys here");
        }
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            format!("skipped {test}: the kernel keyring refuses keys here (keyctl blocked?)\n")
                .as_bytes(),
        );
    }
    works
}

/// `carnet --vault DIR` with no passphrase source and no `-i`, run in the vault's root.
pub fn keyless(v: &Vault) -> TestCommand {
    keyless_on(v, &v.dir)
}

/// `keyless` on the vault folder `dir`.
pub fn keyless_on(v: &Vault, dir: &Path) -> TestCommand {
    let mut c = carnet();
    c.arg("--vault").arg(dir).current_dir(v.root());
    c
}

/// Locks the vault when dropped: an entry left in the kernel keyring would only wait for its
/// timeout, but a test should leave nothing behind.
pub struct Locked<'a>(pub &'a Vault);

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let _ = keyless(self.0).arg("lock").run();
    }
}

/// The vault's own identity (`AGE-SECRET-KEY-1…`), decrypted from `identity.age` with the
/// test passphrase.
pub fn vault_secret(v: &Vault) -> String {
    use std::io::Read;
    let pass = v.passphrase.clone().expect("a passphrase-mode vault");
    let bytes = std::fs::read(v.dir.join("identity.age")).unwrap();
    let id = age::scrypt::Identity::new(pass.into());
    let mut r = age::Decryptor::new(&bytes[..])
        .unwrap()
        .decrypt(std::iter::once(&id as &dyn age::Identity))
        .unwrap();
    let mut text = String::new();
    r.read_to_string(&mut text).unwrap();
    text.lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .expect("an identity line")
        .to_string()
}
