//! BitPay tokens, the Splynx nonce counter and the shared Splynx access token.

use rusqlite::{params, OptionalExtension};

use crate::secret::Secret;

use super::records::*;
use super::{Result, Store};

impl Store {
    // ---- tokens ----

    pub fn save_token(&self, token: &TokenRecord) -> Result<()> {
        self.conn.execute(
            "INSERT INTO tokens (environment, facade, token, approved, pairing_code,
                 pairing_expires_at, label, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (environment, facade) DO UPDATE SET token = excluded.token,
                 approved = excluded.approved, pairing_code = excluded.pairing_code,
                 pairing_expires_at = excluded.pairing_expires_at, label = excluded.label,
                 created_at = excluded.created_at",
            params![
                token.environment,
                token.facade,
                token.token.expose(),
                token.approved,
                token.pairing_code,
                token.pairing_expires_at,
                token.label,
                token.created_at
            ],
        )?;
        Ok(())
    }

    pub fn tokens(&self, environment: &str) -> Result<Vec<TokenRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT environment, facade, token, approved, pairing_code, pairing_expires_at,
                    label, created_at
             FROM tokens WHERE environment = ?1 ORDER BY facade",
        )?;
        let rows = stmt.query_map([environment], |r| {
            Ok(TokenRecord {
                environment: r.get(0)?,
                facade: r.get(1)?,
                token: Secret::new(r.get::<_, String>(2)?),
                approved: r.get(3)?,
                pairing_code: r.get(4)?,
                pairing_expires_at: r.get(5)?,
                label: r.get(6)?,
                created_at: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn mark_token_approved(&self, environment: &str, facade: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE tokens SET approved = 1 WHERE environment = ?1 AND facade = ?2",
            params![environment, facade],
        )?;
        Ok(())
    }

    pub fn delete_tokens(&self, environment: &str) -> Result<usize> {
        Ok(self
            .conn
            .execute("DELETE FROM tokens WHERE environment = ?1", [environment])?)
    }

    /// Deletes one token; whether it was there (so a one-time value is used once).
    pub fn delete_token(&self, environment: &str, facade: &str) -> Result<bool> {
        Ok(self.conn.execute(
            "DELETE FROM tokens WHERE environment = ?1 AND facade = ?2",
            [environment, facade],
        )? > 0)
    }

    // ---- Splynx nonce ----

    /// The next Splynx nonce for `api_key`: greater than every nonce handed out before,
    /// and at least `floor` (the clock in centiseconds). One statement, so concurrent
    /// processes never get the same value.
    pub fn next_nonce(&self, api_key: &str, floor: i64) -> Result<i64> {
        Ok(self.conn.query_row(
            "INSERT INTO splynx_nonce (api_key, last) VALUES (?1, ?2)
             ON CONFLICT (api_key) DO UPDATE SET last = max(last + 1, excluded.last)
             RETURNING last",
            params![api_key, floor],
            |r| r.get(0),
        )?)
    }

    /// The shared Splynx access token for `api_key` and its expiry (unix seconds).
    pub fn splynx_token(&self, api_key: &str) -> Result<Option<(Secret, i64)>> {
        Ok(self
            .conn
            .query_row(
                "SELECT token, expires_at FROM splynx_token WHERE api_key = ?1",
                [api_key],
                |r| Ok((Secret::new(r.get::<_, String>(0)?), r.get(1)?)),
            )
            .optional()?)
    }

    pub fn save_splynx_token(&self, api_key: &str, token: &Secret, expires_at: i64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO splynx_token (api_key, token, expires_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (api_key) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at",
            params![api_key, token.expose(), expires_at],
        )?;
        Ok(())
    }
}
