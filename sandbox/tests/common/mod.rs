//! Helpers for the sandbox's own tests: a blocking HTTP client and request signing.
#![allow(dead_code)]

use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::blocking::{Client, Response};
use serde_json::Value;
use sha2::Sha256;
use splynx_bitpay::bitpay::identity::Identity;

pub fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

pub fn client_with_timeout(timeout: Duration) -> Client {
    Client::builder().timeout(timeout).build().unwrap()
}

pub fn identity(n: u8) -> Identity {
    let mut key = [0x11u8; 32];
    key[31] = n;
    Identity::from_secret_bytes(&key).unwrap()
}

/// A BitPay GET signed over the full URL.
pub fn signed_get(base: &str, path_and_query: &str, id: &Identity) -> Response {
    let url = format!("{base}{path_and_query}");
    client()
        .get(&url)
        .header("x-identity", id.public_key_hex())
        .header("x-signature", id.sign(url.as_bytes()))
        .header("x-accept-version", "2.0.0")
        .send()
        .unwrap()
}

/// A BitPay POST signed over URL + body.
pub fn signed_post(base: &str, path: &str, body: &str, id: &Identity) -> Response {
    let url = format!("{base}{path}");
    let message = format!("{url}{body}");
    client()
        .post(&url)
        .header("content-type", "application/json")
        .header("x-identity", id.public_key_hex())
        .header("x-signature", id.sign(message.as_bytes()))
        .header("x-accept-version", "2.0.0")
        .body(body.to_string())
        .send()
        .unwrap()
}

pub fn json(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// `Authorization: Splynx-EA (key=..&nonce=..&signature=..)`.
pub fn splynx_auth(key: &str, secret: &str, nonce: u64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{nonce}{key}").as_bytes());
    let signature = hex::encode_upper(mac.finalize().into_bytes());
    format!("Splynx-EA (key={key}&nonce={nonce}&signature={signature})")
}
