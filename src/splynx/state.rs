//! What every process talking to Splynx shares: the last nonce per API key, the access
//! token, and the locks that keep requests in order. The state store implements it; the
//! client knows nothing of SQLite, files or directories.

use std::time::Duration;

use crate::secret::Secret;

/// A held cross-process lock: released when dropped.
pub type Held = Box<dyn std::any::Any>;

/// Where the client keeps what many processes share: the last nonce per API key and the
/// access token (the state store implements it; the client knows nothing of SQLite).
pub trait SharedState {
    /// The next nonce for `api_key`: greater than every one before, and at least `floor`.
    fn next_nonce(&self, api_key: &str, floor: i64) -> std::result::Result<i64, StateError>;
    /// The shared access token of `owner` and its expiry (unix seconds).
    fn access_token(&self, owner: &str) -> std::result::Result<Option<(Secret, i64)>, StateError>;
    fn save_access_token(
        &self,
        owner: &str,
        token: &Secret,
        expires_at: i64,
    ) -> std::result::Result<(), StateError>;
    /// Holds the lock `name` (`what` it guards, for a busy error) across every process,
    /// waiting at most `wait`.
    fn hold(&self, name: &str, what: &str, wait: Duration)
        -> std::result::Result<Held, StateError>;
}

/// The shared state could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StateError {
    pub message: String,
    /// Busy or out of room: the next run succeeds.
    pub temporary: bool,
}
