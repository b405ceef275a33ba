//! Sealing what is hidden from guardians: making the sealed key the first time something is
//! hidden from them, and moving documents between the clear and the sealed compartment. A
//! document that moves has every version's object encrypted again, under a new object id (objects
//! are written once), for the compartment it goes to; its metadata moves with the next root.

use std::collections::BTreeSet;

use age::secrecy::ExposeSecret;
use anyhow::Context;
use zeroize::Zeroizing;

use crate::catalog::{Root, Sealed, Snapshot};
use crate::config::KeyMode;
use crate::domain::Actor;
use crate::error::Error;
use crate::manifest::Document;
use crate::slots::Role;
use crate::vault::Vault;

/// An identity's secret line, as an identity file holds it.
pub fn identity_line(id: &age::x25519::Identity) -> Zeroizing<String> {
    Zeroizing::new(format!("{}\n", id.to_string().expose_secret()))
}

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
/// and `identity.age` rewritten with it — the one step outside the commit, done first, so that
/// a crash leaves at worst an unused key in that file. Needs the passphrase in passphrase mode.
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
    let vault_identity = snap
        .keys
        .identities
        .iter()
        .find(|i| vault.config.recipients.contains(&i.to_public().to_string()))
        .cloned()
        .ok_or_else(|| Error::Integrity("the vault's identity is not at hand".into()))?;
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
    let key = age::x25519::Identity::generate();
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
        let mut text = Zeroizing::new(format!(
            "# public key: {}\n{}\n",
            vault_identity.to_public(),
            vault_identity.to_string().expose_secret()
        ));
        text.push_str(&identity_line(&key));
        let pass = age::secrecy::SecretString::from(pass.expose_secret().to_owned());
        let sealed = crate::keys::encrypt_with_passphrase(text.as_bytes(), pass, log_n)?;
        vault.write(&vault.path(crate::vault::IDENTITY), &sealed)?;
    }
    snap.keys.sealed = Some(key);
    changes.made_key = true;
    Ok(())
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
        let staged = d
            .stored_objects()
            .iter()
            .any(|v| changes.add.iter().any(|(_, n)| *n == v.object));
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

/// Marks sealed the grants that name a sealed document: the root then keeps them sealed.
pub fn seal_grants(root: &mut Root, sealed: &BTreeSet<String>) {
    if root.sealed.is_none() {
        return;
    }
    for g in &mut root.grants {
        if g.documents.iter().any(|d| sealed.contains(d)) {
            g.sealed = true;
        }
    }
}
