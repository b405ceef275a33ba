//! `carnet grant`, `carnet grants`, `carnet revoke`: consent turned into a signed bundle, and
//! the record of what was shared with whom.

use std::collections::HashSet;
use std::io::{BufReader, IsTerminal, Read, Write};

use anyhow::Context;
use serde::Serialize;

use super::Ctx;
use super::args::{GrantArgs, GrantsArgs, RevokeArgs};
use super::ui;
use crate::category;
use crate::dates;
use crate::error::Error;
use crate::fsutil;
use crate::grant::{self, DocumentSource, Terms, TermsDocument, TermsPatient, TermsRecipient};
use crate::ids;
use crate::keys::Unlocked;
use crate::manifest::{Document, GrantRecord};
use crate::txn::Op;
use crate::vault::Vault;

/// Streams each document's plaintext from its vault object.
struct VaultDocs<'a> {
    vault: &'a Vault,
    keys: &'a Unlocked,
    docs: Vec<Document>,
}

impl DocumentSource for VaultDocs<'_> {
    fn open(&mut self, index: usize) -> anyhow::Result<Box<dyn Read + Send + '_>> {
        let r = self.vault.open_object(&self.docs[index], self.keys)?;
        Ok(Box::new(BufReader::with_capacity(256 * 1024, r)))
    }

    fn crc32(&self, index: usize) -> Option<u32> {
        self.docs[index].crc32
    }
}

#[derive(Serialize)]
struct GrantOutput<'a> {
    id: &'a str,
    output: String,
    to: Vec<&'a str>,
    documents: usize,
    not_before: String,
    expires: String,
    bundle_sha256: &'a str,
    patient_fingerprint: &'a str,
}

