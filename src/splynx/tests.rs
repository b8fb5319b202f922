//! The client against canned replies: signing, nonces, token renewal, error classes.

use std::sync::Mutex;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use url::form_urlencoded;

use super::error::classify;
use super::*;
use crate::clock;
use crate::config::SplynxSettings;
use crate::http::canned::Canned;
use crate::http::{Method, Reply};
use crate::secret::Secret;

/// The shared state of one process, in memory.
#[derive(Default)]
struct Memory {
    nonce: Mutex<i64>,
    token: Mutex<Option<(Secret, i64)>>,
    /// The locks taken, in order.
    held: Mutex<Vec<String>>,
}

impl SharedState for Memory {
    fn next_nonce(&self, _: &str, floor: i64) -> std::result::Result<i64, StateError> {
        let mut last = self.nonce.lock().unwrap();
        *last = (*last + 1).max(floor);
        Ok(*last)
    }
    fn access_token(&self, _: &str) -> std::result::Result<Option<(Secret, i64)>, StateError> {
        Ok(self.token.lock().unwrap().clone())
    }
    fn save_access_token(
        &self,
        _: &str,
        token: &Secret,
        expires_at: i64,
    ) -> std::result::Result<(), StateError> {
        *self.token.lock().unwrap() = Some((token.clone(), expires_at));
        Ok(())
    }
    fn hold(
        &self,
        name: &str,
        _: &str,
        _: std::time::Duration,
    ) -> std::result::Result<super::Held, StateError> {
        self.held.lock().unwrap().push(name.to_string());
        Ok(Box::new(()))
    }
}

fn settings(auth: &str) -> SplynxSettings {
    crate::config::Config::parse(
        std::path::Path::new("/x.toml"),
        &format!("[splynx]\nurl = \"https://s.example\"\napi_key = \"key1\"\napi_secret = \"secret1\"\npayment_method_id = 7\nauth = \"{auth}\"\n[bitpay]\nenvironment = \"test\"\ncurrency = \"USD\"\n[storage]\ndata_dir = \"/d\"\n"),
    )
    .unwrap()
    .splynx
}

