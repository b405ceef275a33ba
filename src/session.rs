//! `carnet unlock`: the vault's unwrapped identity kept for a while in the operating system's
//! secret store, never on disk, so that the next commands skip scrypt (seconds, 256 MiB).
//!
//! The store is a small trait (`SecretStore`): the Linux kernel keyring (`KernelKeyring`) in the
//! binary, a map in memory (`MemoryStore`) in tests. One entry per vault, named after the vault
//! id, holds the identity with the recipient it opens, who unlocked (the log's actor), which key
//! was unlocked and until when. The expiry is checked twice: against carnet's clock (`Ctx::now`,
//! which `CARNET_NOW` sets, so tests need not sleep) and by the store itself (the kernel drops
//! the key at its timeout even if carnet never runs again).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use age::secrecy::ExposeSecret;
use jiff::{SignedDuration, Timestamp};
use zeroize::Zeroizing;

use crate::config::Config;
use crate::domain::Actor;
use crate::error::Error;
use crate::keys::Unlocked;

/// The longest `carnet unlock --for`: a working day. A longer-lived key in memory is a key any
/// process of the session can read for longer; the passphrase is cheap to type once a day.
pub const MAX_FOR: SignedDuration = SignedDuration::from_hours(24);
/// The default of `carnet unlock --for`.
pub const DEFAULT_FOR: &str = "15m";

/// The first line of an entry: its format, so that a later carnet can change it.
const MAGIC: &str = "carnet-unlock/1";
/// An entry is a few hundred bytes; anything longer is not ours.
const MAX_ENTRY: usize = 4096;
/// The longest entry stored: what every store takes (Windows' credential blobs: 2,560 bytes).
const MAX_STORED: usize = 2560;

/// Where unlocked identities are kept: a store the operating system protects and expires.
pub trait SecretStore: Send + Sync {
    /// Stores `secret` under `name`, replacing any entry of that name, for at most `ttl` (the
    /// store removes it then, when it can).
    fn put(&self, name: &str, secret: &[u8], ttl: std::time::Duration) -> anyhow::Result<()>;
    /// The entry `name`, or `None` when there is none (or the store expired it).
    fn get(&self, name: &str) -> anyhow::Result<Option<Zeroizing<Vec<u8>>>>;
    /// Removes the entry `name`; whether there was one.
    fn remove(&self, name: &str) -> anyhow::Result<bool>;
}

/// What the session did for a command, for `--verbose` (the library prints nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The stored identity opened the vault; it stays until `expires`.
    Used { expires: Timestamp },
    /// The entry had expired (by carnet's clock): removed.
    Expired,
    /// The entry no longer opens this vault (re-keyed, or another vault with the same id): removed.
    Stale,
    /// `-i` names a key other than the one unlocked: that key is used.
    OtherKey,
    /// The store could not be read (the reason): the key is asked for as usual.
    Unavailable(String),
}

/// The unlocked sessions as one command sees them: the store, the command's time, and who to
/// tell what happened.
#[derive(Clone)]
pub struct Session {
    store: Arc<dyn SecretStore>,
    now: Timestamp,
    observer: Option<Observer>,
}

/// Who is told what a look-up did.
type Observer = Arc<dyn Fn(&Event) + Send + Sync>;

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("now", &self.now).finish()
    }
}

/// Which key was unlocked: the vault's own `identity.age`, or an identity file given with `-i`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Vault,
    File(PathBuf),
}

impl Source {
    /// The key a command names: `-i FILE` (as an absolute path, so that a later command run from
    /// another folder matches), else the vault's own.
    pub fn of(identity: Option<&Path>) -> Source {
        match identity {
            None => Source::Vault,
            Some(p) => Source::File(std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())),
        }
    }

    fn encode(&self) -> Option<String> {
        match self {
            Source::Vault => Some("vault".into()),
            // A path with a line break cannot be one line of the entry: such a key is then
            // used only by commands that name no key.
            Source::File(p) => p
                .to_str()
                .filter(|s| !s.contains(['\n', '\r']))
                .map(|s| format!("file:{s}")),
        }
    }
}