pub fn run(ctx: &Ctx, a: GrantArgs) -> anyhow::Result<()> {
    // Whole seconds: the terms print them, and a bundle must say exactly what was recorded.
    let now = jiff::Timestamp::from_second(ctx.now.as_second()).unwrap_or(ctx.now);
    let not_before = a
        .not_before
        .as_deref()
        .map(|s| dates::parse_when(s, now, false))
        .transpose()?
        .unwrap_or(now);
    // A duration runs from the start of the grant: `--not-before 2026-12-24 --expires 3d`
    // means three days from the 24th.
    let expires = dates::parse_when(&a.expires, not_before.max(now), true)?;
    if expires.duration_since(not_before.max(now)) < jiff::SignedDuration::from_hours(1)
        && expires > now
        && expires > not_before
    {
        eprintln!(
            "note: this grant lasts less than an hour, until {} (m is minutes; write 2w, 30d or a date for longer)",
            dates::show_local(expires)
        );
    }
    if expires <= now {
        return Err(Error::input(
            format!("the expiry {} is in the past", dates::show_local(expires)),
            "give a duration such as 7d, or a future date",
        )
        .into());
    }
    if expires <= not_before {
        return Err(Error::input(
            "the grant would expire before it starts",
            "make --expires later than --not-before",
        )
        .into());
    }
    let categories = a
        .categories
        .iter()
        .map(|c| category::parse(c))
        .collect::<Result<Vec<_>, _>>()?;
    let to_stdout = a.output.as_os_str() == "-";
    if to_stdout && a.json {
        return Err(Error::input(
            "--json and -o - would both write to standard output",
            "write the bundle to a file with -o FILE to get the JSON report",
        )
        .into());
    }
    // Refused before anything is logged: a bundle sprayed on a screen was not shared.
    if to_stdout && !a.armor && !a.force && std::io::stdout().is_terminal() {
        return Err(Error::input(
            "the bundle is binary and standard output is a terminal: it would garble the screen",
            "redirect it (-o - > FILE, or | mail ...), pass --armor for text, or --force",
        )
        .into());
    }
    if !to_stdout && a.output.exists() && !a.force {
        return Err(Error::input(
            format!("{} already exists", a.output.display()),
            "choose another file, or pass --force",
        )
        .into());
    }
    if !to_stdout && a.output.is_dir() {
        return Err(Error::input(
            format!("{} is a folder", a.output.display()),
            "give a file name for the bundle",
        )
        .into());
    }

    let vault = ctx.open_vault()?;
    let snap = vault.read(&ctx.keys)?;
    let m = &snap.root;

    let mut pros = Vec::new();
    for who in &a.to {
        let p = m.professional(who)?;
        if p.blocked {
            return Err(Error::input(
                format!("{} is blocked: no grant can be made to them", p.handle),
                format!("unblock them first with `carnet pro unblock {}`", p.handle),
            )
            .into());
        }
        if !pros
            .iter()
            .any(|q: &&crate::pro::Professional| q.handle == p.handle)
        {
            pros.push(p);
        }
    }

    let mut wanted: Vec<Document> = Vec::new();
    for p in &a.docs {
        let d = snap.resolve(&vault, p)?;
        if !wanted.iter().any(|w| w.id == d.id) {
            wanted.push(d);
        }
    }
    // Only a selection by category, tag or --all needs every document's metadata.
    let everything = if a.all || !categories.is_empty() || !a.tags.is_empty() {
        snap.documents(&vault)?
    } else {
        Vec::new()
    };
    let mut chosen: Vec<&Document> = wanted.iter().collect();
    chosen.extend(everything.iter().filter(|d| {
        !wanted.iter().any(|w| w.id == d.id)
            && (a.all
                || categories.contains(&d.category.as_str())
                || d.tags.iter().any(|t| a.tags.contains(t)))
    }));
    if chosen.is_empty() {
        return Err(Error::input(
            "no document matches this selection",
            "check it with `carnet ls`; nothing was shared",
        )
        .into());
    }
    chosen.sort_by_key(|d| (d.date, d.added_at));

    // Readable, unique paths inside the zip.
    let mut taken = HashSet::new();
    let documents: Vec<TermsDocument> = chosen
        .iter()
        .map(|d| {
            let base = format!("documents/{}/{}", d.category, super::export::file_name(d));
            let mut path = base.clone();
            let mut n = 2;
            while !taken.insert(path.to_lowercase()) {
                path = match base.rfind('.') {
                    Some(i) if i > base.rfind('/').unwrap_or(0) => {
                        format!("{} ({n}){}", &base[..i], &base[i..])
                    }
                    _ => format!("{base} ({n})"),
                };
                n += 1;
            }
            TermsDocument {
                id: d.id.clone(),
                title: d.title.clone(),
                category: d.category.clone(),
                date: d.date,
                author: d.author.clone(),
                media_type: d.media_type.clone(),
                size: d.size,
                sha256: d.sha256.clone(),
                path,
            }
        })
        .collect();

    let key = snap.ring.verifying_key();
    let fingerprint = crate::keyring::fingerprint(&key);
    let terms = Terms {
        format: grant::FORMAT.into(),
        id: ids::random_id(),
        purpose: a
            .purpose
            .clone()
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty()),
        issued: now,
        not_before,
        expires,
        patient: TermsPatient {
            name: m.patient.name.clone(),
            signing_key: crate::sign::encode_public(&key),
            fingerprint: fingerprint.clone(),
        },
        recipients: pros
            .iter()
            .map(|p| TermsRecipient {
                name: p.name.clone(),
                rpps: p.rpps.clone(),
                adeli: p.adeli.clone(),
                profession: p.profession.clone(),
                recipient: p.recipient.clone(),
            })
            .collect(),
        documents,
    };
    let terms_toml = format!(
        "# carnet grant: terms signed by the patient (see grant.toml.minisig)\n{}",
        toml::to_string(&terms).context("cannot encode the terms")?
    );
    let signature = crate::sign::sign(
        &snap.ring,
        terms_toml.as_bytes(),
        &format!("signature from carnet patient key {fingerprint}"),
        &format!("carnet grant {} expires {}", terms.id, terms.expires),
    );
    let signed = grant::SignedTerms {
        terms: terms.clone(),
        toml: terms_toml,
        signature,
    };
    let recipients = pros
        .iter()
        .map(|p| crate::pro::recipient(&p.recipient))
        .collect::<Result<Vec<_>, _>>()?;

    let total: u64 = terms.documents.iter().map(|d| d.size).sum();
    let bar = if total >= ui::BIG_FILE {
        ui::bytes_bar(total, "Sealing")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut source = VaultDocs {
        vault: &vault,
        keys: &snap.keys,
        docs: chosen.iter().map(|d| (*d).clone()).collect(),
    };
    let progress = |n| bar.set_position(n);

    // The bundle (ciphertext) is staged in full first — beside FILE, or in the vault's tmp/
    // for standard output — so that the grant is logged, with the bundle's hash, before a
    // single byte of it leaves: a grant is never released without its trace.
    let stage_dir = if to_stdout {
        vault.tmp_dir()
    } else {
        fsutil::parent_dir(&a.output).to_path_buf()
    };
    let tmp = fsutil::private_tempfile(&stage_dir)
        .with_context(|| format!("cannot write in {}", stage_dir.display()))?;
    let out = crate::crypto::HashingWriter::new(std::io::BufWriter::with_capacity(256 * 1024, tmp));
    let out = grant::write_bundle(out, &recipients, a.armor, &signed, &mut source, &progress)?;
    let (out, bundle_sha256) = out.finish();
    let tmp = out
        .into_inner()
        .map_err(|e| e.into_error())
        .context("cannot write the bundle")?;
    bar.finish_and_clear();

    let record = GrantRecord {
        id: terms.id.clone(),
        to: pros.iter().map(|p| p.handle.clone()).collect(),
        documents: terms.documents.iter().map(|d| d.id.clone()).collect(),
        purpose: terms.purpose.clone(),
        issued_at: now,
        not_before,
        expires,
        bundle_sha256: bundle_sha256.clone(),
        revoked_at: None,
    };
    let identifiers: Vec<String> = pros
        .iter()
        .map(|p| p.identifier().unwrap_or_else(|| p.name.clone()))
        .collect();
    let output_name = if to_stdout {
        "-".to_string()
    } else {
        a.output.display().to_string()
    };
    let logged = (|| -> anyhow::Result<()> {
        let txn = vault.begin(snap.keys, ctx.now)?;
        let mut root = txn.root().clone();
        root.grants.push(record.clone());
        let mut op = Op::new(crate::domain::Action::Grant)
            .documents(record.documents.clone())
            .detail("grant", record.id.clone())
            .detail("to", record.to.clone())
            .detail("identifiers", identifiers)
            .detail("not_before", not_before.to_string())
            .detail("expires", expires.to_string())
            .detail("bundle_sha256", bundle_sha256.clone())
            .detail("output", output_name.clone());
        if let Some(p) = &record.purpose {
            op = op.detail("purpose", p.clone());
        }
        op.root = Some(root);
        super::print_notices(&txn.commit(op)?.notices);
        Ok(())
    })();
    if let Err(e) = logged {
        // The staged bundle is dropped (and deleted) with `tmp`: nothing was shared.
        return Err(e.context(
            "the grant could not be recorded in the access log, so no bundle was written",
        ));
    }
    let delivered = if to_stdout {
        std::fs::File::open(tmp.path())
            .and_then(|mut f| {
                let mut out = std::io::stdout().lock();
                std::io::copy(&mut f, &mut out)?;
                out.flush()
            })
            .map_err(anyhow::Error::from)
    } else {
        fsutil::persist(tmp, &a.output, a.force)
    };
    if let Err(e) = delivered {
        return Err(e.context(format!(
            "grant {} is recorded in your log, but its bundle could not be delivered; revoke it and grant again",
            crate::ids::short(&record.id)
        )));
    }

    if a.json {
        return super::print_json(&GrantOutput {
            id: &record.id,
            output: output_name,
            to: record.to.iter().map(String::as_str).collect(),
            documents: record.documents.len(),
            not_before: not_before.to_string(),
            expires: expires.to_string(),
            bundle_sha256: &bundle_sha256,
            patient_fingerprint: &fingerprint,
        });
    }
    if !to_stdout {
        crate::outln!("{}", record.id);
    }
    eprintln!(
        "Granted {} document(s) to {} until {}{}.",
        record.documents.len(),
        record.to.join(", "),
        dates::show_local(expires),
        if to_stdout {
            String::new()
        } else {
            format!(" in {}", a.output.display())
        }
    );
    eprintln!("Your key fingerprint (the professional can check it with you): {fingerprint}");
    Ok(())
}

