//! The floor under `handle-ipn`: the same I/O and nothing else. A TLS-capable reqwest
//! client is built, SQLite is opened in WAL mode and one transaction committed, one request
//! is signed with the BitPay key, and the same three loopback requests are made (BitPay:
//! the invoice; Splynx: the payment look-up by receipt, the payment). No config, no
//! migrations, no logging, no decisions. `bench` runs it as a process next to the real
//! commands and reports their wall time as a ratio to it.
//!
//! `floor DATA_DIR BITPAY_URL INVOICE_ID TOKEN SPLYNX_API_URL ACCESS_TOKEN RECEIPT` (the
//! benchmark passes them; the key is `DATA_DIR/bitpay.key`, the database `DATA_DIR/floor.db`).

use std::path::Path;
use std::time::Duration;

use splynx_bitpay::bitpay::Identity;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [data_dir, bitpay_url, invoice_id, token, splynx_api_url, access_token, receipt] =
        <[String; 7]>::try_from(args).expect(
            "usage: floor DATA_DIR BITPAY_URL INVOICE_ID TOKEN SPLYNX_API_URL ACCESS_TOKEN RECEIPT",
        );
    let data_dir = Path::new(&data_dir);

    let client = reqwest::blocking::Client::builder()
        .user_agent("splynx-bitpay-floor")
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("TLS backend");

    let mut db = rusqlite::Connection::open(data_dir.join("floor.db")).expect("open SQLite");
    db.pragma_update(None, "journal_mode", "WAL").expect("WAL");
    let tx = db.transaction().expect("begin");
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS seen (at INTEGER NOT NULL);
         INSERT INTO seen VALUES (unixepoch());",
    )
    .expect("write");
    tx.commit().expect("commit");

    let identity = Identity::load_existing(&data_dir.join("bitpay.key"))
        .expect("read key")
        .expect("paired");
    let url = format!("{bitpay_url}/invoices/{invoice_id}?token={token}");
    let invoice = client
        .get(&url)
        .header("Accept", "application/json")
        .header("X-Accept-Version", "2.0.0")
        .header("X-Identity", identity.public_key_hex())
        .header("X-Signature", identity.sign(url.as_bytes()))
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.text())
        .expect("BitPay invoice");
    assert!(invoice.contains(&invoice_id));

    let authorization = format!("Splynx-EA (access_token={access_token})");
    let found = client
        .get(format!("{splynx_api_url}admin/finance/payments"))
        .query(&[
            ("main_attributes[receipt_number]", receipt.as_str()),
            ("main_attributes[customer_id]", "42"),
        ])
        .header("Accept", "application/json")
        .header("Authorization", &authorization)
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.text())
        .expect("Splynx payment look-up");
    assert!(found.starts_with('['));
    let payment = serde_json::json!({
        "customer_id": 42, "payment_type": 7, "receipt_number": receipt,
        "date": "2026-12-01", "amount": "10.00", "comment": "floor",
        "field_1": invoice_id, "field_2": "", "field_3": "",
    });
    let created = client
        .post(format!("{splynx_api_url}admin/finance/payments"))
        .header("Accept", "application/json")
        .header("Authorization", &authorization)
        .json(&payment)
        .send()
        .and_then(|r| r.error_for_status())
        .map(|r| r.status().as_u16())
        .expect("Splynx payment");
    assert_eq!(created, 201);
}
