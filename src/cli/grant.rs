//! `carnet grant` and `carnet grants`: consent turned into a signed bundle, and the record of
//! what was shared with whom (`carnet revoke` is in `revoke.rs`).

use std::io::{IsTerminal, Write};

use age::secrecy::ExposeSecret;
use serde::Serialize;

use super::Ctx;
use super::args::{GrantArgs, GrantsArgs};
use super::ui;
use crate::category;
use crate::dates;
use crate::error::Error;
use crate::fsutil;
use crate::ids;
use crate::manifest::GrantRecord;
use crate::ops::share;

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
    /// `grant --passcode`: the generated passcode (shown this once; carnet keeps no copy).
    #[serde(skip_serializing_if = "Option::is_none")]
    passcode: Option<&'a str>,
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
    if a.passcode {
        crate::ops::share::check_passcode_expiry(not_before, expires, now)?;
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
    if to_stdout && a.passcode {
        return Err(Error::input(
            "--passcode prints the passcode on standard output, where -o - would write the bundle",
            "write the bundle to a file with -o FILE",
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

    let output_name = if to_stdout {
        "-".to_string()
    } else {
        a.output.display().to_string()
    };
    let req = share::Request {
        to: a.to.clone(),
        docs: a.docs.clone(),
        categories,
        tags: a.tags.clone(),
        all: a.all,
        include_hidden: a.include_hidden,
        purpose: a
            .purpose
            .clone()
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty()),
        not_before,
        expires,
        armor: a.armor,
        stage_in: (!to_stdout).then(|| fsutil::parent_dir(&a.output).to_path_buf()),
        output_name: output_name.clone(),
        passcode: a
            .passcode
            .then(|| (crate::passcode::generate(), super::scrypt_log_n())),
    };
    let passcode = req
        .passcode
        .as_ref()
        .map(|(p, _)| zeroize::Zeroizing::new(p.expose_secret().to_string()));
    let vault = ctx.open_vault()?;
    let bar = std::cell::OnceCell::new();
    let progress = |n: u64, total: u64| {
        if total >= ui::BIG_FILE {
            bar.get_or_init(|| ui::bytes_bar(total, "Sealing"))
                .set_position(n);
        }
    };
    let issued = share::issue(&vault, &ctx.keys, &req, ctx.now, &progress)?;
    if let Some(b) = bar.get() {
        b.finish_and_clear();
    }
    super::print_notices(&issued.notices);
    let share::Issued {
        record,
        fingerprint,
        bundle_sha256,
        bundle: tmp,
        ..
    } = issued;
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
            passcode: passcode.as_deref().map(String::as_str),
        });
    }
    if let Some(p) = &passcode {
        crate::outln!("{}", p.as_str());
        eprintln!(
            "Access code {} for {} document(s), until {}, in {}.",
            ids::short(&record.id),
            record.documents.len(),
            dates::show_local(expires),
            a.output.display()
        );
        eprintln!("{}", PASSCODE_CAVEAT);
        eprintln!("Your key fingerprint (the professional can check it with you): {fingerprint}");
        return Ok(());
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

/// What every passcode printed must come with (`grant --passcode`, `carnet emergency`).
pub const PASSCODE_CAVEAT: &str = "The passcode above is shown this once: carnet keeps no copy. \
Anyone who has both the bundle and the passcode can read it, so send them separately (the bundle \
by email, the passcode by phone or by hand). Offline nothing limits how many passcodes can be \
tried: the protection is its strength (8 words, 88 bits) and the cost of scrypt.";

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
    /// When the bundle was first opened, from the professionals' receipts (`carnet receive`).
    opened_at: Option<String>,
    opened: Vec<OpenedView<'a>>,
}

#[derive(Serialize)]
struct OpenedView<'a> {
    at: String,
    by: &'a str,
    receipt: &'a str,
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
                opened_at: g.opened_at().map(|t| t.to_string()),
                opened: g
                    .opened
                    .iter()
                    .map(|o| OpenedView {
                        at: o.at.to_string(),
                        by: &o.by,
                        receipt: &o.receipt,
                    })
                    .collect(),
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
        "{:<8}  {:<13}  {:<16}  {:>4}  {:<24}  {:<16}  PURPOSE",
        "ID", "STATUS", "EXPIRES", "DOCS", "TO", "OPENED"
    )?;
    for g in grants {
        writeln!(
            out,
            "{:<8}  {:<13}  {:<16}  {:>4}  {:<24}  {:<16}  {}",
            ids::short(&g.id),
            g.status(now),
            dates::show_local(g.expires),
            g.documents.len(),
            ui::clean(&ui::ellipsize(&g.to.join(", "), 24)),
            // From the receipts received: "-" says none came, not that nobody opened it.
            g.opened_at()
                .map_or_else(|| "-".to_string(), dates::show_local),
            ui::clean(g.purpose.as_deref().unwrap_or("-"))
        )?;
    }
    Ok(())
}
