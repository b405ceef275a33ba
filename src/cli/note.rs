//! `carnet note`: the patient's own note, from an argument, standard input or an editor, added
//! as a `note-patient` Markdown document through `ops::import` (never written in clear in the
//! vault; the editor's file is private and removed as soon as it is read).

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use zeroize::Zeroizing;

use super::Ctx;
use super::args::NoteArgs;
use crate::dates;
use crate::error::Error;
use crate::ids;
use crate::ops::import;

/// A note's text, in memory only, wiped when dropped.
struct Text(Zeroizing<Vec<u8>>);

impl AsRef<[u8]> for Text {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Notes are typed or pasted: anything larger is a file, for `carnet add`.
const MAX_NOTE: u64 = 1 << 20;

pub fn run(ctx: &Ctx, a: NoteArgs) -> anyhow::Result<()> {
    let title = a.title.as_deref().map(str::trim).map(str::to_string);
    if title.as_deref() == Some("") {
        return Err(Error::input(
            "the title is empty",
            "give a title, or leave --title out to use the note's first line",
        )
        .into());
    }
    let date = a.date.as_deref().map(dates::parse_date).transpose()?;
    let tags = super::add::clean_tags(&a.tags)?;
    let vault = ctx.open_vault()?;
    // Authenticated before the text is asked for: typing a note for a vault that will not open
    // would be lost work.
    let snap = vault.read(&ctx.keys)?;
    snap.root.check_writable()?;
    let keys = snap.keys;
    let text = match a.text.as_deref() {
        Some("-") => read_stdin()?,
        Some(t) => Zeroizing::new(t.as_bytes().to_vec()),
        None if !std::io::stdin().is_terminal() => read_stdin()?,
        None => edit()?,
    };
    let body = std::str::from_utf8(&text).map_err(|_| {
        Error::input(
            "the note is not UTF-8 text",
            "write it as text; add other files with `carnet add`",
        )
    })?;
    if body.trim().is_empty() {
        return Err(Error::input(
            "the note is empty: nothing was written",
            "give its text as an argument, on standard input, or in the editor",
        )
        .into());
    }
    let title = title.unwrap_or_else(|| first_line(body));
    let req = import::Request {
        category: Some("note-patient"),
        date,
        author: None,
        tags,
        title: Some(title),
        note: true,
    };
    let collected = import::Collected {
        inputs: vec![import::Input::stream(Box::new(std::io::Cursor::new(Text(
            text,
        ))))],
        skipped: Vec::new(),
    };
    let report = import::import(&vault, keys, collected, &req, ctx.now, &crate::ops::Silent)?;
    super::print_notices(&report.notices);
    if a.json {
        return super::print_json(&report.outcomes);
    }
    for o in &report.outcomes {
        match o.status {
            import::Status::Added => crate::outln!(
                "noted {}  {}",
                ids::short(&o.id),
                super::ui::clean(&o.title)
            ),
            import::Status::Duplicate => eprintln!(
                "this note is already in the vault as {} ({})",
                ids::short(&o.id),
                super::ui::clean(&o.title)
            ),
        }
    }
    Ok(())
}

/// The note's first non-empty line, without Markdown heading marks, at most 80 characters.
fn first_line(body: &str) -> String {
    let line = body
        .lines()
        .map(|l| l.trim().trim_start_matches('#').trim())
        .find(|l| !l.is_empty())
        .unwrap_or("Note");
    crate::text::ellipsize(line, 80)
}

fn read_stdin() -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(Vec::new());
    std::io::stdin()
        .take(MAX_NOTE + 1)
        .read_to_end(&mut buf)
        .context("cannot read standard input")?;
    too_long(&buf)?;
    Ok(buf)
}

fn too_long(buf: &[u8]) -> Result<(), Error> {
    if buf.len() as u64 > MAX_NOTE {
        return Err(Error::input(
            format!(
                "the note is longer than {}",
                crate::text::human_size(MAX_NOTE)
            ),
            "add long texts as a file with `carnet add FILE --category note-patient`",
        ));
    }
    Ok(())
}