/// An unlocked identity, as read back from the store.
struct Entry {
    vault_id: String,
    recipient: String,
    actor: Actor,
    /// The recipient of the slot whose key was unlocked (a recovery or guardian key): the
    /// actor is then taken from the root again at each read, as when the key is given.
    slot: Option<String>,
    source: Option<String>,
    expires: Timestamp,
    identity: age::x25519::Identity,
    /// The key of what is hidden from guardians, when the unlocked key holds it.
    sealed: Option<age::x25519::Identity>,
}

impl Session {
    pub fn new(store: Arc<dyn SecretStore>, now: Timestamp) -> Session {
        Session {
            store,
            now,
            observer: None,
        }
    }

    /// Calls `f` with what each look-up did (the CLI's `--verbose`).
    pub fn observe(mut self, f: impl Fn(&Event) + Send + Sync + 'static) -> Session {
        self.observer = Some(Arc::new(f));
        self
    }

    pub fn now(&self) -> Timestamp {
        self.now
    }

    fn tell(&self, e: Event) {
        if let Some(f) = &self.observer {
            f(&e);
        }
    }

    /// The store's name for a vault's entry. Vault ids are random, so two vaults (and two
    /// tests running side by side) never share one; copies of a vault do, and open alike.
    pub fn entry_name(vault_id: &str) -> String {
        format!("carnet:unlock:{vault_id}")
    }

    /// Keeps `identity` (which opens the vault `config`, as `actor`, unlocked from `source`)
    /// until `until`.
    pub fn store(
        &self,
        config: &Config,
        (identity, sealed): (&age::x25519::Identity, Option<&age::x25519::Identity>),
        actor: &Actor,
        slot: Option<&str>,
        source: &Source,
        until: Timestamp,
    ) -> anyhow::Result<()> {
        let ttl = until.duration_since(self.now);
        if ttl <= SignedDuration::ZERO || ttl > MAX_FOR {
            return Err(Error::input(
                "an unlock lasts from one second to 24 hours",
                "give --for a duration such as 15m or 8h",
            )
            .into());
        }
        let mut text = Zeroizing::new(String::with_capacity(512));
        text.push_str(MAGIC);
        for (k, v) in [
            ("vault", config.vault_id.as_str()),
            ("recipient", &identity.to_public().to_string()),
            ("actor", &actor.as_string()),
            ("expires", &until.to_string()),
        ] {
            text.push_str(&format!("\n{k} {v}"));
        }
        if let Some(r) = slot {
            text.push_str("\nslot ");
            text.push_str(r);
        }
        if let Some(s) = source.encode() {
            text.push_str("\nsource ");
            text.push_str(&s);
        }
        text.push_str("\nidentity ");
        text.push_str(identity.to_string().expose_secret());
        if let Some(c) = sealed {
            text.push_str("\nsealed ");
            text.push_str(c.to_string().expose_secret());
        }
        text.push('\n');
        // Longer than a reader takes back (a long -i path, a very large SSH key's slot): kept,
        // it would read as stale every time; and Windows limits a credential to 2,560 bytes.
        if text.len() > MAX_STORED {
            return Err(Error::input(
                "this key cannot be kept unlocked (its entry would be too long for the system's store)",
                "give the passphrase or -i to each command; a shorter path to the identity file helps",
            )
            .into());
        }
        // Whole seconds, rounded up: the kernel's timeout is in seconds, and carnet's own clock
        // check ends the entry at the exact time anyway.
        let secs = u64::try_from(ttl.as_secs()).unwrap_or(0) + u64::from(ttl.subsec_nanos() > 0);
        self.store.put(
            &Self::entry_name(&config.vault_id),
            text.as_bytes(),
            std::time::Duration::from_secs(secs),
        )
    }

    /// Removes the vault's entry; whether there was one.
    pub fn remove(&self, vault_id: &str) -> anyhow::Result<bool> {
        self.store.remove(&Self::entry_name(vault_id))
    }