#[derive(Serialize)]
struct GrantView<'a> {
    id: &'a str,
    status: crate::domain::GrantStatus,
    to: &'a [String],
    documents: &'a [String],
    purpose: Option<&'a str>,
    issued_at: String,
    not_before: String,
    expires: String,
    revoked_at: Option<String>,
    bundle_sha256: &'a str,
}

pub fn list(ctx: &Ctx, a: GrantsArgs) -> anyhow::Result<()> {
    let vault = ctx.open_vault()?;
    let m = vault.read(&ctx.keys)?.root;
    let now = ctx.now;
    let grants: Vec<&GrantRecord> = m
        .grants
        .iter()
        .filter(|g| !a.active || g.status(now) == crate::domain::GrantStatus::Active)
        .collect();
    if a.json {
        let v: Vec<GrantView> = grants
            .iter()
            .map(|g| GrantView {
                id: &g.id,
                status: g.status(now),
                to: &g.to,
                documents: &g.documents,
                purpose: g.purpose.as_deref(),
                issued_at: g.issued_at.to_string(),
                not_before: g.not_before.to_string(),
                expires: g.expires.to_string(),
                revoked_at: g.revoked_at.map(|t| t.to_string()),
                bundle_sha256: &g.bundle_sha256,
            })
            .collect();
        return super::print_json(&v);
    }
    if grants.is_empty() {
        eprintln!("no grants{}", if a.active { " in force" } else { " yet" });
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<8}  {:<13}  {:<16}  {:>4}  {:<24}  PURPOSE",
        "ID", "STATUS", "EXPIRES", "DOCS", "TO"
    )?;
    for g in grants {
        writeln!(
            out,
            "{:<8}  {:<13}  {:<16}  {:>4}  {:<24}  {}",
            ids::short(&g.id),
            g.status(now),
            dates::show_local(g.expires),
            g.documents.len(),
            ui::clean(&ui::ellipsize(&g.to.join(", "), 24)),
            ui::clean(g.purpose.as_deref().unwrap_or("-"))
        )?;
    }
    Ok(())
}

