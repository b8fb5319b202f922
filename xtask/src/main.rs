//! `cargo run -p xtask -- docs`: regenerate the man pages and shell completions.
//! `cargo run -p xtask -- check`: fail when the committed ones are stale, incomplete, or
//! not clean under `groff -ww` and `man --warnings` (CI runs this).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = xtask::workspace_root();
    match args.first().map(String::as_str) {
        Some("docs") => match xtask::write_docs(&root) {
            Ok(written) => {
                for path in written {
                    println!("wrote {}", path.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("xtask docs: {e}");
                ExitCode::FAILURE
            }
        },
        Some("check") => check(&root),
        _ => {
            eprintln!("usage: cargo run -p xtask -- docs|check\n\n  docs   regenerate man/ and completions/ from the CLI definition and man/src/\n  check  fail when they are stale, incomplete or not clean under groff -ww / man --warnings");
            ExitCode::from(2)
        }
    }
}

fn check(root: &std::path::Path) -> ExitCode {
    let scratch = std::env::temp_dir().join(format!("xtask-docs-{}", std::process::id()));
    let mut problems = Vec::new();
    match xtask::stale_files(root, &scratch) {
        Ok(stale) => problems.extend(stale),
        Err(e) => problems.push(e),
    }
    let _ = std::fs::remove_dir_all(&scratch);
    match xtask::coverage_problems(root) {
        Ok(gaps) => problems.extend(gaps),
        Err(e) => problems.push(e),
    }
    for page in ["man/splynx-bitpay.1", "man/splynx-bitpay.toml.5"] {
        match xtask::lint_page(&root.join(page)) {
            Ok(lint) => problems.extend(lint),
            Err(e) => problems.push(e),
        }
    }
    if problems.is_empty() {
        println!("docs are fresh, complete and lint-clean");
        ExitCode::SUCCESS
    } else {
        for p in &problems {
            eprintln!("xtask check: {p}");
        }
        ExitCode::FAILURE
    }
}