    /// The identity stored for the vault `config`, when there is one that is unexpired, still
    /// opens the vault, and was unlocked from the key `wanted` names (`-i`, or the vault's own).
    /// An expired, stale or unreadable entry is removed; a store that fails is passed over
    /// (the key is then asked for as usual), and so is `wanted` naming another key.
    pub fn load(&self, config: &Config, wanted: &Source) -> Option<Unlocked> {
        let name = Self::entry_name(&config.vault_id);
        let bytes = match self.store.get(&name) {
            Ok(Some(b)) => b,
            Ok(None) => return None,
            Err(e) => {
                self.tell(Event::Unavailable(format!("{e:#}")));
                return None;
            }
        };
        let drop_it = |e: Event| {
            // A failure to remove is harmless: the entry is refused again next time, and the
            // store's own timeout removes it.
            let _ = self.store.remove(&name);
            self.tell(e);
            None
        };
        let Some(entry) = parse(&bytes) else {
            return drop_it(Event::Stale);
        };
        if entry.vault_id != config.vault_id
            || entry.identity.to_public().to_string() != entry.recipient
            || !config.recipients.contains(&entry.recipient)
        {
            return drop_it(Event::Stale);
        }
        if self.now >= entry.expires {
            return drop_it(Event::Expired);
        }
        if let Source::File(_) = wanted
            && entry.source != wanted.encode()
        {
            self.tell(Event::OtherKey);
            return None;
        }
        self.tell(Event::Used {
            expires: entry.expires,
        });
        let mut unlocked = Unlocked::patient(vec![entry.identity]);
        unlocked.spare = entry.sealed.into_iter().collect();
        unlocked.from_session = true;
        unlocked.actor = entry.actor;
        unlocked.slot = entry.slot;
        Some(unlocked)
    }

    /// Until when the vault is unlocked, if it is (the same checks as `load`, without using or
    /// removing anything).
    pub fn unlocked_until(&self, config: &Config) -> Option<Timestamp> {
        let bytes = self.store.get(&Self::entry_name(&config.vault_id)).ok()??;
        let e = parse(&bytes)?;
        (e.vault_id == config.vault_id
            && config.recipients.contains(&e.recipient)
            && self.now < e.expires)
            .then_some(e.expires)
    }
}

