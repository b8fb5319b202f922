//! HTTP plumbing shared by both fakes: a tiny_http server on loopback with a pool of
//! worker threads, request recording, fault injection and the common `/_sandbox/`
//! routes (`faults`, `requests`).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};

use crate::faults::{Action, FaultSpec, Faults};

/// Worker threads per fake, each blocked in `server.recv()`.
const WORKERS: usize = 16;

/// Prefix of the test-control routes; they are never faulted nor recorded.
pub(crate) const CONTROL_PREFIX: &str = "/_sandbox/";

/// One request as the fake received it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query exactly as on the request line.
    pub url: String,
    /// Header names lowercased; repeated headers are joined with ", ".
    pub headers: BTreeMap<String, String>,
    pub body: String,
    /// Status of the response; 0 while unanswered or when it was never answered (hang).
    pub status: u16,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.url.split('?').next().unwrap_or("")
    }

    /// The body parsed as JSON, when it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }
}

/// A request handed to a fake's handler.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub method: String,
    pub url: String,
    pub path: String,
    /// The raw query (without `?`), empty when there is none.
    pub query: String,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Incoming {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Percent-decoded query pairs in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .into_owned()
            .collect()
    }

    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// The body as JSON; `Err` carries a short reason.
    pub fn json(&self) -> Result<Value, String> {
        serde_json::from_slice(&self.body).map_err(|e| format!("invalid JSON body: {e}"))
    }
}

/// A response from a fake's handler.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(status: u16, value: &Value) -> Reply {
        Reply::with_body(
            status,
            "application/json; charset=utf-8",
            serde_json::to_vec(value).expect("serialisable JSON"),
        )
    }

    pub fn html(status: u16, html: String) -> Reply {
        Reply::with_body(status, "text/html; charset=utf-8", html.into_bytes())
    }

    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    fn with_body(status: u16, content_type: &str, body: Vec<u8>) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body,
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// What a fake plugs into the shared server.
pub(crate) trait Service: Send + Sync + 'static {
    /// An API request (anything outside `/_sandbox/`).
    fn handle(&self, req: &Incoming) -> Reply;
    /// A control request under `/_sandbox/` not served by the shared routes;
    /// `route` is the path after `/_sandbox/`.
    fn control(&self, req: &Incoming, route: &str) -> Reply;
    /// The plausible error body of an injected failure with this status.
    fn fault_reply(&self, status: u16) -> Reply;
}

#[derive(Default)]
struct RequestLog {
    next_seq: u64,
    entries: Vec<(u64, RecordedRequest)>,
}

struct Shared {
    server: tiny_http::Server,
    service: Arc<dyn Service>,
    faults: Faults,
    log: Mutex<RequestLog>,
    /// Writers of requests that are never answered; dropping them at shutdown
    /// closes those exchanges.
    held: Mutex<Vec<Box<dyn Write + Send>>>,
    stopping: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running loopback server; stops (and closes held connections) on drop.
pub(crate) struct HttpServer {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    url: String,
}

impl HttpServer {
    /// Binds `127.0.0.1:port` (0 = any free port), builds the service with the base
    /// URL (`http://127.0.0.1:PORT`) and starts the workers.
    pub fn start<S: Service>(
        port: u16,
        make_service: impl FnOnce(String) -> S,
    ) -> io::Result<(HttpServer, Arc<S>)> {
        let server = tiny_http::Server::http(("127.0.0.1", port))
            .map_err(|e| io::Error::new(io::ErrorKind::AddrInUse, e.to_string()))?;
        let bound = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| io::Error::other("not an IP listener"))?;
        let url = format!("http://127.0.0.1:{}", bound.port());
        let service = Arc::new(make_service(url.clone()));
        let shared = Arc::new(Shared {
            server,
            service: service.clone(),
            faults: Faults::new(),
            log: Mutex::new(RequestLog::default()),
            held: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
        });
        let workers = (0..WORKERS)
            .map(|i| {
                let shared = shared.clone();
                thread::Builder::new()
                    .name(format!("sandbox-http-{}-{i}", bound.port()))
                    .spawn(move || shared.work())
                    .expect("spawn sandbox worker")
            })
            .collect();
        Ok((
            HttpServer {
                shared,
                workers,
                url,
            },
            service,
        ))
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.log).entries.clear();
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        for _ in 0..self.workers.len() {
            self.shared.server.unblock();
        }
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
        // tiny_http cannot shut a connection's socket from here, so the held exchanges
        // are ended with bytes no HTTP client accepts as a response: the client sees a
        // broken connection, never an answer. Dropping the writers releases them.
        let held = std::mem::take(&mut *lock(&self.shared.held));
        for mut writer in held {
            let _ = writer.write_all(b"SANDBOX-SHUTDOWN connection closed\r\n\r\n");
            let _ = writer.flush();
        }
    }
}

