//! `carnet unlock` and `carnet lock` (`ops::unlock`), and the `--verbose` notes of every
//! command about the unlocked key.

use std::sync::Arc;

use super::Ctx;
use super::args::{JsonArg, UnlockArgs};
use crate::dates;
use crate::ops::unlock as op;
use crate::session::{Event, SecretStore, Session};

/// The session every command looks at; with `verbose`, it says on stderr what it found.
pub fn session(store: Arc<dyn SecretStore>, now: jiff::Timestamp, verbose: bool) -> Session {
    let s = Session::new(store, now);
    if !verbose {
        return s;
    }
    s.observe(|e| {
        let note = match e {
            Event::Used { expires } => format!(
                "note: using the key kept by `carnet unlock` (until {}; `carnet lock` forgets it)",
                dates::show_local(*expires)
            ),
            Event::Expired => {
                "note: the vault's unlock has expired (and was removed); the key is needed again"
                    .into()
            }
            Event::Stale => {
                "note: the key kept by `carnet unlock` no longer opens this vault (re-keyed?); \
                 removed"
                    .into()
            }
            Event::OtherKey => {
                "note: the vault is unlocked with another key than the one -i names; using -i"
                    .into()
            }
            Event::Unavailable(why) => {
                format!("note: the unlocked key cannot be looked up ({why}); the key is needed")
            }
        };
        eprintln!("{}", super::ui::clean(&note));
    })
}

/// The store of this system, or the error saying there is none yet.
fn store_session(ctx: &Ctx) -> anyhow::Result<Session> {
    Ok(session(crate::session::os_store()?, ctx.now, ctx.verbose))
}

pub fn unlock(ctx: &Ctx, a: UnlockArgs) -> anyhow::Result<()> {
    let duration = dates::parse_duration(&a.duration)?;
    let session = store_session(ctx)?;
    let vault = ctx.open_vault()?;
    let done = op::unlock(&vault, &ctx.keys, &session, duration)?;
    if a.json {
        return super::print_json(&done);
    }
    eprintln!(
        "Unlocked until {}: commands on this vault need no passphrase until then, or until \
         `carnet lock`.",
        dates::show_local(done.expires)
    );
    Ok(())
}

pub fn lock(ctx: &Ctx, a: JsonArg) -> anyhow::Result<()> {
    let session = store_session(ctx)?;
    let vault = ctx.open_vault()?;
    let was = op::lock(&vault, &session)?;
    if a.json {
        return super::print_json(&serde_json::json!({ "locked": was }));
    }
    if was {
        eprintln!("Locked: the key is needed again.");
    } else {
        eprintln!("The vault was not unlocked; nothing to do.");
    }
    Ok(())
}
