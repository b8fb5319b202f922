mod common;

use std::time::{Duration, Instant};

use common::{client, client_with_timeout, identity, json, signed_post, splynx_auth};
use serde_json::json;
use splynx_bitpay_sandbox::{BitPaySandbox, FaultSpec, SplynxSandbox};

const KEY: &str = "k";
const SECRET: &str = "s";

fn splynx() -> SplynxSandbox {
    let s = SplynxSandbox::start(KEY, SECRET);
    s.seed_demo();
    s
}

fn pay(s: &SplynxSandbox, nonce: u64, timeout: Duration) -> Result<u16, reqwest::Error> {
    client_with_timeout(timeout)
        .post(format!("{}/api/2.0/admin/finance/payments", s.url()))
        .header("authorization", splynx_auth(KEY, SECRET, nonce))
        .json(
            &json!({"customer_id": 42, "payment_type": 7, "receipt_number": format!("r{nonce}"),
                      "date": "2024-01-05", "amount": "1.00", "invoice_id": 101}),
        )
        .send()
        .map(|r| r.status().as_u16())
}

fn check(s: &SplynxSandbox, nonce: u64) -> u16 {
    client()
        .get(format!("{}/api/2.0/admin/api/check", s.url()))
        .header("authorization", splynx_auth(KEY, SECRET, nonce))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn fail_next_fires_exactly_n_times_without_touching_state() {
    let s = splynx();
    s.fail_next(2, 503);
    let long = Duration::from_secs(10);
    assert_eq!(pay(&s, 1, long).unwrap(), 503);
    assert_eq!(pay(&s, 2, long).unwrap(), 503);
    assert_eq!(s.payment_count(), 0);
    assert_eq!(pay(&s, 3, long).unwrap(), 201);
    assert_eq!(s.payment_count(), 1);
    let statuses: Vec<u16> = s.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 503, 201]);

    // A plausible body: nginx's HTML page for 502/503/504.
    s.fail_next(1, 502);
    let response = client()
        .get(format!("{}/api/2.0/admin/api/check", s.url()))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 502);
    assert!(response.text().unwrap().contains("502 Bad Gateway"));

    let bitpay = BitPaySandbox::start();
    bitpay.fail_next(1, 500);
    let id = identity(20);
    let token = bitpay.create_token(&id.sin(), "pos");
    let body = format!(r#"{{"price":1,"currency":"USD","token":"{token}"}}"#);
    assert_eq!(
        json(signed_post(&bitpay.url(), "/invoices", &body, &id)).0,
        500
    );
    assert_eq!(bitpay.invoice_count(), 0);
    assert_eq!(
        json(signed_post(&bitpay.url(), "/invoices", &body, &id)).0,
        200
    );
}

#[test]
fn filters_restrict_faults() {
    let s = splynx();
    s.faults().fail_next(1, 500);
    s.faults().set_filter(Some("payments"), Some("post"));
    assert_eq!(check(&s, 1), 200);
    assert_eq!(pay(&s, 2, Duration::from_secs(10)).unwrap(), 500);
    assert_eq!(pay(&s, 3, Duration::from_secs(10)).unwrap(), 201);
    // Control routes are never faulted nor recorded.
    s.fail_next(5, 503);
    s.faults().set_filter(None, None);
    let r = client()
        .get(format!("{}/_sandbox/payments", s.url()))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(s
        .requests()
        .iter()
        .all(|r| !r.url.starts_with("/_sandbox/")));
}

#[test]
fn hang_next_never_answers_and_changes_nothing() {
    let s = splynx();
    s.hang_next(1);
    let started = Instant::now();
    let err = pay(&s, 1, Duration::from_millis(500)).unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(s.payment_count(), 0);
    assert_eq!(s.requests()[0].status, 0);
    // The next request is served normally, by a worker that was never blocked.
    assert_eq!(pay(&s, 2, Duration::from_secs(10)).unwrap(), 201);
}

