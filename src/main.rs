//! The `splynx-bitpay` binary: parse the arguments, start logging, run the command, and
//! turn a failure into its documented exit code (and, with `--json`, an error document).
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use splynx_bitpay::cli::Cli;
use splynx_bitpay::view::ErrorView;
use splynx_bitpay::{errors, exit};

fn main() -> ExitCode {
    let started = Instant::now();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Help and --version are not errors; bad usage is bad input.
            return ExitCode::from(if e.use_stderr() {
                exit::BAD_INPUT
            } else {
                exit::SUCCESS
            });
        }
    };
    splynx_bitpay::logging::init(cli.verbose, cli.quiet);
    let json = cli.json;
    let code = match splynx_bitpay::run(cli) {
        Ok(code) => code,
        Err(err) => {
            let text = errors::message(&err);
            eprintln!(
                "splynx-bitpay: error: {}",
                splynx_bitpay::output::printable(&text)
            );
            let code = errors::exit_code(&err);
            if json && !splynx_bitpay::output::emitted() {
                // The pages read the reason here, not from stderr.
                splynx_bitpay::output::Output { json }.show(&ErrorView {
                    error: text,
                    exit: code,
                    kind: errors::error_kind(&err),
                });
            }
            code
        }
    };
    let waiting = splynx_bitpay::http::time_waiting();
    log::debug!(
        "timing: wall {:?}, waiting on HTTP {waiting:?}, peak RSS {}",
        started.elapsed(),
        peak_rss()
    );
    ExitCode::from(code)
}

/// This program's peak resident set (`VmHWM`), for the benchmark.
fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l[6..].trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}
