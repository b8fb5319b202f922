//! Results on stdout: text for people, or one JSON document with `--json`.

use std::io::Write;

#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
}

impl Output {
    pub fn emit(&self, human: &str, json: &serde_json::Value) {
        let mut stdout = std::io::stdout().lock();
        // A closed stdout (the caller went away) is not worth failing a settled payment for.
        let _ = if self.json {
            writeln!(stdout, "{json}")
        } else if human.is_empty() {
            Ok(())
        } else {
            writeln!(stdout, "{}", human.trim_end())
        };
    }
}
