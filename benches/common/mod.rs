//! What the benchmarks share: a long access log written straight through the library (sealed,
//! chained and MAC'd exactly as carnet writes it), since 100,000 separate commands would take
//! most of an hour; every measurement then runs the real `carnet` binary.

use std::path::Path;

use carnet::log::{self, Entry, Head};
use carnet::vault::{KeyOpts, Vault};

/// Appends `n` `view` entries to the vault's log, the i-th naming the document `names(i)`, then
/// writes the head and the index as a command would leave them.
pub fn fill_log(vault_dir: &Path, opts: &KeyOpts, n: usize, names: impl Fn(usize) -> String) {
    let vault = Vault::open(vault_dir).unwrap();
    let snap = vault.read(opts).unwrap();
    let recipients = vault.recipients().unwrap();
    let (segs, _) = log::list_segments(vault_dir).unwrap();
    let mut seg = *segs.last().unwrap();
    let mut tail = log::read_segment(vault_dir, seg, &snap.keys, &snap.ring).unwrap();
    let mut last = tail.last().unwrap().clone();
    for i in 0..n {
        let entry = Entry {
            seq: last.entry.seq + 1,
            time: jiff::Timestamp::now(),
            actor: carnet::domain::Actor::Patient,
            action: carnet::domain::Action::View,
            documents: vec![names(i)],
            details: serde_json::Map::from_iter([("what".to_string(), "metadata".into())]),
            version: env!("CARGO_PKG_VERSION").into(),
            prev: last.hash.clone(),
            manifest_sha256: snap.manifest_sha256.clone(),
            manifest_generation: snap.root.generation,
            objects_added: vec![],
            objects_removed: vec![],
        };
        let logged = log::seal_entry(&entry, &snap.ring).unwrap();
        if log::segment_full(&tail) {
            log::write_segment(vault_dir, seg, &tail, &recipients).unwrap();
            seg += 1;
            tail.clear();
        }
        tail.push(logged.clone());
        last = logged;
    }
    log::write_segment(vault_dir, seg, &tail, &recipients).unwrap();
    let head = Head {
        vault_id: vault.config.vault_id.clone(),
        log_seq: last.entry.seq,
        log_hash: last.hash.clone(),
        manifest_sha256: snap.manifest_sha256.clone(),
        manifest_generation: snap.root.generation,
        config_sha256: vault.config_sha256.clone(),
    };
    vault
        .write(
            &vault.path(log::HEAD),
            &log::seal_head(&head, &snap.ring, &recipients).unwrap(),
        )
        .unwrap();
    let objects = snap.objects(&vault).unwrap();
    carnet::index::rebuild(
        &vault,
        &snap.ring,
        last.entry.seq,
        snap.document_count(),
        &objects,
    )
    .unwrap();
}