/// Reads an entry; `None` when it is not one this carnet wrote.
fn parse(bytes: &[u8]) -> Option<Entry> {
    if bytes.len() > MAX_ENTRY {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let mut lines = text.lines();
    if lines.next()? != MAGIC {
        return None;
    }
    let (mut vault_id, mut recipient, mut actor, mut source, mut expires, mut identity) =
        (None, None, None, None, None, None);
    let mut slot = None;
    let mut sealed = None;
    for line in lines {
        let (k, v) = line.split_once(' ')?;
        match k {
            "vault" => vault_id = Some(v.to_string()),
            "recipient" => recipient = Some(v.to_string()),
            "actor" => actor = Some(Actor::parse(v)),
            "source" => source = Some(v.to_string()),
            "slot" => slot = Some(v.to_string()),
            "expires" => expires = Some(v.parse::<Timestamp>().ok()?),
            "identity" => identity = Some(v.parse::<age::x25519::Identity>().ok()?),
            "sealed" => sealed = Some(v.parse::<age::x25519::Identity>().ok()?),
            _ => {}
        }
    }
    Some(Entry {
        vault_id: vault_id?,
        recipient: recipient?,
        actor: actor?,
        slot,
        source,
        expires: expires?,
        identity: identity?,
        sealed,
    })
}

/// The operating system's store, or why there is none here.
pub fn os_store() -> Result<Arc<dyn SecretStore>, Error> {
    #[cfg(target_os = "linux")]
    {
        Ok(Arc::new(kernel::KernelKeyring))
    }
    #[cfg(any(target_os = "macos", windows))]
    {
        Ok(Arc::new(native::Credentials))
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
    {
        Err(Error::input(
            "`carnet unlock` is not available on this system (it uses the Linux kernel keyring, \
             the macOS Keychain or the Windows Credential Manager)",
            "give the passphrase to each command (CARNET_PASSPHRASE or --passphrase-file in \
             scripts), or open the vault with an identity file (-i FILE)",
        ))
    }
}

#[cfg(target_os = "linux")]
pub use kernel::KernelKeyring;

/// The macOS Keychain and the Windows Credential Manager, through the keyring crate: one
/// generic password (service `carnet`, account the entry's name) per vault. They keep no
/// timeout: the entry ends by carnet's clock (`Session::load` removes an expired one) or with
/// `carnet lock`, and until then the system keeps it encrypted under the user's login (the
/// Keychain and DPAPI do write it to disk, unlike the kernel keyring). Compiled here for the
/// tests, against keyring's in-memory mock.
#[cfg(any(target_os = "macos", windows, test))]
mod native {
    use zeroize::Zeroizing;

    /// The service name the entries are filed under.
    const SERVICE: &str = "carnet";

    pub struct Credentials;

    fn entry(name: &str) -> anyhow::Result<keyring::Entry> {
        keyring::Entry::new(SERVICE, name)
            .map_err(|e| anyhow::anyhow!("the system's credential store is not available: {e}"))
    }

    impl super::SecretStore for Credentials {
        fn put(&self, name: &str, secret: &[u8], _ttl: std::time::Duration) -> anyhow::Result<()> {
            entry(name)?.set_secret(secret).map_err(|e| {
                anyhow::anyhow!("cannot store the key in the system's credential store: {e}")
            })
        }

        fn get(&self, name: &str) -> anyhow::Result<Option<Zeroizing<Vec<u8>>>> {
            match entry(name)?.get_secret() {
                Ok(v) => Ok(Some(Zeroizing::new(v))),
                Err(keyring::Error::NoEntry) => Ok(None),
                Err(e) => anyhow::bail!("cannot read the system's credential store: {e}"),
            }
        }

        fn remove(&self, name: &str) -> anyhow::Result<bool> {
            match entry(name)?.delete_credential() {
                Ok(()) => Ok(true),
                Err(keyring::Error::NoEntry) => Ok(false),
                Err(e) => {
                    anyhow::bail!("cannot remove the key from the system's credential store: {e}")
                }
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::super::SecretStore;
        use super::*;

        #[test]
        fn a_missing_entry_reads_as_none_and_removing_it_says_so() {
            // keyring's mock keeps nothing between entries: each call here is a new entry, as
            // each carnet command is a new process.
            keyring::set_default_credential_builder(keyring::mock::default_credential_builder());
            let s = Credentials;
            assert!(s.get("carnet:unlock:none").unwrap().is_none());
            assert!(!s.remove("carnet:unlock:none").unwrap());
            s.put(
                "carnet:unlock:x",
                b"carnet-unlock/1",
                std::time::Duration::from_secs(60),
            )
            .unwrap();
        }
    }
}

#[cfg(target_os = "linux")]
mod kernel {
    use linux_keyutils::{KeyError, KeyRing, KeyRingIdentifier};
    use zeroize::Zeroizing;

    /// The Linux kernel keyring (keyrings(7)): a `user` key in the *session* keyring.
    ///
    /// Why the session keyring: "unlocked" should mean "for this login", like ssh-agent. A
    /// session keyring is shared by the processes of one login session (pam_keyinit gives each
    /// login its own; a terminal window inherits its desktop session's) and is destroyed at
    /// logout, before any timeout. The user keyring (`@u`) would outlive the login and be
    /// shared with every other session of the same user (an ssh login, cron). A process with
    /// no session keyring (some containers, no pam_keyinit) falls back to the user-session
    /// keyring (`@us`), as keyrings(7) says: then every such process of the user shares it.
    ///
    /// The key's default permissions give read and search to its possessor only (processes
    /// that reach it through their own keyrings) and view alone to the rest of the user's
    /// processes. Nothing of it ever reaches the disk (a `user` key is not swapped by the
    /// kernel), and the kernel removes it at its timeout.
    pub struct KernelKeyring;

    impl KernelKeyring {
        /// The session keyring, looked up without creating one: `add_key` on the special
        /// `@s` id would give a process without one a new session keyring of its own, which
        /// dies with it, and the unlock would be lost as soon as `carnet unlock` exits.
        fn ring() -> anyhow::Result<KeyRing> {
            KeyRing::from_special_id(KeyRingIdentifier::Session, false)
                .map_err(|e| anyhow::anyhow!("the kernel keyring is not available: {e}"))
        }
    }

    fn absent(e: &KeyError) -> bool {
        matches!(
            e,
            KeyError::KeyDoesNotExist | KeyError::KeyExpired | KeyError::KeyRevoked
        )
    }

    impl super::SecretStore for KernelKeyring {
        fn put(&self, name: &str, secret: &[u8], ttl: std::time::Duration) -> anyhow::Result<()> {
            let ring = Self::ring()?;
            let key = ring
                .add_key(name, secret)
                .map_err(|e| anyhow::anyhow!("cannot add a key to the kernel keyring: {e}"))?;
            let secs = usize::try_from(ttl.as_secs().max(1)).unwrap_or(usize::MAX);
            if let Err(e) = key.set_timeout(secs) {
                // A key without its timeout would stay until logout: take it back.
                let _ = key.invalidate();
                anyhow::bail!("cannot set the key's timeout in the kernel keyring: {e}");
            }
            Ok(())
        }

        fn get(&self, name: &str) -> anyhow::Result<Option<Zeroizing<Vec<u8>>>> {
            let ring = Self::ring()?;
            let key = match ring.search(name) {
                Ok(k) => k,
                Err(e) if absent(&e) => return Ok(None),
                Err(e) => anyhow::bail!("cannot search the kernel keyring: {e}"),
            };
            // A fixed buffer, zeroed when dropped: the payload is never copied elsewhere.
            let mut buf = Zeroizing::new(vec![0u8; super::MAX_ENTRY + 1]);
            match key.read(&mut *buf) {
                Ok(n) => {
                    // A longer payload is not ours; leave it truncated and `parse` refuses it.
                    // (Zeroizing wipes the whole capacity on drop, the cut tail too.)
                    let len = n.min(buf.len());
                    buf.truncate(len);
                    Ok(Some(buf))
                }
                Err(e) if absent(&e) => Ok(None),
                Err(e) => anyhow::bail!("cannot read the kernel keyring: {e}"),
            }
        }

        fn remove(&self, name: &str) -> anyhow::Result<bool> {
            let ring = Self::ring()?;
            match ring.search(name) {
                // Invalidated, the key is gone from every keyring at once and its memory freed.
                Ok(key) => key
                    .invalidate()
                    .map(|()| true)
                    .map_err(|e| anyhow::anyhow!("cannot remove the key: {e}")),
                Err(e) if absent(&e) => Ok(false),
                Err(e) => anyhow::bail!("cannot search the kernel keyring: {e}"),
            }
        }
    }
}

/// A store in memory, for tests of the library: no timeout of its own (the clock check is
/// what is tested).
#[derive(Default)]
pub struct MemoryStore {
    entries: std::sync::Mutex<Entries>,
}

type Entries = std::collections::BTreeMap<String, Zeroizing<Vec<u8>>>;

impl SecretStore for MemoryStore {
    fn put(&self, name: &str, secret: &[u8], _ttl: std::time::Duration) -> anyhow::Result<()> {
        self.lock()
            .insert(name.to_string(), Zeroizing::new(secret.to_vec()));
        Ok(())
    }

    fn get(&self, name: &str) -> anyhow::Result<Option<Zeroizing<Vec<u8>>>> {
        Ok(self.lock().get(name).cloned())
    }

    fn remove(&self, name: &str) -> anyhow::Result<bool> {
        Ok(self.lock().remove(name).is_some())
    }
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A test that panicked while holding it left a map that is still a map.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(id: &age::x25519::Identity) -> Config {
        Config {
            format: 2,
            vault_id: "0123456789abcdef0123456789abcdef".into(),
            key: crate::config::KeyMode::Passphrase,
            recipients: vec![id.to_public().to_string()],
            signing_key: String::new(),
        }
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn kept_until_expiry_then_removed() {
        let store = Arc::new(MemoryStore::default());
        let id = age::x25519::Identity::generate();
        let cfg = config(&id);
        let t0 = at("2026-03-14T09:00:00Z");
        let s = Session::new(store.clone(), t0);
        s.store(
            &cfg,
            (&id, None),
            &Actor::Patient,
            None,
            &Source::Vault,
            at("2026-03-14T09:15:00Z"),
        )
        .unwrap();
        let later = Session::new(store.clone(), at("2026-03-14T09:14:59Z"));
        let got = later.load(&cfg, &Source::Vault).unwrap();
        assert_eq!(got.recipients(), cfg.recipients);
        assert_eq!(got.actor, Actor::Patient);
        assert!(later.unlocked_until(&cfg).is_some());
        let events = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = events.clone();
        let expired = Session::new(store.clone(), at("2026-03-14T09:15:00Z"))
            .observe(move |e| seen.lock().unwrap().push(e.clone()));
        assert!(expired.load(&cfg, &Source::Vault).is_none());
        assert_eq!(*events.lock().unwrap(), vec![Event::Expired]);
        assert!(store.lock().is_empty(), "an expired entry is removed");
    }

    #[test]
    fn a_stale_entry_is_ignored_and_removed() {
        let store = Arc::new(MemoryStore::default());
        let old = age::x25519::Identity::generate();
        let mut cfg = config(&old);
        let s = Session::new(store.clone(), at("2026-03-14T09:00:00Z"));
        s.store(
            &cfg,
            (&old, None),
            &Actor::Patient,
            None,
            &Source::Vault,
            at("2026-03-14T10:00:00Z"),
        )
        .unwrap();
        // Re-keyed: the vault's recipient is another one now.
        cfg.recipients = vec![age::x25519::Identity::generate().to_public().to_string()];
        assert!(s.load(&cfg, &Source::Vault).is_none());
        assert!(store.lock().is_empty());
    }

    #[test]
    fn another_key_named_with_i_is_not_replaced() {
        let store = Arc::new(MemoryStore::default());
        let id = age::x25519::Identity::generate();
        let cfg = config(&id);
        let s = Session::new(store.clone(), at("2026-03-14T09:00:00Z"));
        let file = Source::File("/keys/patient.txt".into());
        s.store(
            &cfg,
            (&id, None),
            &Actor::Patient,
            None,
            &file,
            at("2026-03-14T10:00:00Z"),
        )
        .unwrap();
        assert!(s.load(&cfg, &file).is_some());
        assert!(s.load(&cfg, &Source::Vault).is_some());
        assert!(
            s.load(&cfg, &Source::File("/keys/recovery.txt".into()))
                .is_none()
        );
        assert_eq!(
            store.lock().len(),
            1,
            "kept for the key it was unlocked with"
        );
    }

    #[test]
    fn the_duration_is_bounded() {
        let store = Arc::new(MemoryStore::default());
        let id = age::x25519::Identity::generate();
        let cfg = config(&id);
        let s = Session::new(store.clone(), at("2026-03-14T09:00:00Z"));
        for until in ["2026-03-14T09:00:00Z", "2026-03-15T09:00:01Z"] {
            assert!(
                s.store(
                    &cfg,
                    (&id, None),
                    &Actor::Patient,
                    None,
                    &Source::Vault,
                    at(until)
                )
                .is_err()
            );
        }
        assert!(store.lock().is_empty());
    }

    #[test]
    fn garbage_is_not_an_entry() {
        for bad in [
            &b""[..],
            b"carnet-unlock/1\nvault x\n",
            b"carnet-unlock/2\n",
            &[0xff; 10],
        ] {
            assert!(parse(bad).is_none());
        }
    }
}