impl Shared {
    fn work(&self) {
        loop {
            match self.server.recv() {
                Ok(request) => {
                    if self.stopping.load(Ordering::SeqCst) {
                        let _ = request.respond(tiny_http::Response::empty(503));
                        break;
                    }
                    self.dispatch(request);
                }
                Err(_) => {
                    if self.stopping.load(Ordering::SeqCst) {
                        break;
                    }
                }
            }
        }
    }

    fn dispatch(&self, mut request: tiny_http::Request) {
        let mut body = Vec::new();
        if request.as_reader().read_to_end(&mut body).is_err() {
            let _ = request.respond(tiny_http::Response::empty(400));
            return;
        }
        let incoming = incoming_from(&request, body);

        if incoming.path.starts_with(CONTROL_PREFIX) {
            let route = &incoming.path[CONTROL_PREFIX.len()..];
            let reply = self
                .common_control(&incoming, route)
                .unwrap_or_else(|| self.service.control(&incoming, route));
            send(request, reply);
            return;
        }

        let seq = self.record(&incoming);
        let decision = self.faults.take(&incoming.method, &incoming.url);
        if !decision.latency.is_zero() {
            self.sleep(decision.latency);
        }
        match decision.action {
            Action::Normal => {
                let reply = self.service.handle(&incoming);
                self.set_status(seq, reply.status);
                send(request, reply);
            }
            Action::Fail(status) => {
                let reply = self.service.fault_reply(status);
                self.set_status(seq, reply.status);
                send(request, reply);
            }
            Action::Hang => self.hold(request),
            Action::HangAfter => {
                let _ = self.service.handle(&incoming);
                self.hold(request);
            }
        }
    }

    /// `faults` and `requests`, the control routes both fakes share.
    fn common_control(&self, req: &Incoming, route: &str) -> Option<Reply> {
        let reply = match (req.method.as_str(), route) {
            ("GET", "faults") => Reply::json(200, &json!(self.faults.spec())),
            ("POST", "faults") => {
                let spec: Result<FaultSpec, String> =
                    if req.body.iter().all(u8::is_ascii_whitespace) {
                        Ok(FaultSpec::default())
                    } else {
                        serde_json::from_slice(&req.body).map_err(|e| e.to_string())
                    };
                match spec.and_then(|s| s.validate().map(|_| s)) {
                    Ok(spec) => {
                        self.faults.apply(&spec);
                        Reply::json(200, &json!({"ok": true, "faults": self.faults.spec()}))
                    }
                    Err(e) => control_error(400, &format!("invalid fault spec: {e}")),
                }
            }
            ("GET", "requests") => Reply::json(200, &json!(self.requests())),
            ("DELETE", "requests") => {
                lock(&self.log).entries.clear();
                Reply::json(200, &json!({"ok": true}))
            }
            _ => return None,
        };
        Some(reply)
    }

    fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.log)
            .entries
            .iter()
            .map(|(_, r)| r.clone())
            .collect()
    }

    fn record(&self, req: &Incoming) -> u64 {
        let mut log = lock(&self.log);
        let seq = log.next_seq;
        log.next_seq += 1;
        log.entries.push((
            seq,
            RecordedRequest {
                method: req.method.clone(),
                url: req.url.clone(),
                headers: req.headers.clone(),
                body: req.body_text(),
                status: 0,
            },
        ));
        seq
    }

    fn set_status(&self, seq: u64, status: u16) {
        let mut log = lock(&self.log);
        if let Some((_, r)) = log.entries.iter_mut().rev().find(|(s, _)| *s == seq) {
            r.status = status;
        }
    }

    /// Keeps the exchange open without answering and without occupying a worker.
    fn hold(&self, request: tiny_http::Request) {
        let writer = request.into_writer();
        if self.stopping.load(Ordering::SeqCst) {
            return;
        }
        lock(&self.held).push(writer);
    }

    /// Sleeps, waking early when the server stops.
    fn sleep(&self, total: Duration) {
        let until = Instant::now() + total;
        while !self.stopping.load(Ordering::SeqCst) {
            let now = Instant::now();
            if now >= until {
                break;
            }
            thread::sleep((until - now).min(Duration::from_millis(20)));
        }
    }
}

fn incoming_from(request: &tiny_http::Request, body: Vec<u8>) -> Incoming {
    let url = request.url().to_string();
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (url.clone(), String::new()),
    };
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for h in request.headers() {
        let name = h.field.as_str().as_str().to_ascii_lowercase();
        let value = h.value.as_str().to_string();
        headers
            .entry(name)
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    Incoming {
        method: request.method().as_str().to_ascii_uppercase(),
        url,
        path,
        query,
        headers,
        body,
    }
}

fn send(request: tiny_http::Request, reply: Reply) {
    let mut response = tiny_http::Response::from_data(reply.body).with_status_code(reply.status);
    for (name, value) in reply.headers {
        if let Ok(header) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(header);
        }
    }
    let _ = request.respond(response);
}

/// Error body of the control routes (both fakes).
pub(crate) fn control_error(status: u16, message: &str) -> Reply {
    Reply::json(status, &json!({"error": message}))
}
