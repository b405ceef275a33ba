//! The man pages under `man/` are rendered from the clap definitions the binary parses
//! (`carnet::cli::args::Cli`); this test fails when a committed page is missing, stale or left over.
//!
//! To (re)write them after changing `src/args.rs`:
//!
//! ```sh
//! CARNET_UPDATE_MAN=1 cargo test --test man_pages
//! ```
//!
//! One page per command: `carnet.1`, `carnet-init.1`, ..., `carnet-pro-add.1` for nested ones.
//! clap_mangen renders the name, synopsis, description, options and subcommands; the text after
//! the options (`after_help`) is split here into the usual EXIT STATUS, NOTES and EXAMPLES
//! sections, since clap_mangen would put it all, unformatted, under one "EXTRA" heading.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use carnet::cli::roles;
use clap_mangen::Man;
use roff::{Roff, roman};

const UPDATE_VAR: &str = "CARNET_UPDATE_MAN";

fn man_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("man")
}

/// Every page, by file name.
fn render_all() -> BTreeMap<String, String> {
    // As clap_mangen::generate_to does: no `help` subcommand, and a built command so that
    // subcommands know their full names (carnet-pro-add).
    let mut cmd = roles::command().disable_help_subcommand(true);
    cmd.build();
    let mut pages = BTreeMap::new();
    walk(&cmd, &[], &mut pages);
    pages
}

fn walk(cmd: &clap::Command, parents: &[String], pages: &mut BTreeMap<String, String>) {
    let man = Man::new(cmd.clone())
        .source(format!("carnet {}", env!("CARGO_PKG_VERSION")))
        .manual("carnet manual");
    let page = render(&man, cmd, parents)
        .unwrap_or_else(|e| panic!("cannot render {}: {e}", man.get_filename()));
    let name = cmd
        .get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_string();
    pages.insert(man.get_filename(), page);
    let mut lineage = parents.to_vec();
    lineage.push(name);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        walk(sub, &lineage, pages);
    }
}

fn render(man: &Man, cmd: &clap::Command, parents: &[String]) -> io::Result<String> {
    let mut page = String::new();
    page.push_str(&part(|w| man.render_title(w))?);
    page.push_str(&body(part(|w| man.render_name_section(w))?));
    page.push_str(&body(part(|w| man.render_synopsis_section(w))?));
    page.push_str(&body(part(|w| man.render_description_section(w))?));
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        page.push_str(&body(part(|w| man.render_options_section(w))?));
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        page.push_str(&body(part(|w| man.render_subcommands_section(w))?));
    }
    let after = cmd
        .get_after_long_help()
        .or_else(|| cmd.get_after_help())
        .map(|s| s.to_string())
        .unwrap_or_default();
    page.push_str(&body(after_help_sections(&after, parents)));
    if cmd.get_version().is_some() {
        page.push_str(&body(part(|w| man.render_version_section(w))?));
    }
    Ok(page)
}

