//! Sealing what is hidden from guardians: making the sealed key the first time something is
//! hidden from them, and moving documents between the clear and the sealed compartment. A
//! document that moves has every version's object encrypted again, under a new object id (objects
//! are written once), for the compartment it goes to; its metadata moves with the next root.

use std::collections::BTreeSet;

use age::secrecy::ExposeSecret;
use anyhow::Context;

use crate::catalog::{Root, Sealed, Snapshot};
use crate::config::KeyMode;
use crate::domain::Actor;
use crate::error::Error;
use crate::manifest::Document;
use crate::slots::Role;
use crate::vault::Vault;

/// What sealing adds to a change: documents to put (moved, with their new objects), objects
/// staged and replaced, and the documents newly sealed (the log entries naming them are sealed
/// after the fact).
#[derive(Default)]
pub struct Changes {
    pub put: Vec<Document>,
    pub add: Vec<(tempfile::TempPath, String)>,
    pub remove: Vec<String>,
    pub newly_sealed: BTreeSet<String>,
    /// The sealed key was made by this change.
    pub made_key: bool,
    /// `identity.age` holding the new sealed key (passphrase mode), for the commit to write.
    pub identity: Option<Vec<u8>>,
}

/// Can this vault keep a key its guardians do not hold? Not when the patient's own key is a
/// plain age identity file: a guardian's slot holds that very identity.
pub fn can_seal(vault: &Vault, root: &Root) -> bool {
    vault.config.key == KeyMode::Passphrase || root.slots.iter().any(|s| s.role == Role::Patient)
}

fn guardians(root: &Root) -> Vec<&str> {
    root.slots
        .iter()
        .filter(|s| s.role == Role::Guardian)
        .map(|s| s.name.as_str())
        .collect()
}

/// Refuses what would leave a guardian's key able to read what is hidden from guardians, on a
/// vault that cannot seal: a guardian while something is hidden, or hiding while a guardian
/// exists.
pub fn refuse_unsealable(vault: &Vault, root: &Root, hidden: usize) -> Result<(), Error> {
    let g = guardians(root);
    if can_seal(vault, root) || g.is_empty() || hidden == 0 {
        return Ok(());
    }
    Err(Error::input(
        format!(
            "this vault opens with your own age identity file, which the guardian key slot(s) of {} also hold: nothing can be hidden from them",
            g.join(", ")
        ),
        "keep what guardians must not read in a vault that opens with a passphrase (`carnet init`) or an SSH or hardware key",
    ))
}

/// Makes the sealed key, when the root has none and this vault can keep one: the new key's
/// record in `root`, the patient's and recovery slots written again holding it (new objects),
/// and `identity.age` with it, for the commit to write. Needs the passphrase in passphrase mode.
pub fn make_key(
    vault: &Vault,
    snap: &mut Snapshot,
    root: &mut Root,
    log_n: u8,
    now: jiff::Timestamp,
    changes: &mut Changes,
) -> anyhow::Result<()> {
    if root.sealed.is_some() || !can_seal(vault, root) {
        return Ok(());
    }
    if !matches!(snap.keys.actor, Actor::Patient | Actor::Recovery) {
        return Err(Error::input(
            "a guardian cannot change what is hidden from guardians",
            "the patient decides this with their own key",
        )
        .into());
    }
    let vault_identity = snap.keys.vault_identity(&vault.config.recipients)?.clone();
    let passphrase = match vault.config.key {
        KeyMode::Passphrase => Some(snap.keys.passphrase.as_ref().ok_or_else(|| {
            Error::input(
                "hiding from guardians the first time writes a second key into identity.age, which needs the passphrase",
                if snap.keys.actor == Actor::Recovery {
                    "open the vault with your passphrase (set a new one with `carnet passphrase` if it was lost)"
                } else {
                    "run `carnet lock` (the key `carnet unlock` keeps cannot rewrite identity.age), then the command again"
                },
            )
        })?),
        KeyMode::External => None,
    };
    // A key left beside the vault's by a first attempt that was interrupted may already seal
    // log entries: it is taken up again rather than replaced.
    let key = snap
        .keys
        .spare
        .first()
        .cloned()
        .unwrap_or_else(age::x25519::Identity::generate);
    root.sealed = Some(Sealed::new(key.to_public().to_string(), now));
    // No grant was sealed before the key existed: the list in hand is whole.
    root.sealed_grants_open = true;
    let mut slots = Vec::new();
    for s in &root.slots {
        if s.role == Role::Guardian {
            slots.push(s.clone());
            continue;
        }
        let (slot, bytes) = crate::slots::make_with(
            &vault_identity,
            Some(&key),
            s.role,
            &s.name,
            &s.recipient,
            s.added_at,
        )?;
        let mut tmp = crate::fsutil::private_tempfile(&vault.tmp_dir())
            .with_context(|| format!("cannot write in {}", vault.tmp_dir().display()))?;
        std::io::Write::write_all(&mut tmp, &bytes)?;
        changes
            .add
            .push((tmp.into_temp_path(), slot.object.clone()));
        if slot.object != s.object {
            changes.remove.push(s.object.clone());
        }
        slots.push(slot);
    }
    root.slots = slots;
    if let Some(pass) = passphrase {
        let text = crate::keys::vault_identity_text(&vault_identity, Some(&key));
        let pass = age::secrecy::SecretString::from(pass.expose_secret().to_owned());
        // Written by the commit, right after its log entry: an interruption then reads as an
        // interrupted command (rolled back or finished by the next write), never as a file the
        // signed index does not know; a rollback leaves the unused key beside the vault's, and
        // the next first hide takes it up again (above).
        changes.identity = Some(crate::keys::encrypt_with_passphrase(
            text.as_bytes(),
            pass,
            log_n,
        )?);
    }
    snap.keys.sealed = Some(key);
    changes.made_key = true;
    Ok(())
}

