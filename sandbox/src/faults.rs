//! Fault injection shared by both fakes.
//!
//! Faults are set from Rust ([`Faults`]) or over HTTP (`POST /_sandbox/faults` with a
//! [`FaultSpec`]). Requests under `/_sandbox/` are never faulted. When several counters
//! are armed, one request consumes at most one of them, in this order: `fail_next`,
//! `hang_next`, `hang_after_next`, `commit_late_next`, `drop_next`.

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Status used when `fail_next` is armed over HTTP without a `status`.
pub const DEFAULT_FAIL_STATUS: u16 = 503;

/// The JSON body of `POST /_sandbox/faults` (and of `GET /_sandbox/faults`).
/// Every field is optional; posting `{}` clears all faults.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_next: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hang_next: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hang_after_next: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_late_next: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_late_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_next: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_contains: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

impl FaultSpec {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if let Some(status) = self.status {
            if !(400..=599).contains(&status) {
                return Err(format!("status must be 400..=599, got {status}"));
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Default)]
struct State {
    fail_next: usize,
    fail_status: u16,
    hang_next: usize,
    hang_after_next: usize,
    commit_late_next: usize,
    commit_late: Duration,
    drop_next: usize,
    latency: Duration,
    path_contains: Option<String>,
    method: Option<String>,
}

/// What the server does with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Process and answer normally.
    Normal,
    /// Answer with this error status without touching state.
    Fail(u16),
    /// Read the request and never answer.
    Hang,
    /// Process the request (state changes commit), then never answer.
    HangAfter,
    /// Hold the request this long, then process it (its changes commit) and answer: a
    /// slow server that commits after the client gave up waiting.
    CommitLate(Duration),
    /// Read the request and close the connection at once, without a reply.
    Drop,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Decision {
    pub latency: Duration,
    pub action: Action,
}

/// Armed faults of one fake. All methods take `&self`; the counters are shared by the
/// server's worker threads.
#[derive(Debug, Default)]
pub struct Faults {
    state: Mutex<State>,
}

impl Faults {
    pub fn new() -> Faults {
        Faults::default()
    }

    /// The next `n` matching requests get `status` (normally 5xx) with a plausible
    /// error body, without touching state.
    pub fn fail_next(&self, n: usize, status: u16) {
        assert!(
            (400..=599).contains(&status),
            "fail_next status must be an HTTP error status, got {status}"
        );
        let mut s = self.lock();
        s.fail_next = n;
        s.fail_status = status;
    }

    /// The next `n` matching requests are read and never answered.
    pub fn hang_next(&self, n: usize) {
        self.lock().hang_next = n;
    }

    /// The next `n` matching requests are processed (their state changes commit) and
    /// then never answered: "the server accepted it but the reply never came".
    pub fn hang_after_next(&self, n: usize) {
        self.lock().hang_after_next = n;
    }

    /// The next `n` matching requests are held for `delay` before they are processed (their
    /// state changes commit then) and answered: "Splynx was slow and committed the payment
    /// after we stopped waiting".
    pub fn commit_late_next(&self, n: usize, delay: Duration) {
        let mut s = self.lock();
        s.commit_late_next = n;
        s.commit_late = delay;
    }

    /// The next `n` matching requests are read and their connection is closed at once,
    /// with no reply: the client sees a dropped connection.
    pub fn drop_next(&self, n: usize) {
        self.lock().drop_next = n;
    }

    /// Sleep this long before answering every matching request (zero turns it off).
    pub fn latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Restrict all faults to requests whose URL (path and query) contains
    /// `path_contains` and/or whose method is `method` (case-insensitive).
    /// `None` removes that filter.
    pub fn set_filter(&self, path_contains: Option<&str>, method: Option<&str>) {
        let mut s = self.lock();
        s.path_contains = path_contains.map(str::to_string);
        s.method = method.map(str::to_ascii_uppercase);
    }

    /// Disarms everything, filters included.
    pub fn clear(&self) {
        *self.lock() = State::default();
    }

