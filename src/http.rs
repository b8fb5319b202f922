//! The one HTTP seam of both API clients: a request in, status + headers + body out
//! ([`Transport`]), implemented once with reqwest (rustls, timeouts, a fixed User-Agent,
//! no redirects). Tests hand the clients canned replies instead.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub use reqwest::Method;

/// One request, as the API clients build it (the URL is what BitPay's signature covers).
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Vec<u8>>,
}

/// Sends a request and reads the whole reply.
pub trait Transport: Send + Sync {
    fn send(&self, request: Request) -> Result<Reply, TransportError>;
}

/// The real transport: reqwest, one client per timeout per process.
struct Reqwest {
    client: reqwest::blocking::Client,
}

impl Transport for Reqwest {
    fn send(&self, request: Request) -> Result<Reply, TransportError> {
        let mut builder = self.client.request(request.method, &request.url);
        for (name, value) in request.headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        exchange(builder)
    }
}

/// The transport for this timeout.
pub fn transport(timeout: Duration) -> Arc<dyn Transport> {
    Arc::new(Reqwest {
        client: client(timeout),
    })
}

/// Time this process spent waiting for HTTP replies, for the benchmark's overhead figure.
static WAITING_NANOS: AtomicU64 = AtomicU64::new(0);

pub const USER_AGENT: &str = concat!("splynx-bitpay/", env!("CARGO_PKG_VERSION"));

/// A client with this timeout, built once per process (building one loads the TLS roots
/// and starts a runtime thread; clones share it).
pub fn client(timeout: Duration) -> reqwest::blocking::Client {
    static CLIENTS: OnceLock<Mutex<Vec<(Duration, reqwest::blocking::Client)>>> = OnceLock::new();
    let mut clients = CLIENTS
        .get_or_init(Mutex::default)
        .lock()
        .expect("client cache lock");
    if let Some((_, client)) = clients.iter().find(|(t, _)| *t == timeout) {
        return client.clone();
    }
    let client = build(timeout);
    clients.push((timeout, client.clone()));
    client
}

fn build(timeout: Duration) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .user_agent(USER_AGENT)
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        // BitPay and Splynx never redirect API calls; following one would re-sign nothing.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("the TLS backend is compiled in")
}

/// A request that got no (complete) reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError {
    /// In words an admin can act on; never the URL (query strings carry tokens).
    pub message: String,
    /// False only when the request provably never left: no connection was made. A
    /// timeout or a connection dropped after sending may have been processed.
    pub may_have_arrived: bool,
}

/// A whole reply.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Reply {
    /// A canned reply (tests).
    pub fn new(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: reqwest::header::HeaderMap::new(),
            body: body.to_string(),
        }
    }

    /// A header's value, when it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends a request and reads the whole reply, or the transport failure.
fn exchange(request: reqwest::blocking::RequestBuilder) -> Result<Reply, TransportError> {
    let started = Instant::now();
    let result = request.send().and_then(|response| {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        response.text().map(|body| Reply {
            status,
            headers,
            body,
        })
    });
    WAITING_NANOS.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
    result.map_err(|e| TransportError {
        may_have_arrived: !e.is_connect() && !e.is_builder(),
        message: describe_transport_error(e),
    })
}

/// Total time spent in [`exchange`] so far.
pub fn time_waiting() -> Duration {
    Duration::from_nanos(WAITING_NANOS.load(Ordering::Relaxed))
}

fn describe_transport_error(error: reqwest::Error) -> String {
    // reqwest's text names the URL, and BitPay's URLs carry `?token=`.
    let error = error.without_url();
    if error.is_connect() {
        "cannot connect".to_string()
    } else if error.is_timeout() {
        "no reply before the timeout".to_string()
    } else {
        let mut text = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}

/// Canned replies for the API clients' unit tests.
#[cfg(test)]
pub mod canned {
    use super::*;

    /// Answers with queued replies in order and records every request.
    #[derive(Default)]
    pub struct Canned {
        pub replies: Mutex<Vec<Result<Reply, TransportError>>>,
        pub requests: Mutex<Vec<Request>>,
    }

    impl Canned {
        pub fn new(replies: Vec<Result<Reply, TransportError>>) -> Arc<Canned> {
            Arc::new(Canned {
                replies: Mutex::new(replies),
                requests: Mutex::default(),
            })
        }

        pub fn requests(&self) -> Vec<Request> {
            self.requests.lock().unwrap().clone()
        }
    }

    impl Transport for Canned {
        fn send(&self, request: Request) -> Result<Reply, TransportError> {
            self.requests.lock().unwrap().push(request);
            let mut replies = self.replies.lock().unwrap();
            assert!(!replies.is_empty(), "no canned reply left");
            replies.remove(0)
        }
    }

    impl Request {
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }
}