pub fn revoke(ctx: &Ctx, a: RevokeArgs) -> anyhow::Result<()> {
    let vault = ctx.open_vault()?;
    let keys = vault.unlock(&ctx.keys)?;
    let txn = vault.begin(keys, ctx.now)?;
    let mut m = txn.root().clone();
    let id = ids::resolve(&a.id, m.grants.iter().map(|g| g.id.as_str()))
        .map_err(|e| match e {
            Error::UnknownId(x) => Error::input(
                format!("no grant with id {x}"),
                "list your grants with `carnet grants`",
            ),
            Error::Input { .. } => Error::input(
                format!("{:?} is not a grant id", a.id),
                "grant ids are hexadecimal; list them with `carnet grants`",
            ),
            e => e,
        })?
        .to_string();
    let Some(g) = m.grants.iter_mut().find(|g| g.id == id) else {
        return Err(Error::UnknownId(a.id).into());
    };
    if let Some(t) = g.revoked_at {
        eprintln!(
            "grant {} was already revoked on {}",
            ids::short(&id),
            dates::show_local(t)
        );
        return Ok(());
    }
    g.revoked_at = Some(ctx.now);
    let to = g.to.clone();
    let mut op = Op::new(crate::domain::Action::Revoke)
        .documents(g.documents.clone())
        .detail("grant", id.clone())
        .detail("to", to.clone());
    op.root = Some(m);
    super::print_notices(&txn.commit(op)?.notices);
    eprintln!(
        "Revoked grant {} (to {}). This is recorded in your access log. A copy already sent or \
         opened cannot be recalled: carnet has no server to take it back. Tell the professional \
         that your consent is withdrawn.",
        ids::short(&id),
        to.join(", ")
    );
    Ok(())
}
