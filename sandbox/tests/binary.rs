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
