mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{client, splynx_auth};
use serde_json::Value;

#[test]
fn binary_prints_urls_seeds_demo_data_and_stops_when_stdin_closes() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_splynx-bitpay-sandbox"))
        .args(["--api-key", "demo-key"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let info: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(info["api_key"], "demo-key");
    assert_eq!(info["api_secret"], "sandbox-secret");
    let splynx = info["splynx_url"].as_str().unwrap();
    let bitpay = info["bitpay_url"].as_str().unwrap();
    assert!(bitpay.starts_with("http://127.0.0.1:") && !bitpay.ends_with('/'));
    // BTCPay Server with one store, whose id a config's [btcpay] store_id takes.
    let btcpay = info["btcpay_url"].as_str().unwrap();
    let store = info["btcpay_store"].as_str().unwrap();
    let unauthenticated = client()
        .get(format!("{btcpay}/api/v1/stores/{store}"))
        .send()
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);

    let invoice: Value = client()
        .get(format!("{splynx}/api/2.0/admin/finance/invoices/101"))
        .header(
            "authorization",
            splynx_auth("demo-key", "sandbox-secret", 1),
        )
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(invoice["number"], "202401000001");
    assert_eq!(invoice["due"], "51.6100");
    let code: Value = client()
        .post(format!("{bitpay}/_sandbox/pairing-codes"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(code["pairingCode"].as_str().unwrap().len(), 7);

    drop(child.stdin.take());
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success());
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn binary_refuses_bad_arguments() {
    let output = Command::new(env!("CARGO_BIN_EXE_splynx-bitpay-sandbox"))
        .arg("--bitpay-port")
        .arg("nope")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("usage: splynx-bitpay-sandbox"), "{stderr}");
}

/// `./demo.sh` and `./demo.sh --server btcpay`: the README's first command, end to end
/// (it needs the `splynx-bitpay` binary beside the demo: `cargo test --workspace` builds it).
#[test]
fn the_demo_runs_the_whole_story_for_both_servers() {
    let demo = std::path::Path::new(env!("CARGO_BIN_EXE_splynx-bitpay-demo"));
    let product = demo.with_file_name("splynx-bitpay");
    assert!(
        product.exists(),
        "{} is missing: run the tests with `cargo test --workspace`",
        product.display()
    );
    for (server, done) in [
        ("bitpay", "Done: one BitPay invoice"),
        ("btcpay", "Done: one BTCPay invoice"),
    ] {
        let output = Command::new(demo)
            .args(["--server", server])
            .env("SPLYNX_BITPAY_BIN", &product)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains(done),
            "{server}: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