/// Opens $VISUAL or $EDITOR on a private file, reads it back, then overwrites and removes it.
fn edit() -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let text = edit_text(b"", "carnet-note-", "note.md")?;
    too_long(&text)?;
    Ok(text)
}

/// Opens $VISUAL or $EDITOR on a private file `name` that starts as `initial`, reads it back
/// (at most 1 MiB and a byte), then overwrites and removes it (`carnet note`, `carnet profile
/// edit`).
pub(super) fn edit_text(
    initial: &[u8],
    prefix: &str,
    name: &str,
) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let editor = std::env::var("VISUAL")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .or_else(|| {
            std::env::var("EDITOR")
                .ok()
                .filter(|e| !e.trim().is_empty())
        })
        .ok_or_else(|| {
            Error::input(
                "no text given, and neither $VISUAL nor $EDITOR names an editor",
                "give the text as an argument (carnet note \"...\"), pipe it in, or set EDITOR",
            )
        })?;
    // tmpfs on most systems, and private to the user: the text never reaches a disk there. The
    // folder is 0700 and the file 0600 either way; both go when `dir` drops, even on error.
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    sweep_stale(&base);
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir_in(&base)
        .with_context(|| format!("cannot create a private folder in {}", base.display()))?;
    let path = dir.path().join(name);
    let result = run_editor(&editor, &path, initial);
    let text = result.and_then(|()| {
        let mut buf = Zeroizing::new(Vec::new());
        match std::fs::File::open(&path) {
            Ok(f) => {
                f.take(MAX_NOTE + 1)
                    .read_to_end(&mut buf)
                    .with_context(|| format!("cannot read {}", path.display()))?;
            }
            // The editor quit without saving: an empty note, refused by the caller.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(anyhow::Error::from(e).context("cannot read the note")),
        }
        Ok(buf)
    });
    shred(&path);
    drop(dir);
    text
}

fn run_editor(editor: &str, path: &Path, initial: &[u8]) -> anyhow::Result<()> {
    crate::fsutil::create_new_private(path)
        .and_then(|mut f| f.write_all(initial))
        .with_context(|| format!("cannot create {}", path.display()))?;
    // Through the shell, like git: EDITOR may carry arguments ("code --wait").
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("carnet-editor")
        .arg(path)
        .status()
        .with_context(|| format!("cannot start the editor {editor:?}"))?;
    if !status.success() {
        return Err(Error::input(
            format!("the editor {editor:?} failed ({status}): nothing was written"),
            "check $VISUAL / $EDITOR, or give the text as an argument",
        )
        .into());
    }
    Ok(())
}

/// A note folder left by a carnet killed while the editor was open (a closed terminal, a
/// dropped ssh session) still holds the text in clear: shredded and removed by the next
/// `carnet note`, once untouched for an hour (one being edited right now is left alone).
fn sweep_stale(base: &Path) {
    let Ok(rd) = std::fs::read_dir(base) else {
        return;
    };
    for e in rd.flatten() {
        let path = e.path();
        let ours = e.file_name().to_string_lossy().starts_with("carnet-note-")
            && e.file_type().is_ok_and(|t| t.is_dir());
        if ours && crate::fsutil::untouched_for(&path, std::time::Duration::from_secs(3600)) {
            if let Ok(files) = std::fs::read_dir(&path) {
                for f in files.flatten() {
                    shred(&f.path());
                }
            }
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// Overwrites the file with zeros before it is removed: a note must not linger on a disk.
fn shred(path: &Path) {
    if let Ok(meta) = std::fs::symlink_metadata(path)
        && meta.is_file()
        && let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(path)
    {
        let zeros = vec![0u8; 64 * 1024];
        let mut left = meta.len();
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            if f.write_all(&zeros[..n]).is_err() {
                break;
            }
            left -= n as u64;
        }
        let _ = f.sync_all();
    }
    let _ = std::fs::remove_file(path);
}
