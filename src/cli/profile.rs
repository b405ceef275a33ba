//! `carnet profile import|edit|show|export|history`: the emergency profile read from TOML (a
//! file, standard input, or the editor on a private file) and shown as text, TOML or JSON.

use std::io::{IsTerminal, Read, Write};

use anyhow::Context;
use serde::Serialize;
use zeroize::Zeroizing;

use super::Ctx;
use super::args::{JsonArg, ProfileCommand, ProfileExportArgs, ProfileImportArgs, ProfileShowArgs};
use super::ui;
use crate::error::Error;
use crate::ops::profile as op;
use crate::profile::{Profile, Source};

pub fn run(ctx: &Ctx, c: ProfileCommand) -> anyhow::Result<()> {
    match c {
        ProfileCommand::Import(a) => import(ctx, a),
        ProfileCommand::Edit(a) => edit(ctx, a),
        ProfileCommand::Show(a) => show(ctx, a),
        ProfileCommand::Export(a) => export(ctx, a),
        ProfileCommand::History(a) => history(ctx, a),
    }
}

#[derive(Serialize)]
struct SetReport {
    version: u32,
    changed: bool,
}

fn report_set(set: &op::Set, json: bool) -> anyhow::Result<()> {
    super::print_notices(&set.notices);
    if json {
        return super::print_json(&SetReport {
            version: set.version,
            changed: set.changed,
        });
    }
    if set.changed {
        eprintln!(
            "Emergency profile saved: version {} (earlier versions are kept; `carnet profile history`).",
            set.version
        );
    } else {
        eprintln!(
            "The emergency profile is already this one (version {}): nothing changed.",
            set.version
        );
    }
    Ok(())
}

fn import(ctx: &Ctx, a: ProfileImportArgs) -> anyhow::Result<()> {
    let (text, source) = if a.file.as_os_str() == "-" {
        let mut buf = Zeroizing::new(String::new());
        std::io::stdin()
            .take(crate::profile::MAX_TOML + 1)
            .read_to_string(&mut buf)
            .context("cannot read standard input as UTF-8 text")?;
        (buf, "standard input".to_string())
    } else {
        let bytes = crate::fsutil::read_limited(&a.file, crate::profile::MAX_TOML + 1)
            .with_context(|| format!("cannot read {}", a.file.display()))?;
        let text = String::from_utf8(bytes).map_err(|_| {
            Error::input(
                format!("{} is not UTF-8 text", a.file.display()),
                "save the profile as UTF-8 TOML (see examples/profile.toml)",
            )
        })?;
        (Zeroizing::new(text), a.file.display().to_string())
    };
    let profile = Profile::from_toml(&text, &source)?;
    let vault = ctx.open_vault()?;
    let set = op::set(&vault, &ctx.keys, &profile, Source::Import, ctx.now)?;
    report_set(&set, a.json)
}

/// A template for a vault that has no profile yet: every field, commented out.
const TEMPLATE: &str = include_str!("../../examples/profile.toml");

fn edit(ctx: &Ctx, a: JsonArg) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::input(
            "`carnet profile edit` opens an editor, and standard input is not a terminal",
            "import a file instead: carnet profile import FILE (or - for standard input)",
        )
        .into());
    }
    let vault = ctx.open_vault()?;
    // Unlocked first (and the current profile read, which the log records): typing into an
    // editor for a vault that will not open would be lost work.
    let start: Zeroizing<String> = match op::get(&vault, &ctx.keys, None, op::Read::Show, ctx.now) {
        Ok(shown) => Zeroizing::new(shown.profile.to_toml()?),
        Err(e)
            if e.downcast_ref::<Error>()
                .is_some_and(|e| matches!(e, Error::Input { .. })) =>
        {
            Zeroizing::new(commented(TEMPLATE))
        }
        Err(e) => return Err(e),
    };
    let mut text = start;
    let profile = loop {
        let edited = super::note::edit_text(text.as_bytes(), "carnet-profile-", "profile.toml")?;
        let edited = Zeroizing::new(
            String::from_utf8(edited.to_vec())
                .map_err(|_| Error::input("the profile is not UTF-8 text", "nothing was saved"))?,
        );
        let body: String = edited
            .lines()
            .filter(|l| !l.starts_with("# error: "))
            .collect::<Vec<_>>()
            .join("\n");
        if body.trim().is_empty() {
            return Err(Error::input(
                "the profile file was emptied: nothing was saved",
                "run `carnet profile edit` again",
            )
            .into());
        }
        match Profile::from_toml(&body, "the edited profile") {
            Ok(p) => break p,
            Err(e) => {
                let msg = e.to_string();
                eprintln!("error: {}", ui::clean(&msg));
                eprintln!("The editor opens again; empty the file to cancel.");
                text = Zeroizing::new(format!("# error: {}\n{body}\n", msg.replace('\n', " ")));
            }
        }
    };
    let set = op::set(&vault, &ctx.keys, &profile, Source::Edit, ctx.now)?;
    report_set(&set, a.json)
}

