//! Thousands of mutated real webhook bodies through the real binary: never a panic, only
//! exit 0 or 65, and never a payment BitPay did not confirm.

use serde_json::json;

use crate::util::{run_binary, Env};

/// xorshift64*: deterministic, so a failure can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const SPLICES: &[&str] = &[
    "\"complete\"",
    "\"confirmed\"",
    "true",
    "false",
    "null",
    "\"paidOver\"",
    "\"paidPartial\"",
    "76700000000000000000",
    "-1",
    "1e999",
    "\"\"",
    "{}",
    "[]",
    "\"id\"",
    "\"data\"",
    "\u{0}",
    "\"\\ud800\"",
    "{\"id\":",
    "\"price\":\"0.01\"",
    "999999999999999999999999999999",
];

fn mutate(rng: &mut Rng, seed: &[u8], ids: &[String]) -> Vec<u8> {
    let mut body = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let len = body.len().max(1);
        match rng.below(8) {
            0 => {
                let i = rng.below(len);
                if i < body.len() {
                    body[i] ^= 1 << rng.below(8);
                }
            }
            1 => {
                let start = rng.below(len);
                let end = (start + rng.below(64)).min(body.len());
                body.drain(start.min(end)..end);
            }
            2 => {
                let at = rng.below(len).min(body.len());
                let splice = SPLICES[rng.below(SPLICES.len())].as_bytes();
                body.splice(at..at, splice.iter().copied());
            }
            3 => body.truncate(rng.below(len)),
            4 => {
                // Point the body at another invoice id (ours or not).
                let text = String::from_utf8_lossy(&body).into_owned();
                let other = ids[rng.below(ids.len())].clone();
                body = ids
                    .iter()
                    .fold(text, |t, id| t.replace(id.as_str(), &other))
                    .into_bytes();
            }
            5 => {
                let text = String::from_utf8_lossy(&body).into_owned();
                let statuses = [
                    "\"new\"",
                    "\"paid\"",
                    "\"confirmed\"",
                    "\"complete\"",
                    "\"expired\"",
                ];
                let to = statuses[rng.below(statuses.len())];
                body = statuses
                    .iter()
                    .fold(text, |t, s| t.replace(s, to))
                    .into_bytes();
            }
            6 => {
                let depth = rng.below(300);
                let mut nested = "[".repeat(depth).into_bytes();
                nested.extend_from_slice(&body);
                nested.extend("]".repeat(depth).bytes());
                body = nested;
            }
            _ => {
                let chunk: Vec<u8> = body.iter().copied().take(rng.below(4096)).collect();
                body.extend_from_slice(&chunk);
            }
        }
    }
    body
}

#[test]
fn mutated_webhooks_never_panic_and_never_credit_unconfirmed_invoices() {
    let env = Env::new();
    env.pair();
    let fresh = env.create_invoice_101();
    let confirmed = env
        .create_invoice(&["--customer", "42", "--proforma", "201"])
        .json()["bitpay_invoice_id"]
        .as_str()
        .unwrap()
        .to_string();
    let expired = env
        .create_invoice(&["--customer", "42", "--refill", "9.99"])
        .json()["bitpay_invoice_id"]
        .as_str()
        .unwrap()
        .to_string();
    env.bitpay.set_status(&confirmed, "confirmed", None);
    env.bitpay.expire(&expired);

    let mut seeds: Vec<Vec<u8>> = Vec::new();
    for id in [&fresh, &confirmed, &expired] {
        seeds.push(env.bitpay.webhook_body(id, true).into_bytes());
        seeds.push(env.bitpay.webhook_body(id, false).into_bytes());
    }
    seeds.push(include_bytes!("../data/bitpay_paid_ipn_webhook.json").to_vec());
    seeds.push(
        json!({"id": fresh, "status": "complete", "price": "19537.1", "amountPaid": "1025900"})
            .to_string()
            .into_bytes(),
    );
    let ids = vec![
        fresh.clone(),
        confirmed.clone(),
        expired.clone(),
        "someId".to_string(),
        "X".repeat(22),
    ];

    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let bodies: Vec<Vec<u8>> = (0..2000)
        .map(|i| mutate(&mut rng, &seeds[i % seeds.len()], &ids))
        .collect();
    let config = env.config_path();
    let queue = std::sync::Mutex::new(bodies.into_iter().enumerate());
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| loop {
                let Some((i, body)) = queue.lock().unwrap().next() else {
                    break;
                };
                let run = run_binary(&config, &["handle-ipn"], &body);
                if !matches!(run.code, 0 | 65) || run.stderr.contains("panicked") {
                    failures.lock().unwrap().push(format!(
                        "body #{i} {:?}: {run:?}",
                        String::from_utf8_lossy(&body)
                    ));
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} failures, first: {}",
        failures.len(),
        failures[0]
    );
    for payment in env.splynx.payments() {
        assert_eq!(
            payment["receipt_number"],
            confirmed.as_str(),
            "only the invoice BitPay confirmed"
        );
    }
    assert!(env.splynx.payment_count() <= 1);
    assert!(
        env.payments_with_receipt(&fresh).is_empty()
            && env.payments_with_receipt(&expired).is_empty()
    );
}
