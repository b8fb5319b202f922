//! Man pages and shell completions for splynx-bitpay, generated from the CLI definition
//! (`splynx_bitpay::cli::Cli`) plus hand-written roff kept in `man/src/`.
//!
//! | output | from |
//! |---|---|
//! | `man/splynx-bitpay.1` | clap (title, NAME, SYNOPSIS, DESCRIPTION, OPTIONS, COMMANDS with every flag and example) + `man/src/description.roff` + `man/src/sections.roff` (EXIT STATUS, FILES, ENVIRONMENT, EXAMPLES, SEE ALSO) |
//! | `man/splynx-bitpay.toml.5` | `man/src/splynx-bitpay.toml.5` (hand-written; `@VERSION@` filled in), checked against `examples/config.toml` |
//! | `completions/splynx-bitpay.bash`, `completions/_splynx-bitpay` | clap_complete |

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command as Process;

use clap::{Arg, ArgAction, Command, CommandFactory};
use clap_complete::Shell;
use roff::{bold, italic, roman, Inline, Roff};
use splynx_bitpay::cli::Cli;

pub const BIN: &str = "splynx-bitpay";

/// The workspace root (this crate lives in `xtask/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the workspace")
        .to_path_buf()
}

/// Every generated file: path relative to the workspace root, and its content.
pub fn generate(root: &Path) -> Result<Vec<(PathBuf, String)>, String> {
    let read =
        |rel: &str| fs::read_to_string(root.join(rel)).map_err(|e| format!("reading {rel}: {e}"));
    let description = read("man/src/description.roff")?;
    let sections = read("man/src/sections.roff")?;
    let toml5 = read("man/src/splynx-bitpay.toml.5")?;
    Ok(vec![
        (
            PathBuf::from("man/splynx-bitpay.1"),
            man_page(&description, &sections)?,
        ),
        (
            PathBuf::from("man/splynx-bitpay.toml.5"),
            ascii_roff(&toml5.replace("@VERSION@", version())),
        ),
        (
            PathBuf::from("completions/splynx-bitpay.bash"),
            completion(Shell::Bash)?,
        ),
        (
            PathBuf::from("completions/_splynx-bitpay"),
            completion(Shell::Zsh)?,
        ),
    ])
}

pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// The version the CLI reports (`splynx-bitpay --version`).
pub fn cli_version() -> String {
    Cli::command()
        .get_version()
        .map(str::to_string)
        .unwrap_or_default()
}

fn completion(shell: Shell) -> Result<String, String> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), BIN, &mut buf);
    String::from_utf8(buf).map_err(|e| e.to_string())
}

/// `splynx-bitpay(1)`.
pub fn man_page(description: &str, sections: &str) -> Result<String, String> {
    let cmd = Cli::command();
    let man = clap_mangen::Man::new(cmd.clone())
        .title("SPLYNX-BITPAY")
        .source(format!("{BIN} {}", cli_version()))
        .manual("User Commands");
    let mut out = Vec::new();
    let io = |e: std::io::Error| e.to_string();
    // clap_mangen leaves an empty date unquoted, which shifts the .TH fields: write it here.
    writeln!(
        out,
        ".TH SPLYNX-BITPAY 1 \"\" \"{BIN} {}\" \"User Commands\"",
        cli_version()
    )
    .map_err(|e| e.to_string())?;
    man.render_name_section(&mut out).map_err(io)?;
    man.render_synopsis_section(&mut out).map_err(io)?;
    man.render_description_section(&mut out).map_err(io)?;
    let mut page = String::from_utf8(out).map_err(|e| e.to_string())?;
    page.push_str(".PP\n");
    page.push_str(description.trim_end());
    page.push('\n');
    let mut out = Vec::new();
    man.render_options_section(&mut out).map_err(io)?;
    let options = String::from_utf8(out).map_err(|e| e.to_string())?;
    page.push_str(&options.replacen(".SH OPTIONS", ".SH \"GLOBAL OPTIONS\"", 1));
    page.push_str(&commands_section(&cmd));
    page.push_str(sections.trim_end());
    page.push('\n');
    Ok(ascii_roff(&tidy(&page)))
}

/// clap_mangen starts every rendered piece with the same string definition; keep one,
/// at the top, and name the subcommand placeholder like the rest of the page does.
fn tidy(page: &str) -> String {
    const PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";
    let body = page.replace(PREAMBLE, "");
    let body = body.replace("<\\fIsubcommands\\fR>", "\\fIcommand\\fR [\\fIargs\\fR]");
    format!("{PREAMBLE}{body}")
}

