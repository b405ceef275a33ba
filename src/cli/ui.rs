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

/// Writes a line of data to stdout, returning the error instead of panicking as `println!`
/// does, so that `carnet ls | head` ends quietly on a closed pipe.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)?
    }};
}
