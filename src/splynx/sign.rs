//! How a request to Splynx is signed: the `Splynx-EA` signature over a nonce and the key,
//! or an access token.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::secret::Secret;

/// `UPPER(hex(HMAC-SHA256(secret, nonce ‖ key)))`.
pub fn signature(nonce: i64, api_key: &str, api_secret: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(api_secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(nonce.to_string().as_bytes());
    mac.update(api_key.as_bytes());
    hex::encode_upper(mac.finalize().into_bytes())
}

/// The `Authorization` header for an access token.
pub(super) fn token_header(token: &Secret) -> String {
    format!("Splynx-EA (access_token={})", token.expose())
}