/// `COMMANDS`: each subcommand with its synopsis, description, every argument and flag,
/// and its examples (the `after_help` text).
fn commands_section(cmd: &Command) -> String {
    let mut roff = Roff::default();
    roff.control("SH", ["COMMANDS"]);
    roff.text([roman(
        "Every command also takes the global options above. Run any command with -h for a summary.",
    )]);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("{BIN} {}", sub.get_name());
        roff.control("SS", [sub.get_name()]);
        roff.text(synopsis(&name, sub));
        if let Some(about) = sub.get_long_about().or_else(|| sub.get_about()) {
            roff.control("PP", []);
            roff.text([roman(about.to_string())]);
        }
        let args: Vec<&Arg> = sub
            .get_arguments()
            .filter(|a| !a.is_hide_set() && !is_builtin(a))
            .collect();
        for arg in args.iter().filter(|a| a.is_positional()) {
            arg_entry(&mut roff, arg);
        }
        for arg in args.iter().filter(|a| !a.is_positional()) {
            arg_entry(&mut roff, arg);
        }
        if let Some(after) = sub.get_after_long_help().or_else(|| sub.get_after_help()) {
            after_help(&mut roff, &after.to_string());
        }
    }
    roff.to_roff()
}

fn is_builtin(arg: &Arg) -> bool {
    matches!(arg.get_id().as_str(), "help" | "version")
}

fn value_name(arg: &Arg) -> String {
    arg.get_value_names()
        .and_then(|v| v.first().map(|s| s.to_string()))
        .unwrap_or_else(|| arg.get_id().as_str().to_uppercase())
}

fn takes_value(arg: &Arg) -> bool {
    arg.get_num_args().is_some_and(|n| n.takes_values())
        || matches!(arg.get_action(), ArgAction::Set | ArgAction::Append)
}

fn flag_inlines(arg: &Arg) -> Vec<Inline> {
    let mut out = Vec::new();
    if let Some(short) = arg.get_short() {
        out.push(bold(format!("-{short}")));
        if arg.get_long().is_some() {
            out.push(roman(", "));
        }
    }
    if let Some(long) = arg.get_long() {
        out.push(bold(format!("--{long}")));
    }
    if takes_value(arg) {
        out.push(roman(" "));
        out.push(italic(value_name(arg)));
    }
    out
}

fn synopsis(name: &str, sub: &Command) -> Vec<Inline> {
    let mut line = vec![bold(name.to_string())];
    for arg in sub
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !is_builtin(a))
    {
        line.push(roman(" "));
        let required = arg.is_required_set();
        if !required {
            line.push(roman("["));
        }
        if arg.is_positional() {
            line.push(italic(value_name(arg)));
        } else {
            // Short synopsis: the long form only.
            match arg.get_long() {
                Some(long) => line.push(bold(format!("--{long}"))),
                None => line.push(bold(format!("-{}", arg.get_short().unwrap_or('?')))),
            }
            if takes_value(arg) {
                line.push(roman(" "));
                line.push(italic(value_name(arg)));
            }
        }
        if !required {
            line.push(roman("]"));
        }
    }
    line
}

fn arg_entry(roff: &mut Roff, arg: &Arg) {
    roff.control("TP", []);
    if arg.is_positional() {
        roff.text([italic(value_name(arg))]);
    } else {
        roff.text(flag_inlines(arg));
    }
    let mut help = arg
        .get_long_help()
        .or_else(|| arg.get_help())
        .map(|h| h.to_string())
        .unwrap_or_default();
    if !help.is_empty() && !help.ends_with('.') {
        help.push('.');
    }
    let possible: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| v.get_name().to_string())
        .collect();
    if !possible.is_empty() && takes_value(arg) {
        let _ = write!(help, " One of: {}.", possible.join(", "));
    }
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    if !defaults.is_empty() {
        let _ = write!(help, " Default: {}.", defaults.join(", "));
    }
    if arg.is_required_set() {
        help.push_str(" Required.");
    }
    roff.text([roman(help.trim().to_string())]);
}

/// `Examples:` text: plain lines become paragraphs, indented lines a literal block.
fn after_help(roff: &mut Roff, text: &str) {
    let mut block: Vec<String> = Vec::new();
    let flush = |roff: &mut Roff, block: &mut Vec<String>| {
        if block.is_empty() {
            return;
        }
        roff.control("RS", ["4"]);
        roff.control("nf", []);
        for line in block.drain(..) {
            roff.text([roman(line)]);
        }
        roff.control("fi", []);
        roff.control("RE", []);
    };
    for line in text.lines() {
        if let Some(command) = line.strip_prefix("  ") {
            block.push(command.trim().to_string());
        } else {
            flush(roff, &mut block);
            if !line.trim().is_empty() {
                roff.control("PP", []);
                roff.text([roman(line.trim().to_string())]);
            }
        }
    }
    flush(roff, &mut block);
}

