//! Splynx's Modules-list settings file read as PHP reads it (`parse_ini_file($file, true)`,
//! the normal scanner), so that the add-on sees exactly what Splynx's own pages see. What
//! the form writes is covered, and the differential test (`tests/integration/
//! modules_list.rs`) compares this reading with PHP's own over thousands of generated
//! files:
//!
//! - a UTF-8 byte-order mark is skipped; lines end in `\n` or `\r\n`;
//! - `;` starts a comment, also after a value; a line without `=` is ignored;
//! - `[name]` starts a section (its name as written; text after `]` is ignored); naming a
//!   section again starts it afresh;
//! - `key = value`: the key trimmed; the value is a run of parts, each trimmed and joined
//!   without space: `"double quoted"` (may span lines; `\"` is `"` and `\\` is `\`, any
//!   other backslash stays), `'single quoted'` (as written), and unquoted text (`yes`,
//!   `on`, `true` read as "1"; `no`, `off`, `false`, `none`, `null` as "");
//! - a later key of the same name wins.
//!
//! PHP's expressions in unquoted values (`|`, `&`, `~`, `!`, `^`, parentheses), `${...}`
//! interpolation and `key[]` arrays are refused with the line: Splynx's form never writes
//! them, and reading them differently from PHP would be worse than saying so.

use std::collections::BTreeMap;

/// Sections of the file: name → key → value.
pub type Sections = BTreeMap<String, BTreeMap<String, String>>;

/// The largest settings file read: Splynx writes a few hundred bytes.
pub(super) const MAX_BYTES: usize = 256 * 1024;