/// The recipients a new document of `category` is encrypted to before the change that adds it
/// is committed (the check under the lock, `place`, re-encrypts if the rule changed meanwhile):
/// the sealed key's when the category is hidden from guardians, so that no copy a guardian's
/// key opens is ever staged.
pub fn recipients_for(
    vault: &Vault,
    snap: &Snapshot,
    category: &str,
) -> anyhow::Result<Vec<age::x25519::Recipient>> {
    match (&snap.root.sealed, &snap.keys.sealed) {
        (Some(s), Some(_)) if snap.root.category_hidden_from_guardians(category) => {
            Ok(vec![s.key()?])
        }
        _ => vault.recipients(),
    }
}

/// Whether the staged file `path` is already encrypted to `key` (its header unwraps with it:
/// cheap, nothing of the content is read).
fn encrypted_for(path: &std::path::Path, key: &age::x25519::Identity) -> bool {
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    age::Decryptor::new_buffered(std::io::BufReader::new(f))
        .and_then(|d| {
            d.decrypt(std::iter::once(key as &dyn age::Identity))
                .map(|_| ())
        })
        .is_ok()
}

/// Puts each of `docs` (as they will be after the change, each with whether it changed) in the
/// compartment `root` (the root after the change) gives it, encrypting its objects again when
/// it moves; a document that neither changed nor moves is left alone. Objects the change staged
/// (in `changes.add`, encrypted for the clear compartment) are encrypted again in place when the
/// document lands in the sealed one.
pub fn place(
    vault: &Vault,
    snap: &Snapshot,
    root: &Root,
    docs: Vec<(Document, bool)>,
    changes: &mut Changes,
) -> anyhow::Result<()> {
    let ids: Vec<String> = docs.iter().map(|(d, _)| d.id.to_string()).collect();
    let sealed_before = snap.sealed_ids(vault, &ids)?;
    let sealed_to = root.sealed.as_ref().map(|s| s.key()).transpose()?;
    let vault_to = vault.recipients()?;
    for (d, changed) in docs {
        let before = sealed_before.contains(d.id.as_str());
        let after = sealed_to.is_some() && root.hidden_from_guardians(&d);
        // Objects this change staged that are not yet encrypted for where the document goes.
        let staged = d.stored_objects().iter().any(|v| {
            changes.add.iter().any(|(p, n)| {
                *n == v.object
                    && match (after, &snap.keys.sealed) {
                        (true, Some(c)) => !encrypted_for(p, c),
                        _ => false,
                    }
            })
        });
        if before == after && !(after && staged) {
            if changed {
                changes.put.push(d);
            }
            continue;
        }
        if after && snap.keys.sealed.is_none() {
            return Err(Error::input(
                "this document would be hidden from guardians, and a guardian's key cannot seal it",
                "choose a category that is not hidden from guardians, or ask the patient",
            )
            .into());
        }
        let to = match (&sealed_to, after) {
            (Some(c), true) => std::slice::from_ref(c),
            _ => &vault_to[..],
        };
        // A document already in the vault (some object not staged now) has log entries that
        // named it in clear: they are sealed too.
        let existed = d
            .stored_objects()
            .iter()
            .any(|v| !changes.add.iter().any(|(_, n)| *n == v.object));
        if after && !before && existed {
            changes.newly_sealed.insert(d.id.to_string());
        }
        let moved = reencrypt(vault, snap, d, to, before != after, changes)?;
        changes.put.push(moved);
    }
    Ok(())
}

