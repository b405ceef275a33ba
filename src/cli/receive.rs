//! `carnet receive`: a professional's deposit or receipt, checked and recorded by
//! `ops::receive`, and what happened printed.

use super::Ctx;
use super::args::ReceiveArgs;
use super::ui;
use crate::dates;
use crate::ids;
use crate::ops::import::Status;
use crate::ops::receive::{self, Received};

pub fn run(ctx: &Ctx, a: ReceiveArgs) -> anyhow::Result<()> {
    let vault = ctx.open_vault()?;
    let req = receive::Request {
        file: a.file,
        accept_new_pro: a.accept_new_pro,
    };
    let bars = ui::FileBars::new("Receiving");
    let got = receive::receive(&vault, &ctx.keys, &req, ctx.now, &bars)?;
    bars.finish();
    super::print_notices(got.notices());
    if a.json {
        return super::print_json(&got);
    }
    match &got {
        Received::Deposit(d) => {
            let p = &d.professional;
            if p.directory == Some("added") {
                eprintln!(
                    "note: {} added to your directory as {} (key {})",
                    ui::clean(&p.name),
                    p.handle,
                    p.fingerprint
                );
            } else if p.directory == Some("key-changed") {
                eprintln!(
                    "note: {}'s key in your directory is now {}",
                    p.handle, p.fingerprint
                );
            }
            eprintln!(
                "Deposit from {}{} ({}):",
                ui::clean(&p.name),
                p.identifier
                    .as_deref()
                    .map(|i| format!(", {i}"))
                    .unwrap_or_default(),
                dates::show_local(d.created)
            );
            if let Some(n) = &d.note {
                eprintln!("  « {} »", ui::clean(n));
            }
            for doc in &d.documents {
                match doc.status {
                    Status::Added => {
                        crate::outln!("added {}  {}", ids::short(&doc.id), ui::clean(&doc.title))
                    }
                    Status::Duplicate => eprintln!(
                        "{}: already in vault as {} ({})",
                        ui::clean(&doc.path),
                        ids::short(&doc.id),
                        ui::clean(&doc.title)
                    ),
                }
            }
        }
        Received::Receipt(r) => {
            let p = &r.professional;
            let who = format!(
                "{}{}",
                ui::clean(&p.name),
                p.identifier
                    .as_deref()
                    .map(|i| format!(" ({i})"))
                    .unwrap_or_default()
            );
            if r.recorded {
                crate::outln!(
                    "grant {} opened by {who} on {} ({} document(s))",
                    ids::short(&r.grant),
                    dates::show_local(r.opened_at),
                    r.documents
                );
            } else {
                eprintln!(
                    "This receipt (grant {} opened by {who} on {}) was already recorded; nothing changed.",
                    ids::short(&r.grant),
                    dates::show_local(r.opened_at)
                );
            }
        }
    }
    Ok(())
}