    /// Replaces the whole configuration with `spec` (what `POST /_sandbox/faults` does).
    pub fn apply(&self, spec: &FaultSpec) {
        if let Err(e) = spec.validate() {
            panic!("invalid fault spec: {e}");
        }
        *self.lock() = State {
            fail_next: spec.fail_next.unwrap_or(0),
            fail_status: spec.status.unwrap_or(DEFAULT_FAIL_STATUS),
            hang_next: spec.hang_next.unwrap_or(0),
            hang_after_next: spec.hang_after_next.unwrap_or(0),
            commit_late_next: spec.commit_late_next.unwrap_or(0),
            commit_late: Duration::from_millis(spec.commit_late_ms.unwrap_or(0)),
            drop_next: spec.drop_next.unwrap_or(0),
            latency: Duration::from_millis(spec.latency_ms.unwrap_or(0)),
            path_contains: spec.path_contains.clone(),
            method: spec.method.as_deref().map(str::to_ascii_uppercase),
        };
    }

    /// The current configuration, with the counters that remain.
    pub fn spec(&self) -> FaultSpec {
        let s = self.lock();
        let count = |n: usize| (n > 0).then_some(n);
        FaultSpec {
            fail_next: count(s.fail_next),
            status: (s.fail_next > 0).then_some(s.fail_status),
            hang_next: count(s.hang_next),
            hang_after_next: count(s.hang_after_next),
            commit_late_next: count(s.commit_late_next),
            commit_late_ms: (s.commit_late_next > 0).then_some(s.commit_late.as_millis() as u64),
            drop_next: count(s.drop_next),
            latency_ms: (!s.latency.is_zero()).then_some(s.latency.as_millis() as u64),
            path_contains: s.path_contains.clone(),
            method: s.method.clone(),
        }
    }

    /// Decides the fate of one request and consumes a counter when one applies.
    pub(crate) fn take(&self, method: &str, url: &str) -> Decision {
        let mut s = self.lock();
        let matches = s.path_contains.as_deref().is_none_or(|p| url.contains(p))
            && s.method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method));
        if !matches {
            return Decision {
                latency: Duration::ZERO,
                action: Action::Normal,
            };
        }
        let action = if s.fail_next > 0 {
            s.fail_next -= 1;
            Action::Fail(s.fail_status)
        } else if s.hang_next > 0 {
            s.hang_next -= 1;
            Action::Hang
        } else if s.hang_after_next > 0 {
            s.hang_after_next -= 1;
            Action::HangAfter
        } else if s.commit_late_next > 0 {
            s.commit_late_next -= 1;
            Action::CommitLate(s.commit_late)
        } else if s.drop_next > 0 {
            s.drop_next -= 1;
            Action::Drop
        } else {
            Action::Normal
        };
        Decision {
            latency: s.latency,
            action,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_fire_exactly_n_times_in_order() {
        let f = Faults::new();
        f.fail_next(2, 502);
        f.hang_next(1);
        f.hang_after_next(1);
        f.commit_late_next(1, Duration::from_secs(4));
        f.drop_next(1);
        let actions: Vec<Action> = (0..8).map(|_| f.take("GET", "/x").action).collect();
        assert_eq!(
            actions,
            vec![
                Action::Fail(502),
                Action::Fail(502),
                Action::Hang,
                Action::HangAfter,
                Action::CommitLate(Duration::from_secs(4)),
                Action::Drop,
                Action::Normal,
                Action::Normal
            ]
        );
    }

    #[test]
    fn filters_restrict_matching_requests() {
        let f = Faults::new();
        f.apply(&FaultSpec {
            fail_next: Some(1),
            path_contains: Some("payments".into()),
            method: Some("post".into()),
            ..FaultSpec::default()
        });
        assert_eq!(
            f.take("GET", "/api/2.0/admin/finance/payments").action,
            Action::Normal
        );
        assert_eq!(
            f.take("POST", "/api/2.0/admin/api/check").action,
            Action::Normal
        );
        assert_eq!(
            f.take("POST", "/api/2.0/admin/finance/payments").action,
            Action::Fail(DEFAULT_FAIL_STATUS)
        );
        assert_eq!(
            f.take("POST", "/api/2.0/admin/finance/payments").action,
            Action::Normal
        );
        f.apply(&FaultSpec::default());
        assert_eq!(f.spec(), FaultSpec::default());
    }
}
