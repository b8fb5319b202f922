use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use splynx_bitpay::cli::Cli;
use splynx_bitpay::exit;

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
    let code = match splynx_bitpay::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("splynx-bitpay: error: {err:#}");
            exit::exit_code(&err)
        }
    };
    let waiting = splynx_bitpay::http::time_waiting();
    log::debug!(
        "timing: wall {:?}, waiting on HTTP {waiting:?}",
        started.elapsed()
    );
    ExitCode::from(code)
}
