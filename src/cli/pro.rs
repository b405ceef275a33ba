//! `carnet pro`: the patient's directory of professionals (kept in the encrypted manifest).

use std::io::Write;

use anyhow::Context;
use serde::Serialize;

use super::Ctx;
use super::args::{JsonArg, ProAddArgs, ProCommand, ProWho};
use crate::domain::Action;
use crate::error::Error;
use crate::pro::{self, Card, Professional};
use crate::txn::Op;

const MAX_CARD: u64 = 64 << 10;

pub fn run(ctx: &Ctx, cmd: ProCommand) -> anyhow::Result<()> {
    match cmd {
        ProCommand::Add(a) => add(ctx, a),
        ProCommand::Ls(a) => ls(ctx, a),
        ProCommand::Rm(w) => change(ctx, w, Action::ProRm),
        ProCommand::Block(w) => change(ctx, w, Action::ProBlock),
        ProCommand::Unblock(w) => change(ctx, w, Action::ProUnblock),
    }
}

fn read_card(path: &std::path::Path) -> anyhow::Result<Card> {
    use std::io::Read;
    let f = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut text = String::new();
    f.take(MAX_CARD)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        Error::input(
            format!(
                "{} is not a carnet contact card: {}",
                path.display(),
                e.message()
            ),
            "ask the professional for the .card.toml file made by `carnet keygen`",
        )
        .into()
    })
}

fn add(ctx: &Ctx, a: ProAddArgs) -> anyhow::Result<()> {
    let card = match &a.card {
        Some(path) => read_card(path)?,
        None => Card {
            carnet_card: 1,
            name: a.name.clone().unwrap_or_default(),
            rpps: a.rpps.clone(),
            adeli: a.adeli.clone(),
            profession: a.profession.clone(),
            specialty: None,
            recipient: a.key.clone().unwrap_or_default(),
            signing_key: None,
            fingerprint: None,
        },
    };
    let name = card.name.trim().to_string();
    if name.is_empty() {
        return Err(Error::input("the professional's name is empty", "give --name").into());
    }
    let recipient = pro::check_recipient(&card.recipient)?;
    let rpps = card
        .rpps
        .as_deref()
        .or(a.rpps.as_deref())
        .map(super::rpps_with_warning)
        .transpose()?;
    let adeli = card
        .adeli
        .as_deref()
        .or(a.adeli.as_deref())
        .map(pro::check_adeli)
        .transpose()?;
    if let Some(k) = &card.signing_key {
        crate::sign::decode_public(k).map_err(|e| {
            Error::input(
                format!("the card's signing key is invalid: {e}"),
                "ask for a new card",
            )
        })?;
    }

    let vault = ctx.open_vault()?;
    let keys = vault.unlock(&ctx.keys)?;
    let txn = vault.begin(keys, ctx.now)?;
    let mut m = txn.root().clone();
    if let Some(p) = m.professionals.iter().find(|p| p.recipient == recipient) {
        return Err(Error::input(
            format!("this key is already in your directory as {}", p.handle),
            "see `carnet pro ls`",
        )
        .into());
    }
    for ident in [&rpps, &adeli].into_iter().flatten() {
        if let Some(p) = m.professionals.iter().find(|p| p.is(ident)) {
            return Err(Error::input(
                format!("{ident} is already in your directory as {}", p.handle),
                "remove the old entry first with `carnet pro rm`",
            )
            .into());
        }
    }
    let handle = match &a.handle {
        Some(h) => {
            let h = h.trim().to_lowercase();
            if h.is_empty() || !h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(Error::input(
                    format!("invalid handle {h:?}"),
                    "use letters, digits and dashes",
                )
                .into());
            }
            if m.professionals.iter().any(|p| p.handle == h) {
                return Err(Error::input(
                    format!("the handle {h} is taken"),
                    "choose another with --handle",
                )
                .into());
            }
            h
        }
        None => {
            let base = pro::handle_from_name(&name);
            let mut h = base.clone();
            let mut n = 2;
            while m.professionals.iter().any(|p| p.handle == h) {
                h = format!("{base}-{n}");
                n += 1;
            }
            h
        }
    };
    let p = Professional {
        handle: handle.clone(),
        name,
        rpps,
        adeli,
        profession: card.profession.or(a.profession),
        specialty: card.specialty,
        recipient,
        signing_key: card.signing_key,
        blocked: false,
        added_at: ctx.now,
        role: None,
    };
    m.professionals.push(p.clone());
    let mut op = Op::new(Action::ProAdd)
        .detail("handle", handle.clone())
        .detail("name", p.name.clone());
    if let Some(id) = p.identifier() {
        op = op.detail("identifier", id);
    }
    op.root = Some(m);
    super::print_notices(&txn.commit(op)?.notices);
    if a.json {
        return super::print_json(&p);
    }
    crate::outln!("{handle}");
    eprintln!(
        "Added {} as `{handle}`{}",
        super::ui::clean(&p.name),
        p.identifier()
            .map(|i| format!(" ({i})"))
            .unwrap_or_default()
    );
    Ok(())
}

