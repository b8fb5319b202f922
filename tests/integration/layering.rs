//! The source tree's shape, checked: no import cycle between modules or between sibling
//! files, exit numbers and command verdicts only at the top, and long files say why.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, with its text up to its first `#[cfg(test)]` (tests may
/// reach anywhere); `tests.rs` files are left out.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && path.file_name().is_some_and(|n| n != "tests.rs")
            {
                let text = std::fs::read_to_string(&path).unwrap();
                let code = match text.find("#[cfg(test)]") {
                    Some(cut) => text[..cut].to_string(),
                    None => text,
                };
                files.push((path, code));
            }
        }
    }
    files.sort();
    files
}

/// The names `text` reaches with `prefix` (`crate::` or `super::`), as identifiers.
fn reached<'a>(text: &'a str, prefix: &str) -> BTreeSet<&'a str> {
    text.match_indices(prefix)
        .map(|(at, _)| {
            let rest = &text[at + prefix.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .filter(|name| !name.is_empty())
        .collect()
}

/// A cycle in `edges`, if any, as the path around it.
fn cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_string(), 1);
        stack.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            match state.get(next) {
                Some(1) => {
                    let from = stack.iter().position(|n| n == next).unwrap();
                    let mut path = stack[from..].to_vec();
                    path.push(next.clone());
                    return Some(path);
                }
                Some(_) => {}
                None => {
                    if let Some(found) = visit(next, edges, state, stack) {
                        return Some(found);
                    }
                }
            }
        }
        stack.pop();
        state.insert(node.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in edges.keys() {
        if !state.contains_key(node) {
            if let Some(found) = visit(node, edges, &mut state, &mut Vec::new()) {
                return Some(found);
            }
        }
    }
    None
}

/// The top-level module a file belongs to (`settlement` for `src/settlement/payment.rs`).
fn module_of(file: &Path) -> String {
    let relative = file.strip_prefix(src()).unwrap();
    let first = relative.iter().next().unwrap().to_str().unwrap();
    first.trim_end_matches(".rs").to_string()
}

#[test]
fn no_import_cycle_between_modules() {
    let modules: BTreeSet<String> = sources(&src()).iter().map(|(f, _)| module_of(f)).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, text) in sources(&src()) {
        let from = module_of(&file);
        if from == "main" || from == "lib" {
            continue;
        }
        for to in reached(&text, "crate::") {
            if to != from && modules.contains(to) {
                edges
                    .entry(from.clone())
                    .or_default()
                    .insert(to.to_string());
            }
        }
    }
    assert_eq!(cycle(&edges), None, "modules import each other in a circle");
    // The check sees edges at all: the store is used by settlement, never the other way.
    assert!(edges["settlement"].contains("store"));
}

#[test]
fn no_import_cycle_between_sibling_files() {
    for (dir, _) in sources(&src())
        .iter()
        .filter(|(f, _)| f.ends_with("mod.rs"))
    {
        let dir = dir.parent().unwrap();
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let file = entry.unwrap().path();
            let Some(name) = file.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if file.extension().is_none_or(|e| e != "rs") || name == "mod" || name == "tests" {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap();
            for sibling in reached(code, "super::") {
                if dir.join(format!("{sibling}.rs")).exists() && sibling != name {
                    edges
                        .entry(name.to_string())
                        .or_default()
                        .insert(sibling.to_string());
                }
            }
        }
        assert_eq!(
            cycle(&edges),
            None,
            "files in {} import each other",
            dir.display()
        );
    }
}

/// Only the commands (and `main`, and the walk in `errors`) decide exit numbers and speak
/// in `Problem`s; every module below says what happened with a typed error.
#[test]
fn exit_numbers_and_verdicts_only_at_the_top() {
    let top = ["main", "lib", "errors", "exit", "commands"];
    let words = [
        "exit::Problem",
        "exit::SUCCESS",
        "exit::FAILURE",
        "exit::BAD_INPUT",
        "exit::TEMPORARY",
        "exit::CONFIG",
        "Problem::",
    ];
    let mut offenders = Vec::new();
    for (file, text) in sources(&src()) {
        if top.contains(&module_of(&file).as_str()) {
            continue;
        }
        let braced = text.contains("use crate::exit::{")
            && text
                .split("use crate::exit::{")
                .nth(1)
                .and_then(|rest| rest.split('}').next())
                .is_some_and(|list| {
                    list.split(',').map(str::trim).any(|n| {
                        [
                            "Problem",
                            "SUCCESS",
                            "FAILURE",
                            "BAD_INPUT",
                            "TEMPORARY",
                            "CONFIG",
                        ]
                        .contains(&n)
                    })
                });
        if braced || words.iter().any(|w| text.contains(w)) {
            offenders.push(file.display().to_string());
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}

/// A command is glue: at most 150 lines, or it says at its top why it is longer. Any other
/// file over 500 lines (its unit tests not counted) says why too.
#[test]
fn long_files_say_why() {
    let mut silent = Vec::new();
    for (file, code) in sources(&src()) {
        let text = std::fs::read_to_string(&file).unwrap();
        let lines = code.lines().count();
        let limit = if module_of(&file) == "commands" {
            150
        } else {
            500
        };
        let head: String = text.lines().take(8).collect::<Vec<_>>().join(" ");
        if lines > limit && !head.contains("Longer than") && !head.contains("Just over") {
            silent.push(format!("{} ({lines} lines)", file.display()));
        }
    }
    assert!(silent.is_empty(), "{silent:#?}");
}
