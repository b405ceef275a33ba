//! Talking to people: progress bars and questions on stderr, only when a terminal is there.
//! The text helpers (`clean`, `ellipsize`, `human_size`) live in `crate::text` and are
//! re-exported here for the command handlers.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub use crate::text::*;

/// Files above this size get a byte progress bar (below it, the work takes well under a second).
pub const BIG_FILE: u64 = 8 << 20;

pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// A byte-counting bar, hidden when stderr is not a terminal (scripts, CI, pipes).
pub fn bytes_bar(total: u64, msg: &str) -> ProgressBar {
    if !stderr_is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    pb.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    pb.set_message(msg.to_string());
    pb
}

/// A count bar for many files (folder imports, exports).
pub fn count_bar(total: u64, msg: &str) -> ProgressBar {
    if !stderr_is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(msg.to_string());
    pb
}

/// Asks a yes/no question on the terminal; `None` when there is no terminal to ask.
pub fn confirm(question: &str) -> Option<bool> {
    if !std::io::stdin().is_terminal() || !stderr_is_terminal() {
        return None;
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).is_err() {
        return Some(false);
    }
    Some(matches!(
        answer.trim().to_lowercase().as_str(),
        "y" | "yes" | "o" | "oui"
    ))
}

/// Asks for a line of text on the terminal; `None` when there is no terminal to ask.
pub fn ask_line(question: &str) -> Option<String> {
    if !std::io::stdin().is_terminal() || !stderr_is_terminal() {
        return None;
    }
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).ok()?;
    Some(answer.trim_end_matches(['\r', '\n']).to_string())
}

/// Writes a line of data to stdout, returning the error instead of panicking as `println!`
/// does, so that `carnet ls | head` ends quietly on a closed pipe.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)?
    }};
}

/// A progress bar cleared from the terminal when dropped.
struct Cleared(ProgressBar);

impl Drop for Cleared {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// Progress of a use case that handles many files: a count bar (two files or more), and a byte
/// bar for each big file; nothing when stderr is not a terminal.
pub struct FileBars {
    label: &'static str,
    count: std::sync::OnceLock<ProgressBar>,
}

impl FileBars {
    pub fn new(label: &'static str) -> FileBars {
        FileBars {
            label,
            count: std::sync::OnceLock::new(),
        }
    }

    pub fn finish(&self) {
        if let Some(b) = self.count.get() {
            b.finish_and_clear();
        }
    }
}

impl crate::ops::Progress for FileBars {
    fn start(&self, files: u64) {
        let bar = count_bar(files, self.label);
        if files < 2 {
            bar.finish_and_clear();
        }
        let _ = self.count.set(bar);
    }

    fn file<'a>(&'a self, path: &std::path::Path, size: u64) -> Box<dyn Fn(u64) + 'a> {
        if let Some(b) = self.count.get() {
            b.set_message(clean(&path.display().to_string()));
        }
        if size < BIG_FILE {
            return Box::new(|_| {});
        }
        let bar = Cleared(bytes_bar(
            size,
            &clean(&path.file_name().unwrap_or_default().to_string_lossy()),
        ));
        // The bar goes when the use case drops the function, whether the file ended or failed.
        Box::new(move |n| bar.0.set_position(n))
    }

    fn file_done(&self) {
        if let Some(b) = self.count.get() {
            b.inc(1);
        }
    }
}

// The terminal crate stays out of the library, tests included: its sizes are checked here.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_the_progress_bars_show_them() {
        for n in [
            0,
            1,
            1023,
            1024,
            8868,
            1_443_000,
            1 << 30,
            1_610_612_736,
            u64::MAX,
        ] {
            assert_eq!(human_size(n), indicatif::HumanBytes(n).to_string(), "{n}");
        }
    }
}
