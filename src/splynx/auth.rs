//! Authenticating to Splynx: `Splynx-EA` signatures with a nonce shared by every process,
//! or one access token shared by every process and renewed under a lock.

use sha2::{Digest, Sha256};

use super::client::SplynxClient;
use super::error::{classify, decode, Result, SplynxError};
use super::sign::signature;
use crate::clock;
use crate::http::Method;
use crate::secret::Secret;

impl SplynxClient<'_> {
    /// `key`, the next nonce and their signature, as `Authorization` wants them.
    fn signature_auth(&self) -> Result<(i64, String)> {
        let nonce = self.state.next_nonce(&self.api_key, clock::now_ms() / 10)?;
        Ok((
            nonce,
            signature(nonce, &self.api_key, self.api_secret.expose()),
        ))
    }

    pub(super) fn signature_header(&self) -> Result<String> {
        let (nonce, signature) = self.signature_auth()?;
        Ok(format!(
            "Splynx-EA (key={}&nonce={nonce}&signature={signature})",
            self.api_key
        ))
    }

    /// A valid access token shared by every process: from memory, else from the state
    /// store, else a new one (`POST admin/auth/tokens`, signed with a nonce) under a lock.
    /// `rejected` is a token Splynx just refused: it is never handed out again.
    pub(super) fn access_token(&self, rejected: Option<&Secret>) -> Result<Secret> {
        let usable = |token: &Secret, expires_at: i64| {
            expires_at - clock::now_ms() / 1000 > TOKEN_MARGIN_SECONDS && Some(token) != rejected
        };
        if let Some((token, expires_at)) = self.token.lock().expect("token cache lock").clone() {
            if usable(&token, expires_at) {
                return Ok(token);
            }
        }
        let stored = |client: &SplynxClient<'_>| -> Result<Option<(Secret, i64)>> {
            Ok(client
                .state
                .access_token(&client.token_owner())?
                .filter(|(t, e)| usable(t, *e)))
        };
        let fresh = match stored(self)? {
            Some(found) => found,
            None => {
                let _only_one = self.state.hold(
                    "splynx-auth",
                    "the Splynx access token renewal",
                    self.lock_wait,
                )?;
                match stored(self)? {
                    Some(renewed_meanwhile) => renewed_meanwhile,
                    None => {
                        let created = self.create_access_token()?;
                        self.state
                            .save_access_token(&self.token_owner(), &created.0, created.1)?;
                        created
                    }
                }
            }
        };
        *self.token.lock().expect("token cache lock") = Some(fresh.clone());
        Ok(fresh.0)
    }

    /// Whose token a stored one is: the key and a fingerprint of the secret, so a changed
    /// secret is used (and checked) at once instead of when the old token expires.
    fn token_owner(&self) -> String {
        let fingerprint = Sha256::digest(self.api_secret.expose().as_bytes());
        format!("{}:{}", self.api_key, hex::encode(&fingerprint[..8]))
    }

    /// What the API key may do, as Splynx lists it when it issues an access token
    /// (controller → action → "allow"); `None` when this Splynx lists nothing. Asking
    /// writes nothing in the ISP's books.
    pub fn permissions(&self) -> Result<Option<serde_json::Map<String, serde_json::Value>>> {
        let reply = self.issue_token()?;
        Ok(match &reply["permissions"] {
            serde_json::Value::Object(map) if !map.is_empty() => Some(map.clone()),
            _ => None,
        })
    }

    fn create_access_token(&self) -> Result<(Secret, i64)> {
        let reply = self.issue_token()?;
        let token = reply["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| SplynxError::Decode {
                path: "admin/auth/tokens".into(),
                message: "no access_token in the reply".into(),
            })?;
        let expires_at = crate::money::id_from_json(&reply["access_token_expiration"])
            .unwrap_or(clock::now_ms() / 1000 + 1800);
        log::info!(
            "new Splynx access token, valid until {}",
            clock::datetime_of(expires_at * 1000)
        );
        Ok((Secret::new(token), expires_at))
    }

    /// `POST admin/auth/tokens` signed with the API key: the reply as it came.
    fn issue_token(&self) -> Result<serde_json::Value> {
        let (nonce, signature) = self.signature_auth()?;
        let body = serde_json::json!({"auth_type": "api_key", "key": self.api_key, "nonce": nonce, "signature": signature});
        let url = format!("{}admin/auth/tokens", self.api_url);
        let body = serde_json::to_vec(&body).expect("JSON values serialize");
        let reply = self.exchange(&Method::POST, &url, "", Some(&body))?;
        let text = classify(
            reply.status,
            reply.body,
            &Method::POST,
            "admin/auth/tokens",
            "access token",
        )?;
        decode("admin/auth/tokens", &text)
    }
}

/// A token this close to expiry is renewed first, so no request carries a dying one.
const TOKEN_MARGIN_SECONDS: i64 = 120;
