//! `carnet patients`: the professional's memory of patients' keys (`known-patients.toml`),
//! listed, and one patient forgotten.

use std::io::Write;

use super::args::{PatientsArgs, PatientsCommand};
use super::ui;
use crate::dates;
use crate::error::Error;
use crate::ops::open::Known;

fn load() -> anyhow::Result<Known> {
    let path = super::open::known_patients_path().ok_or_else(|| {
        Error::input(
            "there is no folder to remember patients in (neither XDG_CONFIG_HOME nor HOME is set)",
            "set CARNET_KNOWN_PATIENTS to a file",
        )
    })?;
    Known::load(path)
}

pub fn run(a: PatientsArgs) -> anyhow::Result<()> {
    let known = load()?;
    if let Some(PatientsCommand::Forget { fingerprint, json }) = a.command {
        let fp = crate::keyring::parse_fingerprint(&fingerprint)?;
        let gone = known.forget(&fp)?;
        if json {
            return super::print_json(&serde_json::json!({ "forgotten": gone }));
        }
        if gone.is_empty() {
            return Err(Error::input(
                format!("no patient is remembered with the key {fp}"),
                "list them with `carnet patients`",
            )
            .into());
        }
        for p in &gone {
            eprintln!(
                "forgot {} ({}): their next bundle will be a first",
                ui::clean(p.name.as_deref().unwrap_or("a patient")),
                p.fingerprint
            );
        }
        return Ok(());
    }
    let list = known.list();
    if a.json {
        return super::print_json(&list);
    }
    if list.is_empty() {
        eprintln!("no patient yet: bundles you open are remembered here");
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    for p in &list {
        let seen = p.last_seen.map(dates::show_local).unwrap_or_default();
        writeln!(
            out,
            "{}  {}  {}  {}",
            p.fingerprint,
            ui::clean(p.name.as_deref().unwrap_or("-")),
            p.vault_id
                .as_deref()
                .map(crate::ids::short)
                .unwrap_or("(no vault id)"),
            seen
        )?;
    }
    Ok(())
}