fn part(f: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> io::Result<String> {
    let mut buf = Vec::new();
    f(&mut buf)?;
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Every roff rendering starts with the same two-line preamble defining `\*(Aq`; keep only the
/// title's copy.
fn body(rendered: String) -> String {
    match rendered.strip_prefix(".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n") {
        Some(rest) => rest.to_string(),
        None => rendered,
    }
}

/// Splits the help epilogue into man sections: "Examples:", "Exit status:" and "Environment:" paragraphs go to
/// their own sections, anything else to NOTES; indented lines keep their line breaks.
fn after_help_sections(text: &str, parents: &[String]) -> String {
    let mut exit_status = Roff::new();
    let mut environment = Roff::new();
    let mut notes = Roff::new();
    let mut examples = Roff::new();
    for para in text
        .split("\n\n")
        .map(str::trim_end)
        .filter(|p| !p.is_empty())
    {
        let mut lines = para.lines();
        let first = lines.next().unwrap_or_default();
        let (target, head_rest) = match first.split_once(':') {
            Some((h, rest)) if h.starts_with("Example") => (&mut examples, rest),
            Some(("Exit status", rest)) => (&mut exit_status, rest),
            Some(("Environment", rest)) => (&mut environment, rest),
            _ => (&mut notes, first),
        };
        let rest: Vec<&str> = std::iter::once(head_rest.trim())
            .filter(|l| !l.is_empty())
            .chain(lines)
            .collect();
        target.control("PP", []);
        let (prose, block): (Vec<&str>, Vec<&str>) =
            rest.iter().partition(|l| !l.starts_with("  "));
        if !prose.is_empty() {
            target.text([roman(prose.join(" "))]);
        }
        if !block.is_empty() {
            // Commands and lists: one per line, as in --help.
            target.control("nf", []).control("RS", ["4"]);
            for l in block {
                target.text([roman(l.trim_start())]);
            }
            target.control("RE", []).control("fi", []);
        }
    }
    let mut sections = vec![
        ("EXIT STATUS", exit_status),
        ("ENVIRONMENT", environment),
        ("NOTES", notes),
        ("EXAMPLES", examples),
    ];
    if !parents.is_empty() {
        let mut see_also = Roff::new();
        let refs: Vec<String> = parents.iter().map(|p| format!("{p}(1)")).collect();
        see_also.text([roman(refs.join(", "))]);
        sections.push(("SEE ALSO", see_also));
    }
    let mut out = Roff::new();
    for (title, section) in sections {
        if section != Roff::new() {
            out.control("SH", [title]);
            out.extend([section]);
        }
    }
    out.render()
}

#[test]
fn man_pages_are_current() {
    let pages = render_all();
    let dir = man_dir();
    let committed: BTreeMap<String, String> = fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "1"))
                .filter_map(|p| {
                    let name = p.file_name()?.to_string_lossy().into_owned();
                    Some((name, fs::read_to_string(&p).unwrap_or_default()))
                })
                .collect()
        })
        .unwrap_or_default();

    if std::env::var_os(UPDATE_VAR).is_some_and(|v| v == "1") {
        fs::create_dir_all(&dir).expect("cannot create man/");
        for (name, text) in &pages {
            if committed.get(name) != Some(text) {
                fs::write(dir.join(name), text).expect("cannot write a man page");
                eprintln!("wrote man/{name}");
            }
        }
        for name in committed.keys().filter(|n| !pages.contains_key(*n)) {
            fs::remove_file(dir.join(name)).expect("cannot remove a stale man page");
            eprintln!("removed man/{name}");
        }
        return;
    }

    let missing: Vec<&String> = pages
        .keys()
        .filter(|n| !committed.contains_key(*n))
        .collect();
    let stale: Vec<&String> = pages
        .iter()
        .filter(|(n, t)| committed.get(*n).is_some_and(|c| c != *t))
        .map(|(n, _)| n)
        .collect();
    let extra: Vec<&String> = committed
        .keys()
        .filter(|n| !pages.contains_key(*n))
        .collect();
    assert!(
        missing.is_empty() && stale.is_empty() && extra.is_empty(),
        "the man pages in man/ do not match src/args.rs:\n  missing: {missing:?}\n  stale: {stale:?}\n  \
         for no command: {extra:?}\nregenerate them with: {UPDATE_VAR}=1 cargo test --test man_pages"
    );
}

#[test]
fn carnet_1_documents_the_exit_codes_and_every_command_has_a_page() {
    let pages = render_all();
    let top = pages.get("carnet.1").expect("carnet.1");
    assert!(top.contains(".SH \"EXIT STATUS\""), "{top}");
    for line in [
        "0  success",
        "1  error",
        "2  usage error",
        "3  integrity check failed (vault or bundle)",
        "4  grant expired or not yet valid",
    ] {
        assert!(top.contains(line), "carnet.1 lacks {line:?}");
    }
    for name in [
        "carnet-init.1",
        "carnet-pro.1",
        "carnet-pro-add.1",
        "carnet-demo.1",
    ] {
        assert!(
            pages.contains_key(name),
            "no {name} among {:?}",
            pages.keys()
        );
    }
    for (name, page) in &pages {
        if name != "carnet-pro.1" {
            assert!(
                page.contains(".SH EXAMPLES"),
                "{name} has no EXAMPLES section"
            );
        }
    }
}
