//! The one HTTP seam of both API clients: a request in, status + headers + body out
//! ([`Transport`]), implemented once with reqwest on a current-thread runtime (rustls,
//! timeouts, a fixed User-Agent, no redirects). Tests hand the clients canned replies
//! instead.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
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

/// The real transport: async reqwest driven on this thread by a current-thread runtime.
///
/// reqwest's blocking wrapper runs its own runtime on an extra thread and hands every
/// request over to it and back; a one-shot command pays for that thread and those
/// hand-offs on every run. Here the calling thread drives the request itself. Runtime and
/// clients are per thread (a pooled connection belongs to the runtime that opened it), so
/// reconcile's workers each drive their own.
struct Reqwest {
    timeout: Duration,
}

impl Transport for Reqwest {
    fn send(&self, request: Request) -> Result<Reply, TransportError> {
        LOCAL.with(|local| {
            let mut local = local.borrow_mut();
            let local = local.get_or_insert_with(Local::new);
            let mut builder = local
                .client(self.timeout)
                .request(request.method, &request.url);
            for (name, value) in request.headers {
                builder = builder.header(name, value);
            }
            if let Some(body) = request.body {
                builder = builder.body(body);
            }
            local.runtime.block_on(exchange(builder))
        })
    }
}

/// This thread's runtime and its clients, one per timeout (building one loads the TLS
/// roots).
struct Local {
    runtime: tokio::runtime::Runtime,
    clients: Vec<(Duration, reqwest::Client)>,
}

thread_local! {
    static LOCAL: RefCell<Option<Local>> = const { RefCell::new(None) };
}

impl Local {
    fn new() -> Local {
        Local {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime needs no resources that can run out"),
            clients: Vec::new(),
        }
    }

    fn client(&mut self, timeout: Duration) -> reqwest::Client {
        if let Some((_, client)) = self.clients.iter().find(|(t, _)| *t == timeout) {
            return client.clone();
        }
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            // BitPay and Splynx never redirect API calls; following one would re-sign nothing.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the TLS backend is compiled in");
        self.clients.push((timeout, client.clone()));
        client
    }
}

/// The transport for this timeout.
pub fn transport(timeout: Duration) -> Arc<dyn Transport> {
    Arc::new(Reqwest { timeout })
}

/// Time this process spent waiting for HTTP replies, for the benchmark's overhead figure.
static WAITING_NANOS: AtomicU64 = AtomicU64::new(0);

/// `url` with `query` appended, encoded (nothing appended for an empty query).
pub fn with_query(mut url: String, query: &[(&str, &str)]) -> String {
    if !query.is_empty() {
        url.push('?');
        url.push_str(
            &url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(query)
                .finish(),
        );
    }
    url
}

pub const USER_AGENT: &str = concat!("splynx-bitpay/", env!("CARGO_PKG_VERSION"));

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
async fn exchange(request: reqwest::RequestBuilder) -> Result<Reply, TransportError> {
    let started = Instant::now();
    let result = async {
        let response = request.send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await?;
        Ok::<_, reqwest::Error>(Reply {
            status,
            headers,
            body,
        })
    }
    .await;
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
    use std::sync::Mutex;

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