#[test]
fn signature_auth_signs_every_request_with_a_growing_nonce() {
    let canned = Canned::new(vec![
        Ok(Reply::new(200, r#"{"status":"ok"}"#)),
        Ok(Reply::new(200, r#"{"status":"ok"}"#)),
    ]);
    let state = Memory::default();
    let client = SplynxClient::with_transport(&settings("signature"), &state, canned.clone());
    client.check().unwrap();
    client.check().unwrap();
    // Each signed request holds the request lock until its reply is in.
    assert_eq!(*state.held.lock().unwrap(), ["splynx-api", "splynx-api"]);
    let nonces: Vec<i64> = canned
        .requests()
        .iter()
        .map(|r| {
            let header = r.header("Authorization").unwrap();
            let inner = header
                .strip_prefix("Splynx-EA (")
                .and_then(|h| h.strip_suffix(')'))
                .unwrap();
            let fields: std::collections::HashMap<String, String> =
                form_urlencoded::parse(inner.as_bytes())
                    .into_owned()
                    .collect();
            let nonce: i64 = fields["nonce"].parse().unwrap();
            assert_eq!(fields["key"], "key1");
            assert_eq!(fields["signature"], signature(nonce, "key1", "secret1"));
            nonce
        })
        .collect();
    assert!(nonces[1] > nonces[0], "{nonces:?}");
    assert_eq!(
        canned.requests()[0].url,
        "https://s.example/api/2.0/admin/api/check"
    );
}

#[test]
fn an_access_token_is_shared_and_renewed_once_after_a_401() {
    let far = clock::now_ms() / 1000 + 3600;
    let token = |t: &str| {
        Ok(Reply::new(
            201,
            &format!(r#"{{"access_token":"{t}","access_token_expiration":{far}}}"#),
        ))
    };
    let canned = Canned::new(vec![
        token("T1"),
        Ok(Reply::new(200, "{}")),
        Ok(Reply::new(401, r#"{"error":{"message":"Token expired"}}"#)),
        token("T2"),
        Ok(Reply::new(200, "{}")),
    ]);
    let state = Memory::default();
    let client = SplynxClient::with_transport(&settings("access_token"), &state, canned.clone());
    client.check().unwrap();
    client.check().unwrap();
    // Each token is made under the renewal lock, so every process makes it once.
    assert_eq!(*state.held.lock().unwrap(), ["splynx-auth", "splynx-auth"]);
    let sent = canned.requests();
    let paths: Vec<&str> = sent.iter().map(|r| r.url.as_str()).collect();
    assert!(
        paths[0].ends_with("admin/auth/tokens") && paths[3].ends_with("admin/auth/tokens"),
        "{paths:?}"
    );
    assert_eq!(
        sent[1].header("Authorization"),
        Some("Splynx-EA (access_token=T1)")
    );
    assert_eq!(
        sent[4].header("Authorization"),
        Some("Splynx-EA (access_token=T2)")
    );
    assert_eq!(
        state.token.lock().unwrap().as_ref().unwrap().0.expose(),
        "T2"
    );
}

#[test]
fn signature_is_upper_hex_hmac_of_nonce_then_key() {
    // Same as: printf '%s%s' 100 key | openssl dgst -sha256 -hmac secret
    let sig = signature(100, "key", "secret");
    assert_eq!(sig.len(), 64);
    assert_eq!(sig, sig.to_uppercase());
    let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
    mac.update(b"100key");
    assert_eq!(sig, hex::encode_upper(mac.finalize().into_bytes()));
}

/// Only a reply or a connection never made proves a payment POST was not applied.
#[test]
fn which_failures_leave_a_payment_outcome_unknown() {
    let reply = |status: u16, body: &str| {
        classify(
            status,
            body.into(),
            &Method::POST,
            "admin/finance/payments",
            "payment",
        )
        .unwrap_err()
    };
    let transport = |may_have_arrived| SplynxError::Transport {
        url: "u".into(),
        message: "m".into(),
        may_have_arrived,
    };
    assert!(
        transport(true).outcome_unknown(),
        "timeout or dropped after sending"
    );
    assert!(!transport(false).outcome_unknown(), "never connected");
    assert!(reply(503, "busy").outcome_unknown());
    assert!(reply(500, "{}").outcome_unknown());
    assert!(reply(504, "<html>gateway</html>").outcome_unknown());
    assert!(!reply(422, r#"[{"field":"amount","message":"bad"}]"#).outcome_unknown());
    assert!(!reply(401, "{}").outcome_unknown());
    assert!(!reply(403, "{}").outcome_unknown());
    assert!(!reply(400, "{}").outcome_unknown());
    assert!(SplynxError::Decode {
        path: "p".into(),
        message: "no id".into()
    }
    .outcome_unknown());
    // Failing to get an access token happens before the payment is sent: still
    // temporary (exit 75), but nothing may have been made.
    let before = transport(true).before_sending();
    assert!(!before.outcome_unknown());
    assert!(before.is_temporary());
    let refused = SplynxError::Unauthorized {
        message: "m".into(),
    }
    .before_sending();
    assert!(matches!(refused.cause(), SplynxError::Unauthorized { .. }));
}

#[test]
fn errors_name_the_missing_permission() {
    let err = classify(
        403,
        r#"{"error":{"message":"Permission denied","code":403,"internal_code":"FORBIDDEN"}}"#
            .into(),
        &Method::POST,
        "admin/finance/payments",
        "payment",
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("Finance → Payments (add)"), "{text}");
    let view = classify(
        403,
        "{}".into(),
        &Method::GET,
        "admin/customers/customer/4",
        "customer 4",
    )
    .unwrap_err();
    assert!(
        view.to_string().contains("Customers → Customer (view)"),
        "{view}"
    );
    let unprocessable = classify(
        422,
        r#"[{"field":"amount","message":"Amount must be greater than 0"}]"#.into(),
        &Method::POST,
        "admin/finance/payments",
        "payment",
    )
    .unwrap_err();
    assert!(unprocessable
        .to_string()
        .contains("amount: Amount must be greater than 0"));
    assert!(classify(503, "busy".into(), &Method::GET, "x", "x")
        .unwrap_err()
        .is_temporary());
    assert!(matches!(
        classify(404, "{}".into(), &Method::GET, "x", "customer 9").unwrap_err(),
        SplynxError::NotFound { .. }
    ));
}
