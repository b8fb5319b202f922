//! The one place HTTP clients are built: rustls, timeouts, a fixed User-Agent.

use std::time::Duration;

pub const USER_AGENT: &str = concat!("splynx-bitpay/", env!("CARGO_PKG_VERSION"));

pub fn client(timeout: Duration) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .user_agent(USER_AGENT)
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        // BitPay and Splynx never redirect API calls; following one would re-sign nothing.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("the TLS backend is compiled in")
}

/// A transport failure in words an admin can act on.
pub fn describe_transport_error(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "no reply before the timeout".to_string()
    } else if error.is_connect() {
        "cannot connect".to_string()
    } else {
        let mut text = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}
