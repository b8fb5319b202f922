//! `splynx-bitpay-sandbox`: runs the BitPay, BTCPay Server and Splynx fakes for the demo.
//!
//! Prints one JSON line `{"bitpay_url":..,"btcpay_url":..,"btcpay_store":..,"splynx_url":..,
//! "api_key":..,"api_secret":..}`
//! and serves until killed (SIGTERM/SIGINT) or, when standard input is a pipe or a
//! socket, until it is closed.

use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::sync::mpsc;

use splynx_bitpay_sandbox::{BitPaySandbox, BtcpaySandbox, SplynxSandbox};

const USAGE: &str = "usage: splynx-bitpay-sandbox [--bitpay-port P] [--btcpay-port P] [--splynx-port P] [--api-key K] [--api-secret S] [--no-seed]

Starts loopback fakes of BitPay, BTCPay Server (with one store) and the Splynx API, prints
one JSON line {\"bitpay_url\":..,\"btcpay_url\":..,\"btcpay_store\":..,\"splynx_url\":..,
\"api_key\":..,\"api_secret\":..} and serves until killed or until standard input (when it
is a pipe) is closed.

  --bitpay-port P   port of the BitPay fake (default: any free port)
  --btcpay-port P   port of the BTCPay Server fake (default: any free port)
  --splynx-port P   port of the Splynx fake (default: any free port)
  --api-key K       Splynx API key (default: sandbox-key)
  --api-secret S    Splynx API secret (default: sandbox-secret)
  --no-seed         start with no Splynx demo data
  -h, --help        show this help";

#[derive(Debug, PartialEq)]
struct Options {
    bitpay_port: u16,
    btcpay_port: u16,
    splynx_port: u16,
    api_key: String,
    api_secret: String,
    seed: bool,
}

enum Parsed {
    Run(Options),
    Help,
}

fn parse_args(args: &[String]) -> Result<Parsed, String> {
    let mut options = Options {
        bitpay_port: 0,
        btcpay_port: 0,
        splynx_port: 0,
        api_key: "sandbox-key".into(),
        api_secret: "sandbox-secret".into(),
        seed: true,
    };
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match inline.clone().or_else(|| iter.next().cloned()) {
                Some(v) => Ok(v),
                None => Err(format!("{name} needs a value")),
            }
        };
        let port = |name: &str, v: String| -> Result<u16, String> {
            v.parse()
                .map_err(|_| format!("{name}: {v:?} is not a port number (0-65535)"))
        };
        match name {
            "--bitpay-port" => options.bitpay_port = port(name, value(name)?)?,
            "--btcpay-port" => options.btcpay_port = port(name, value(name)?)?,
            "--splynx-port" => options.splynx_port = port(name, value(name)?)?,
            "--api-key" => options.api_key = value(name)?,
            "--api-secret" => options.api_secret = value(name)?,
            "--no-seed" if inline.is_none() => options.seed = false,
            "-h" | "--help" => return Ok(Parsed::Help),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if options.api_key.is_empty() || options.api_secret.is_empty() {
        return Err("--api-key and --api-secret must not be empty".into());
    }
    Ok(Parsed::Run(options))
}

/// True when standard input is a pipe or socket, so its closing means "stop".
fn stdin_is_a_pipe() -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata("/proc/self/fd/0")
        .map(|m| m.file_type().is_fifo() || m.file_type().is_socket())
        .unwrap_or(false)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse_args(&args) {
        Ok(Parsed::Run(options)) => options,
        Ok(Parsed::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("splynx-bitpay-sandbox: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    let bitpay = match BitPaySandbox::try_start_on(options.bitpay_port) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "splynx-bitpay-sandbox: cannot listen on 127.0.0.1:{}: {e}",
                options.bitpay_port
            );
            return ExitCode::FAILURE;
        }
    };
    let btcpay = match BtcpaySandbox::try_start_on(options.btcpay_port) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "splynx-bitpay-sandbox: cannot listen on 127.0.0.1:{}: {e}",
                options.btcpay_port
            );
            return ExitCode::FAILURE;
        }
    };
    let btcpay_store = btcpay.create_store();
    let splynx = match SplynxSandbox::try_start_on(
        options.splynx_port,
        &options.api_key,
        &options.api_secret,
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "splynx-bitpay-sandbox: cannot listen on 127.0.0.1:{}: {e}",
                options.splynx_port
            );
            return ExitCode::FAILURE;
        }
    };
    if options.seed {
        splynx.seed_demo();
    }

    let line = serde_json::json!({
        "bitpay_url": bitpay.url(),
        "btcpay_url": btcpay.url(),
        "btcpay_store": btcpay_store,
        "splynx_url": splynx.url(),
        "api_key": options.api_key,
        "api_secret": options.api_secret,
    });
    let mut stdout = io::stdout().lock();
    if writeln!(stdout, "{line}")
        .and_then(|_| stdout.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    drop(stdout);

    let (stop, stopped) = mpsc::channel::<()>();
    if stdin_is_a_pipe() {
        std::thread::spawn(move || {
            let mut sink = [0u8; 1024];
            let mut stdin = io::stdin().lock();
            while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
            let _ = stop.send(());
        });
        let _ = stopped.recv();
    } else {
        // Serve until killed; the sender stays alive so recv() blocks for good.
        let _keep = stop;
        let _ = stopped.recv();
    }
    drop(splynx);
    drop(btcpay);
    drop(bitpay);
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_all_options() {
        let Ok(Parsed::Run(o)) = parse_args(&args(&[
            "--bitpay-port",
            "8081",
            "--splynx-port=8082",
            "--api-key",
            "k",
            "--api-secret",
            "s",
            "--no-seed",
        ])) else {
            panic!("should parse");
        };
        assert_eq!(
            o,
            Options {
                bitpay_port: 8081,
                btcpay_port: 0,
                splynx_port: 8082,
                api_key: "k".into(),
                api_secret: "s".into(),
                seed: false
            }
        );
    }

    #[test]
    fn refuses_bad_arguments() {
        assert!(parse_args(&args(&["--bitpay-port", "http"])).is_err());
        assert!(parse_args(&args(&["--api-key"])).is_err());
        assert!(parse_args(&args(&["--frobnicate"])).is_err());
        assert!(matches!(parse_args(&args(&["--help"])), Ok(Parsed::Help)));
    }
}