/// The example with every setting commented out: a blank profile that shows its fields.
fn commented(example: &str) -> String {
    example
        .lines()
        .map(|l| {
            if l.is_empty() || l.starts_with('#') {
                l.to_string()
            } else {
                format!("# {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[derive(Serialize)]
struct ShowReport<'a> {
    version: u32,
    at: String,
    source: Source,
    versions: usize,
    profile: &'a Profile,
}

fn show(ctx: &Ctx, a: ProfileShowArgs) -> anyhow::Result<()> {
    let vault = ctx.open_vault()?;
    let shown = op::get(&vault, &ctx.keys, a.version, op::Read::Show, ctx.now)?;
    super::print_notices(&shown.notices);
    if a.json {
        return super::print_json(&ShowReport {
            version: shown.version,
            at: shown.at.to_string(),
            source: shown.source,
            versions: shown.versions.len(),
            profile: &shown.profile,
        });
    }
    let text = crate::profile::summary_text(
        shown.patient_name.as_deref(),
        &shown.profile,
        Some(shown.version),
        shown.at,
    );
    let mut out = std::io::stdout().lock();
    for line in text.lines() {
        writeln!(out, "{}", ui::clean(line))?;
    }
    Ok(())
}

fn export(ctx: &Ctx, a: ProfileExportArgs) -> anyhow::Result<()> {
    let to_stdout = a.output.as_os_str() == "-";
    if !to_stdout && a.output.exists() && !a.force {
        return Err(Error::input(
            format!("{} already exists", a.output.display()),
            "choose another file, or pass --force",
        )
        .into());
    }
    let vault = ctx.open_vault()?;
    let shown = op::get(&vault, &ctx.keys, a.version, op::Read::Export, ctx.now)?;
    super::print_notices(&shown.notices);
    let text = Zeroizing::new(shown.profile.to_toml()?);
    if to_stdout {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        return Ok(out.flush()?);
    }
    // Health data: readable by the patient only, like an export.
    let dir = crate::fsutil::parent_dir(&a.output);
    let mut tmp = crate::fsutil::private_tempfile(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    tmp.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", a.output.display()))?;
    crate::fsutil::persist(tmp, &a.output, a.force)?;
    eprintln!(
        "Wrote version {} of the emergency profile to {}",
        shown.version,
        a.output.display()
    );
    Ok(())
}

#[derive(Serialize)]
struct VersionView {
    version: u32,
    at: String,
    source: Source,
}

fn history(ctx: &Ctx, a: JsonArg) -> anyhow::Result<()> {
    let vault = ctx.open_vault()?;
    let versions = op::history(&vault, &ctx.keys)?;
    if a.json {
        let v: Vec<VersionView> = versions
            .iter()
            .map(|v| VersionView {
                version: v.version,
                at: v.at.to_string(),
                source: v.source,
            })
            .collect();
        return super::print_json(&v);
    }
    if versions.is_empty() {
        return Err(op::no_profile().into());
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{:>7}  {:<16}  HOW", "VERSION", "WHEN")?;
    for v in &versions {
        writeln!(
            out,
            "{:>7}  {:<16}  {}",
            v.version,
            crate::dates::show_local(v.at),
            v.source.as_str()
        )?;
    }
    Ok(())
}