/// groff reads ASCII: other characters become `\[uXXXX]` escapes.
pub fn ascii_roff(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let _ = write!(out, "\\[u{:04X}]", c as u32);
        }
    }
    out
}

/// Writes every generated file under `root`.
pub fn write_docs(root: &Path) -> Result<Vec<PathBuf>, String> {
    let mut written = Vec::new();
    for (rel, content) in generate(root)? {
        let path = root.join(&rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        fs::write(&path, content).map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(rel);
    }
    Ok(written)
}

/// Regenerates into `scratch` and compares with the committed files; returns one line
/// per stale or missing file (with a diff when `diff` is installed).
pub fn stale_files(root: &Path, scratch: &Path) -> Result<Vec<String>, String> {
    let mut problems = Vec::new();
    for (rel, content) in generate(root)? {
        let fresh = scratch.join(&rel);
        if let Some(parent) = fresh.parent() {
            fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        fs::write(&fresh, &content).map_err(|e| e.to_string())?;
        let committed = root.join(&rel);
        match fs::read_to_string(&committed) {
            Ok(existing) if existing == content => {}
            Ok(_) => {
                let diff = Process::new("diff")
                    .arg("-u")
                    .arg(&committed)
                    .arg(&fresh)
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default();
                problems.push(format!(
                    "{} is stale: run `cargo run -p xtask -- docs` and commit it\n{diff}",
                    rel.display()
                ));
            }
            Err(_) => problems.push(format!(
                "{} is missing: run `cargo run -p xtask -- docs` and commit it",
                rel.display()
            )),
        }
    }
    Ok(problems)
}

/// `[section] key` pairs in `examples/config.toml`, commented-out keys included.
pub fn example_keys(example: &str) -> Vec<(String, String)> {
    let mut keys = Vec::new();
    let mut section = String::new();
    for line in example.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let body = line.trim_start_matches('#').trim_start();
        if let Some((key, _)) = body.split_once(" = ") {
            if !key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                keys.push((section.clone(), key.to_string()));
            }
        }
    }
    keys.dedup();
    keys
}

/// `[section] key` pairs documented in the toml(5) source: `.SS "[section]"` headings
/// followed by `.TP` / `.B key` entries.
pub fn documented_keys(page: &str) -> Vec<(String, String)> {
    let mut keys = Vec::new();
    let mut section = String::new();
    let mut after_tp = false;
    for line in page.lines() {
        if let Some(rest) = line.strip_prefix(".SS ") {
            let name = rest.trim().trim_matches('"');
            section = name
                .strip_prefix('[')
                .and_then(|n| n.strip_suffix(']'))
                .unwrap_or("")
                .to_string();
            after_tp = false;
        } else if line == ".TP" {
            after_tp = true;
        } else if after_tp {
            if let Some(key) = line.strip_prefix(".B ") {
                if !section.is_empty() {
                    keys.push((section.clone(), key.trim().to_string()));
                }
            }
            after_tp = false;
        }
    }
    keys
}

/// The documentation's promises that code can check: every config key documented, every
/// exit code in EXIT STATUS, every command in the page.
pub fn coverage_problems(root: &Path) -> Result<Vec<String>, String> {
    let read =
        |rel: &str| fs::read_to_string(root.join(rel)).map_err(|e| format!("reading {rel}: {e}"));
    let mut problems = Vec::new();
    let example = example_keys(&read("examples/config.toml")?);
    let documented = documented_keys(&read("man/src/splynx-bitpay.toml.5")?);
    for (section, key) in &example {
        if !documented.contains(&(section.clone(), key.clone())) {
            problems.push(format!(
                "splynx-bitpay.toml(5) does not document [{section}] {key} (it is in examples/config.toml)"
            ));
        }
    }
    for (section, key) in &documented {
        if !example.contains(&(section.clone(), key.clone())) {
            problems.push(format!(
                "splynx-bitpay.toml(5) documents [{section}] {key}, which examples/config.toml lacks"
            ));
        }
    }
    let sections = read("man/src/sections.roff")?;
    use splynx_bitpay::exit;
    for code in [
        exit::SUCCESS,
        exit::BAD_INPUT,
        exit::TEMPORARY,
        exit::CONFIG,
        exit::FAILURE,
    ] {
        if !sections.contains(&format!(".B {code}\n")) {
            problems.push(format!(
                "EXIT STATUS in man/src/sections.roff lacks code {code}"
            ));
        }
    }
    for heading in [
        "EXIT STATUS",
        "FILES",
        "ENVIRONMENT",
        "EXAMPLES",
        "SEE ALSO",
    ] {
        if !sections.contains(&format!(".SH \"{heading}\""))
            && !sections.contains(&format!(".SH {heading}\n"))
        {
            problems.push(format!("man/src/sections.roff lacks the {heading} section"));
        }
    }
    Ok(problems)
}

