//! HTTP plumbing shared by both fakes: a std `TcpListener` on loopback serving each
//! connection on its own thread (one request per connection, then `Connection: close`),
//! request recording, fault injection and the common `/_sandbox/` routes (`faults`,
//! `requests`).

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::faults::{Action, FaultSpec, Faults};

/// Limits on what a request may carry.
const MAX_HEAD_BYTES: usize = 64 * 1024;
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// How long an idle keep-alive connection is kept.
const IDLE_CONNECTION: Duration = Duration::from_secs(10);

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
    /// A control route's body: a JSON object, or nothing (an empty object).
    pub fn control_body(&self) -> Result<Map<String, Value>, (u16, String)> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Map::new());
        }
        match self.json() {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err((400, "expected a JSON object body".into())),
        }
    }

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

/// A control route's success.
pub(crate) fn control_ok() -> Reply {
    Reply::json(200, &json!({"ok": true}))
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
    service: Arc<dyn Service>,
    faults: Faults,
    log: Mutex<RequestLog>,
    /// Connections of requests that are never answered; closed at shutdown.
    held: Mutex<Vec<TcpStream>>,
    stopping: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running loopback server; stops (and closes held connections) on drop.
pub(crate) struct HttpServer {
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
    address: std::net::SocketAddr,
    url: String,
}

impl HttpServer {
    /// Binds `127.0.0.1:port` (0 = any free port), builds the service with the base
    /// URL (`http://127.0.0.1:PORT`) and starts the workers.
    pub fn start<S: Service>(
        port: u16,
        make_service: impl FnOnce(String) -> S,
    ) -> io::Result<(HttpServer, Arc<S>)> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let address = listener.local_addr()?;
        let url = format!("http://127.0.0.1:{}", address.port());
        let service = Arc::new(make_service(url.clone()));
        let shared = Arc::new(Shared {
            service: service.clone(),
            faults: Faults::new(),
            log: Mutex::new(RequestLog::default()),
            held: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
        });
        let acceptor = {
            let shared = shared.clone();
            thread::Builder::new()
                .name(format!("sandbox-http-{}", address.port()))
                .spawn(move || shared.accept(listener))?
        };
        Ok((
            HttpServer {
                shared,
                acceptor: Some(acceptor),
                address,
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
        // Wake the acceptor blocked in accept().
        let _ = TcpStream::connect(self.address);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        // Held exchanges end with bytes no HTTP client accepts as a response: the client
        // sees a broken connection, never an answer.
        let held = std::mem::take(&mut *lock(&self.shared.held));
        for mut stream in held {
            let _ = stream.write_all(b"SANDBOX-SHUTDOWN connection closed\r\n\r\n");
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

impl Shared {
    fn accept(self: Arc<Self>, listener: TcpListener) {
        for stream in listener.incoming() {
            if self.stopping.load(Ordering::SeqCst) {
                break;
            }
            let Ok(stream) = stream else { continue };
            let shared = self.clone();
            // A thread per connection: a slow or hung exchange never delays another.
            let _ = thread::Builder::new()
                .name("sandbox-conn".into())
                .spawn(move || shared.serve(stream));
        }
    }

    /// Serves the requests of one connection (HTTP/1.1 keep-alive) until the client
    /// closes it, asks to, stays idle too long, or a request is held unanswered.
    fn serve(&self, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(IDLE_CONNECTION));
        let mut reader = BufReader::new(stream);
        loop {
            match read_request(&mut reader) {
                Ok(Some((incoming, keep_alive))) => match self.dispatch(&incoming) {
                    Answer::Reply(reply) => {
                        send(reader.get_mut(), reply, keep_alive);
                        if !keep_alive {
                            break;
                        }
                    }
                    Answer::Hold => {
                        self.hold(reader.into_inner());
                        return;
                    }
                    Answer::Close => break,
                },
                Ok(None) => break,
                Err(e) => {
                    send(
                        reader.get_mut(),
                        control_error(400, &format!("bad request: {e}")),
                        false,
                    );
                    break;
                }
            }
        }
        close(reader.into_inner());
    }

    /// What to do with one request: reply, hold it unanswered, or close the connection.
    fn dispatch(&self, incoming: &Incoming) -> Answer {
        if incoming.path.starts_with(CONTROL_PREFIX) {
            let route = &incoming.path[CONTROL_PREFIX.len()..];
            return Answer::Reply(
                self.common_control(incoming, route)
                    .unwrap_or_else(|| self.service.control(incoming, route)),
            );
        }
        let seq = self.record(incoming);
        let decision = self.faults.take(&incoming.method, &incoming.url);
        if !decision.latency.is_zero() {
            self.sleep(decision.latency);
        }
        let reply = match decision.action {
            Action::Normal => self.service.handle(incoming),
            Action::Fail(status) => self.service.fault_reply(status),
            Action::Hang => return Answer::Hold,
            Action::HangAfter => {
                let _ = self.service.handle(incoming);
                return Answer::Hold;
            }
            Action::CommitLate(delay) => {
                self.sleep(delay);
                self.service.handle(incoming)
            }
            Action::Drop => return Answer::Close,
        };
        self.set_status(seq, reply.status);
        Answer::Reply(reply)
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

    /// Keeps the exchange open without answering.
    fn hold(&self, request: TcpStream) {
        if self.stopping.load(Ordering::SeqCst) {
            return;
        }
        lock(&self.held).push(request);
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

/// What the server does with one request.
enum Answer {
    Reply(Reply),
    /// Keep the connection open and never answer.
    Hold,
    /// Close the connection without a reply.
    Close,
}

/// Reads one HTTP/1.x request: request line, headers, and a body framed by
/// `Content-Length` or chunked encoding. `None` when the peer closed without a request.
/// With whether the connection may carry another request afterwards.
fn read_request(reader: &mut BufReader<TcpStream>) -> io::Result<Option<(Incoming, bool)>> {
    let invalid = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) => return Ok(None),
        Ok(_) => {}
        // An idle keep-alive connection timing out is a normal end.
        Err(e)
            if line.is_empty()
                && matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e),
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(url), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("malformed request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(invalid("only HTTP/1.x is served"));
    }
    let (method, url) = (method.to_ascii_uppercase(), url.to_string());
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut head_bytes = line.len();
    loop {
        let mut header = String::new();
        let read = reader.read_line(&mut header)?;
        head_bytes += read;
        if read == 0 || head_bytes > MAX_HEAD_BYTES {
            return Err(invalid("headers too long or cut off"));
        }
        let header = header.trim_end_matches(['\r', '\n']);
        if header.is_empty() {
            break;
        }
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| invalid("malformed header"))?;
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_string());
        headers
            .entry(name)
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    if headers
        .get("expect")
        .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
    {
        reader
            .get_mut()
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let connection = headers
        .get("connection")
        .map(|c| c.to_ascii_lowercase())
        .unwrap_or_default();
    let keep_alive = if version == "HTTP/1.0" {
        connection.contains("keep-alive")
    } else {
        !connection.contains("close")
    };
    let body = if headers
        .get("transfer-encoding")
        .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"))
    {
        read_chunked(reader)?
    } else {
        let length: usize = match headers.get("content-length") {
            Some(l) => l.parse().map_err(|_| invalid("bad Content-Length"))?,
            None => 0,
        };
        if length > MAX_BODY_BYTES {
            return Err(invalid("body too large"));
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        body
    };
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (url.clone(), String::new()),
    };
    Ok(Some((
        Incoming {
            method,
            url,
            path,
            query,
            headers,
            body,
        },
        keep_alive,
    )))
}

fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let invalid = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line)?;
        let size_text = size_line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size_text, 16).map_err(|_| invalid("bad chunk size"))?;
        if body.len() + size > MAX_BODY_BYTES {
            return Err(invalid("body too large"));
        }
        if size == 0 {
            // Trailers end with an empty line.
            loop {
                let mut trailer = String::new();
                if reader.read_line(&mut trailer)? == 0 || trailer.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf)?;
    }
}

/// Writes the reply; the connection stays open when `keep_alive`.
fn send(stream: &mut TcpStream, reply: Reply, keep_alive: bool) {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Length: {}\r\nConnection: {}\r\n",
        reply.status,
        reason(reply.status),
        reply.body.len(),
        if keep_alive { "keep-alive" } else { "close" }
    );
    for (name, value) in &reply.headers {
        if !name.contains(['\r', '\n', ':']) && !value.contains(['\r', '\n']) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&reply.body);
    let _ = stream.flush();
}

/// Closes a connection in order: no more writes, then drain what the client still sends
/// (a reset could destroy the last reply before the client read it).
fn close(mut stream: TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let _ = io::copy(&mut stream, &mut io::sink());
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        302 => "Found",
        303 => "See Other",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Error body of the control routes (both fakes).
pub(crate) fn control_error(status: u16, message: &str) -> Reply {
    Reply::json(status, &json!({"error": message}))
}