#[test]
fn hang_after_next_commits_then_never_answers() {
    let s = splynx();
    s.hang_after_next(1);
    let err = pay(&s, 1, Duration::from_millis(500)).unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(s.payment_count(), 1, "the payment was created");
    assert_eq!(s.invoice(101).unwrap()["due"], "50.6100");
    assert_eq!(s.requests()[0].status, 0);

    let bitpay = BitPaySandbox::start();
    let id = identity(21);
    let token = bitpay.create_token(&id.sin(), "pos");
    bitpay.hang_after_next(1);
    let url = format!("{}/invoices", bitpay.url());
    let body = format!(r#"{{"price":1,"currency":"USD","guid":"g","token":"{token}"}}"#);
    let err = client_with_timeout(Duration::from_millis(500))
        .post(&url)
        .header("x-identity", id.public_key_hex())
        .header("x-signature", id.sign(format!("{url}{body}").as_bytes()))
        .header("x-accept-version", "2.0.0")
        .body(body)
        .send()
        .unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(bitpay.invoice_count(), 1);
}

#[test]
fn many_hangs_do_not_starve_the_workers() {
    let s = splynx();
    s.hang_next(40);
    let handles: Vec<_> = (0..40)
        .map(|i| {
            let url = format!("{}/api/2.0/admin/api/check", s.url());
            std::thread::spawn(move || {
                client_with_timeout(Duration::from_secs(2))
                    .get(url)
                    .header("authorization", splynx_auth(KEY, SECRET, 100 + i))
                    .send()
                    .is_err()
            })
        })
        .collect();
    for h in handles {
        assert!(h.join().unwrap());
    }
    assert_eq!(check(&s, 1000), 200);
}

#[test]
fn dropping_the_sandbox_closes_held_connections() {
    let s = splynx();
    s.hang_next(1);
    let url = format!("{}/api/2.0/admin/api/check", s.url());
    let waiter = std::thread::spawn(move || {
        let started = Instant::now();
        let result = client_with_timeout(Duration::from_secs(30))
            .get(url)
            .header("authorization", splynx_auth(KEY, SECRET, 1))
            .send();
        (result.is_err(), started.elapsed())
    });
    while s.requests().is_empty() {
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(s);
    let (failed, elapsed) = waiter.join().unwrap();
    assert!(failed, "a held request must not get an answer");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

#[test]
fn latency_and_http_fault_control() {
    let s = splynx();
    let set = |body: serde_json::Value| {
        json(
            client()
                .post(format!("{}/_sandbox/faults", s.url()))
                .json(&body)
                .send()
                .unwrap(),
        )
    };
    let (status, reply) =
        set(json!({"latency_ms": 300, "fail_next": 1, "status": 504, "method": "GET"}));
    assert_eq!(status, 200, "{reply}");
    let started = Instant::now();
    assert_eq!(check(&s, 1), 504);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        s.faults().spec(),
        FaultSpec {
            latency_ms: Some(300),
            method: Some("GET".into()),
            ..FaultSpec::default()
        }
    );
    assert_eq!(set(json!({})).0, 200);
    assert_eq!(s.faults().spec(), FaultSpec::default());
    let started = Instant::now();
    assert_eq!(check(&s, 2), 200);
    assert!(started.elapsed() < Duration::from_millis(300));
    assert_eq!(
        set(json!({"fail_nxt": 1})).0,
        400,
        "unknown fields are refused"
    );
    assert_eq!(set(json!({"fail_next": 1, "status": 200})).0, 400);

    s.latency(Duration::from_millis(200));
    let started = Instant::now();
    assert_eq!(check(&s, 3), 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
    s.clear_faults();

    let (status, requests) = json(
        client()
            .get(format!("{}/_sandbox/requests", s.url()))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200);
    assert_eq!(requests.as_array().unwrap().len(), 3);
    assert_eq!(requests[0]["status"], 504);
    assert!(requests[0]["headers"]["authorization"].is_string());
    s.clear_requests();
    assert!(s.requests().is_empty());
}