#[derive(Serialize)]
struct ProView<'a> {
    #[serde(flatten)]
    pro: &'a Professional,
    fingerprint: Option<String>,
}

fn ls(ctx: &Ctx, a: JsonArg) -> anyhow::Result<()> {
    let vault = ctx.open_vault()?;
    let m = vault.read(&ctx.keys)?.root;
    if a.json {
        let views: Vec<ProView> = m
            .professionals
            .iter()
            .map(|p| ProView {
                pro: p,
                fingerprint: p
                    .signing_key
                    .as_deref()
                    .and_then(|k| crate::sign::decode_public(k).ok())
                    .map(|k| crate::keyring::fingerprint(&k)),
            })
            .collect();
        return super::print_json(&views);
    }
    if m.professionals.is_empty() {
        eprintln!("no professionals yet: add one with `carnet pro add --card FILE`");
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<20}  {:<18}  {:<14}  NAME",
        "HANDLE", "IDENTIFIER", "PROFESSION"
    )?;
    for p in &m.professionals {
        writeln!(
            out,
            "{:<20}  {:<18}  {:<14}  {}{}",
            p.handle,
            p.identifier().unwrap_or_else(|| "-".into()),
            super::ui::clean(p.profession.as_deref().unwrap_or("-")),
            super::ui::clean(&p.name),
            if p.blocked { "  [blocked]" } else { "" }
        )?;
    }
    Ok(())
}

fn change(ctx: &Ctx, w: ProWho, action: Action) -> anyhow::Result<()> {
    let vault = ctx.open_vault()?;
    let keys = vault.unlock(&ctx.keys)?;
    let txn = vault.begin(keys, ctx.now)?;
    let mut m = txn.root().clone();
    let handle = m.professional(&w.who)?.handle.clone();
    let idx = m
        .professionals
        .iter()
        .position(|p| p.handle == handle)
        .unwrap_or_default();
    let msg = match action {
        Action::ProRm => {
            m.professionals.remove(idx);
            format!("Removed {handle} from your directory (grants already issued stay in your log)")
        }
        Action::ProBlock => {
            if m.professionals[idx].blocked {
                eprintln!("{handle} is already blocked");
                return Ok(());
            }
            m.professionals[idx].blocked = true;
            format!(
                "Blocked {handle}: no grant can be made to them until `carnet pro unblock {handle}`"
            )
        }
        _ => {
            if !m.professionals[idx].blocked {
                eprintln!("{handle} is not blocked");
                return Ok(());
            }
            m.professionals[idx].blocked = false;
            format!("Unblocked {handle}")
        }
    };
    let mut op = Op::new(action).detail("handle", handle);
    op.root = Some(m);
    super::print_notices(&txn.commit(op)?.notices);
    eprintln!("{msg}");
    Ok(())
}