/// Parses the file's text. Errors name the line.
pub fn parse(text: &str) -> Result<Sections, String> {
    if text.len() > MAX_BYTES {
        return Err(format!(
            "the file is larger than {MAX_BYTES} bytes (at most that much is read); Splynx writes a few hundred"
        ));
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = Reader {
        chars: text.chars().collect(),
        at: 0,
        line: 1,
    };
    let mut sections = Sections::new();
    // Keys before any section belong to none; nothing the add-on reads is there.
    let mut current = String::new();
    while let Some(c) = reader.peek() {
        match c {
            '\n' | '\r' | ' ' | '\t' => {
                reader.bump();
            }
            ';' => reader.skip_line(),
            '[' => {
                let line = reader.line;
                reader.bump();
                let name = reader.take_until(|c| c == ']' || c == '\n');
                if reader.peek() != Some(']') {
                    return Err(format!("line {line}: the section name has no closing ]"));
                }
                reader.skip_line();
                sections.insert(name.clone(), BTreeMap::new());
                current = name;
            }
            _ => {
                let line = reader.line;
                let key = reader.take_until(|c| c == '=' || c == '\n' || c == ';');
                if reader.peek() != Some('=') {
                    // A key without a value: PHP drops it.
                    reader.skip_line();
                    continue;
                }
                reader.bump();
                let key = key.trim().to_string();
                if key.is_empty() {
                    return Err(format!("line {line}: a value without a key"));
                }
                if key.contains('[') || key.contains(']') {
                    return Err(format!("line {line}: array keys ({key}) are not supported"));
                }
                let value = reader
                    .value()
                    .map_err(|message| format!("line {line}: {key}: {message}"))?;
                sections
                    .entry(current.clone())
                    .or_default()
                    .insert(key, value);
            }
        }
    }
    Ok(sections)
}

struct Reader {
    chars: Vec<char>,
    at: usize,
    line: usize,
}

impl Reader {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn take_until(&mut self, stop: impl Fn(char) -> bool) -> String {
        let mut taken = String::new();
        while let Some(c) = self.peek().filter(|c| !stop(*c)) {
            taken.push(c);
            self.bump();
        }
        taken
    }

    fn skip_line(&mut self) {
        self.take_until(|c| c == '\n');
        self.bump();
    }

    /// A value, up to the end of its line (or of its last quoted part).
    fn value(&mut self) -> Result<String, String> {
        let mut parts: Vec<String> = Vec::new();
        let mut words = 0;
        loop {
            match self.peek() {
                None | Some('\n') => break,
                Some(';') => {
                    self.take_until(|c| c == '\n');
                    break;
                }
                Some(' ' | '\t' | '\r') => {
                    self.bump();
                }
                Some('"') => {
                    self.bump();
                    parts.push(self.double_quoted()?);
                }
                Some('\'') => {
                    self.bump();
                    let text = self.take_until(|c| c == '\'');
                    if self.bump() != Some('\'') {
                        return Err("a single-quoted value is not closed".into());
                    }
                    parts.push(text);
                }
                Some(_) => {
                    let text = self.take_until(|c| matches!(c, '\n' | ';' | '"' | '\''));
                    let text = text.trim().to_string();
                    if let Some(bad) = text
                        .chars()
                        .find(|c| matches!(c, '=' | '|' | '&' | '~' | '!' | '^' | '(' | ')'))
                    {
                        return Err(format!(
                            "'{bad}' outside quotes (PHP reads it as an operator): quote the value"
                        ));
                    }
                    if text.contains("${") {
                        return Err(
                            "${...} outside quotes is not supported: quote the value".into()
                        );
                    }
                    words += 1;
                    parts.push(text);
                }
            }
        }
        // A lone unquoted word may be one of PHP's constants.
        if let ([word], 1) = (parts.as_slice(), words) {
            match word.to_ascii_lowercase().as_str() {
                "yes" | "on" | "true" => return Ok("1".into()),
                "no" | "off" | "false" | "none" | "null" => return Ok(String::new()),
                _ => {}
            }
        }
        Ok(parts.concat())
    }

    /// After the opening `"`: up to the closing one.
    fn double_quoted(&mut self) -> Result<String, String> {
        let mut text = String::new();
        loop {
            match self.bump() {
                None => return Err("a double-quoted value is not closed".into()),
                Some('"') => return Ok(text),
                Some('\\') => match self.peek() {
                    Some(c @ ('"' | '\\')) => {
                        self.bump();
                        text.push(c);
                    }
                    _ => text.push('\\'),
                },
                Some('$') if self.peek() == Some('{') => {
                    return Err("${...} interpolation is not supported".into())
                }
                Some(c) => text.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Result<String, String> {
        parse(text).map(|s| s["a"]["k"].clone())
    }

    /// Each row as PHP 8's `parse_ini_string($text, true)` reads it.
    #[test]
    fn reads_as_php_does() {
        for (text, want) in [
            ("[a]\nk = \"x\\\"y\"\n", "x\"y"),
            ("[a]\nk = \"x\\\\y\"\n", "x\\y"),
            ("[a]\nk = \"x\\ny\"\n", "x\\ny"),
            ("[a]\nk = plain ; comment\n", "plain"),
            ("[a]\nk = plain;c\n", "plain"),
            ("[a]\nk = \"2.50000\"\n", "2.50000"),
            ("[a]\nk = 2,5\n", "2,5"),
            ("[a]\nk = YES\n", "1"),
            ("[a]\nk = \"yes\"\n", "yes"),
            ("[a]\nk = none\n", ""),
            ("\u{feff}; <?php exit(); ?>\n[a]\nk = \"v\"\n", "v"),
            ("[a]\nk = \"a;b\" ; c\n", "a;b"),
            ("[a]\nk = a b  c  \n", "a b  c"),
            ("[a]\nk = \"a\" b \"c\"\n", "abc"),
            ("[a]\nk = a'b'\n", "ab"),
            ("[a]\r\nk=v\r\n", "v"),
            ("[a]\nk = \"multi\nline\"\n", "multi\nline"),
            ("[a]\nk = x # y\n", "x # y"),
            ("[a] junk\nk = v\n", "v"),
            ("[a]\nk = v\nk = w\n", "w"),
            ("[a]\nk = v\\\n", "v\\"),
        ] {
            assert_eq!(one(text), Ok(want.to_string()), "{text:?}");
        }
        for bad in [
            "[a]\nk = a=b\n",
            "[a]\nk = \"unterminated\n",
            "[a\nk = v\n",
            "[a]\n= v\n",
            "[a]\nk = \\\"v\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse("# hash\n[a]\nk\n").unwrap()["a"].len(), 0);
        assert!(parse(&"x".repeat(MAX_BYTES + 1))
            .unwrap_err()
            .contains("larger than"));
    }
}