/// `groff -ww` and `man --warnings` on a page: their complaints, or why they could not run.
pub fn lint_page(path: &Path) -> Result<Vec<String>, String> {
    let mut problems = Vec::new();
    let groff = Process::new("groff")
        .args(["-ww", "-man", "-z"])
        .arg(path)
        .output()
        .map_err(|e| format!("groff: {e} (apt-get install groff)"))?;
    let stderr = String::from_utf8_lossy(&groff.stderr);
    if !groff.status.success() || !stderr.trim().is_empty() {
        problems.push(format!("groff -ww -man -z {}:\n{stderr}", path.display()));
    }
    let man = Process::new("man")
        .args(["--warnings", "-E", "UTF-8", "-l"])
        .arg(path)
        .env("MANWIDTH", "80")
        .env("MAN_KEEP_FORMATTING", "0")
        .output()
        .map_err(|e| format!("man: {e} (apt-get install man-db)"))?;
    let stderr = String::from_utf8_lossy(&man.stderr);
    if !man.status.success() || !stderr.trim().is_empty() {
        problems.push(format!("man --warnings -l {}:\n{stderr}", path.display()));
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_docs_are_fresh_and_complete() {
        let root = workspace_root();
        let scratch = std::env::temp_dir().join(format!("xtask-test-{}", std::process::id()));
        let stale = stale_files(&root, &scratch).unwrap();
        let _ = fs::remove_dir_all(&scratch);
        assert!(stale.is_empty(), "{}", stale.join("\n"));
        let gaps = coverage_problems(&root).unwrap();
        assert!(gaps.is_empty(), "{}", gaps.join("\n"));
    }

    #[test]
    fn every_command_and_flag_is_in_the_man_page() {
        let page = fs::read_to_string(workspace_root().join("man/splynx-bitpay.1")).unwrap();
        let cmd = Cli::command();
        for sub in cmd.get_subcommands() {
            assert!(
                page.contains(&format!(".SS {}\n", sub.get_name())),
                "{} missing",
                sub.get_name()
            );
            for arg in sub.get_arguments().filter(|a| !a.is_positional()) {
                let long = arg.get_long().unwrap();
                assert!(
                    page.contains(&format!("\\-\\-{}", long.replace('-', "\\-"))),
                    "--{long} of {} missing",
                    sub.get_name()
                );
            }
        }
        for global in ["config", "json", "verbose", "quiet"] {
            assert!(page.contains(&format!("\\-\\-{global}")), "--{global}");
        }
    }

    #[test]
    fn the_package_version_is_the_cli_version() {
        assert_eq!(cli_version(), version());
        let changelog = fs::read_to_string(workspace_root().join("debian/changelog")).unwrap();
        let first = changelog.lines().next().unwrap();
        assert!(
            first.starts_with(&format!("splynx-bitpay ({}-", version())),
            "debian/changelog's first entry must be version {}-N: {first}",
            version()
        );
    }

    #[test]
    fn example_keys_are_found_commented_or_not() {
        let keys =
            example_keys("[a]\nx = 1\n# y = \"z\"\n# Some prose = not a key\n[b]\nz_z = 2\n");
        assert_eq!(
            keys,
            vec![
                ("a".into(), "x".into()),
                ("a".into(), "y".into()),
                ("b".into(), "z_z".into())
            ]
        );
    }

    #[test]
    fn pages_pass_groff_when_it_is_installed() {
        if Process::new("groff").arg("--version").output().is_err() {
            eprintln!(
                "skipped: groff is not installed (`cargo run -p xtask -- check` requires it)"
            );
            return;
        }
        for page in ["man/splynx-bitpay.1", "man/splynx-bitpay.toml.5"] {
            let problems = lint_page(&workspace_root().join(page)).unwrap_or_default();
            assert!(problems.is_empty(), "{}", problems.join("\n"));
        }
    }
}
