use std::process::ExitCode;

use clap::Parser;
use splynx_bitpay::cli::Cli;
use splynx_bitpay::exit;

fn main() -> ExitCode {
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
    match splynx_bitpay::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("splynx-bitpay: error: {err:#}");
            ExitCode::from(exit::exit_code(&err))
        }
    }
}
