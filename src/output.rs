//! Results on stdout: text for people, or one JSON document with `--json`. Every result is
//! a [`View`]: one `Serialize` struct per output whose JSON is its serde form and whose text
//! is its `human` rendering, so the two cannot drift apart.
//!
//! Text for people may carry what strangers sent (webhook event names, BitPay's and
//! Splynx's messages): control characters in it are shown escaped, so no byte from a webhook
//! body can move the cursor, clear the screen or retitle an operator's terminal. `--json`
//! stays exact (JSON escapes them itself).

use std::borrow::Cow;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether this process has written its result document yet.
static EMITTED: AtomicBool = AtomicBool::new(false);

/// True once a result went to stdout: a failure after it (doctor's verdict) is not
/// written as a second JSON document.
pub fn emitted() -> bool {
    EMITTED.load(Ordering::Relaxed)
}

/// One command's result, in both renderings.
pub trait View: serde::Serialize {
    /// The text for people (empty: nothing is printed without `--json`).
    fn human(&self) -> String;
}

#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
}

impl Output {
    pub fn show(&self, view: &impl View) {
        EMITTED.store(true, Ordering::Relaxed);
        // The one place results are written (clippy.toml forbids stdout elsewhere).
        #[allow(clippy::disallowed_methods)]
        let mut stdout = std::io::stdout().lock();
        // A closed stdout (the caller went away) is not worth failing a settled payment for.
        let _ = if self.json {
            serde_json::to_writer(&mut stdout, view)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(stdout))
        } else {
            let human = view.human();
            if human.is_empty() {
                Ok(())
            } else {
                writeln!(stdout, "{}", printable(human.trim_end()))
            }
        };
    }
}

impl Output {
    /// A result that is a document of its own (`audit --csv`), written as it is.
    pub fn text(&self, text: &str) {
        EMITTED.store(true, Ordering::Relaxed);
        // The one place results are written (clippy.toml forbids stdout elsewhere).
        #[allow(clippy::disallowed_methods)]
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes());
    }
}

/// `text` with every control character except line feed and tab escaped (`\u{1b}`), C1
/// controls and DEL included.
pub fn printable(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            shown.push_str(&c.escape_unicode().to_string());
        } else {
            shown.push(c);
        }
    }
    Cow::Owned(shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_are_shown_not_obeyed() {
        assert_eq!(printable("plain\ttext\nline"), "plain\ttext\nline");
        assert_eq!(
            printable("invoice_paid\u{1b}[2J\u{1b}]0;owned\u{7}\r\u{7f}\u{9b}x"),
            "invoice_paid\\u{1b}[2J\\u{1b}]0;owned\\u{7}\\u{d}\\u{7f}\\u{9b}x"
        );
    }
}