/// The objects of `doc` encrypted again for `to`: those already in the vault (when `move_stored`)
/// under a new id, those this change staged in place; the document as it then is. Each
/// plaintext is checked against its version's SHA-256 on the way.
fn reencrypt(
    vault: &Vault,
    snap: &Snapshot,
    mut doc: Document,
    to: &[age::x25519::Recipient],
    move_stored: bool,
    changes: &mut Changes,
) -> anyhow::Result<Document> {
    let mut moved: std::collections::BTreeMap<String, (String, u64, String)> = Default::default();
    for v in doc.stored_objects() {
        let staged = changes.add.iter().position(|(_, n)| *n == v.object);
        // Staged already encrypted for the sealed key (see `recipients_for`): nothing to do.
        if let (Some(i), Some(c)) = (staged, snap.keys.sealed.as_ref().filter(|_| !to.is_empty()))
            && to
                .iter()
                .all(|r| r.to_string() == c.to_public().to_string())
            && encrypted_for(&changes.add[i].0, c)
        {
            continue;
        }
        let (plain, id): (Box<dyn std::io::Read + Send + '_>, String) = match staged {
            Some(i) => {
                let f = std::fs::File::open(&changes.add[i].0)
                    .with_context(|| format!("cannot read {}", changes.add[i].0.display()))?;
                let r = crate::crypto::open(std::io::BufReader::new(f), snap.keys.as_dyn())
                    .context("cannot read a staged document")?;
                (Box::new(r), v.object.clone())
            }
            None if move_stored => {
                let f = vault.object_file(v)?;
                (
                    Box::new(vault.decrypt_object(f, v, &snap.keys, false)?),
                    crate::ids::random_id(),
                )
            }
            None => continue,
        };
        let tmp = crate::fsutil::private_tempfile(&vault.tmp_dir())
            .with_context(|| format!("cannot write in {}", vault.tmp_dir().display()))?;
        let (sealed, out) = crate::crypto::seal(
            plain,
            to,
            std::io::BufWriter::with_capacity(256 * 1024, tmp),
            &|_| {},
        )
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => {
                anyhow::Error::from(Error::Integrity(format!(
                    "{}: its content is damaged or truncated",
                    vault.object_path(&v.object).display()
                )))
            }
            _ => anyhow::Error::from(e).context("cannot encrypt a document again"),
        })?;
        if hex::encode(sealed.sha256) != v.sha256 {
            return Err(Error::Integrity(format!(
                "{}: not the content that was stored (its SHA-256 differs)",
                vault.object_path(&v.object).display()
            ))
            .into());
        }
        let tmp = out
            .into_inner()
            .map_err(|e| e.into_error())
            .context("cannot write a document")?;
        match staged {
            // The staged file is replaced (dropping its TempPath deletes it).
            Some(i) => changes.add[i] = (tmp.into_temp_path(), id.clone()),
            None => {
                changes.add.push((tmp.into_temp_path(), id.clone()));
                changes.remove.push(v.object.clone());
            }
        }
        moved.insert(
            v.object.clone(),
            (id, sealed.cipher_size, hex::encode(sealed.cipher_blake3)),
        );
    }
    let restamp = |v: &mut Document| {
        if let Some((id, size, b3)) = moved.get(&v.object) {
            v.object = id.clone();
            v.object_size = *size;
            v.object_blake3 = b3.clone();
        }
    };
    for v in &mut doc.history {
        restamp(v);
    }
    restamp(&mut doc);
    Ok(doc)
}

/// Settles the documents `op` puts in the compartments the root after it gives them (see
/// `place`): for the commands that add or change documents.
pub fn settle(vault: &Vault, snap: &Snapshot, op: &mut crate::txn::Op) -> anyhow::Result<()> {
    let root = op.root.as_ref().unwrap_or(&snap.root);
    if root.sealed.is_none() {
        return Ok(());
    }
    let mut changes = Changes {
        add: std::mem::take(&mut op.add),
        ..Changes::default()
    };
    let docs: Vec<(Document, bool)> = std::mem::take(&mut op.put)
        .into_iter()
        .map(|d| (d, true))
        .collect();
    place(vault, snap, root, docs, &mut changes)?;
    op.put = changes.put;
    op.add = changes.add;
    op.remove.extend(changes.remove);
    op.seal_past.extend(changes.newly_sealed);
    Ok(())
}
