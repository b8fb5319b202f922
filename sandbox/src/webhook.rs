//! Webhook delivery: the BitPay fake POSTs a notification to an invoice's
//! `notificationURL` the way BitPay does, and remembers how the merchant answered.
//!
//! A plain HTTP/1.1 client over `std::net` (the merchant is on loopback; `https` is
//! refused with a clear error rather than pretended).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde::Serialize;
use url::Url;

/// How long the merchant may take to answer one notification.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One notification the fake sent, and the merchant's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub invoice_id: String,
    /// The invoice status the notification announced.
    pub invoice_status: String,
    /// Extended-notification event name, `None` for the legacy flat format.
    pub event: Option<String>,
    pub url: String,
    pub body: String,
    /// The `x-signature` header sent.
    pub signature: String,
    /// HTTP status of the answer; 0 when there was none.
    pub status: u16,
    /// Why there was no answer (connection refused, timeout, unsupported URL...).
    pub error: Option<String>,
    /// When it was sent, Unix milliseconds.
    pub at: i64,
}

impl Delivery {
    /// True when the merchant accepted it (2xx), as BitPay judges it.
    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// POSTs `body` with `headers` (a `User-Agent` and the signature) to `url`; returns the
/// answer's status code.
pub(crate) fn post(url: &str, body: &str, headers: &[(&str, &str)]) -> Result<u16, String> {
    let parsed = Url::parse(url).map_err(|e| format!("invalid notificationURL {url:?}: {e}"))?;
    if parsed.scheme() != "http" {
        return Err(format!(
            "the sandbox delivers webhooks over plain http only, not {}",
            parsed.scheme()
        ));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("notificationURL {url:?} has no host"))?;
    let port = parsed.port_or_known_default().unwrap_or(80);
    let address = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("cannot resolve {host}"))?;
    let mut stream = TcpStream::connect_timeout(&address, CONNECT_TIMEOUT)
        .map_err(|e| format!("cannot connect to {address}: {e}"))?;
    stream
        .set_read_timeout(Some(ANSWER_TIMEOUT))
        .and_then(|_| stream.set_write_timeout(Some(ANSWER_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let target = match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_string(),
    };
    let host_header = match parsed.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let request = format!(
        "POST {target} HTTP/1.1\r\nHost: {host_header}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{headers}Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("sending to {address}: {e}"))?;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    // Only the status line matters; stop reading once it is in.
    while !answer.windows(2).any(|w| w == b"\r\n") {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("waiting for {address} to answer: {e}")),
        }
    }
    parse_status_line(&answer).ok_or_else(|| {
        format!(
            "{address} answered something that is not HTTP: {:?}",
            String::from_utf8_lossy(&answer[..answer.len().min(80)])
        )
    })
}

fn parse_status_line(answer: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(answer);
    let line = text.lines().next()?;
    let mut parts = line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK\r\n\r\n"), Some(200));
        assert_eq!(parse_status_line(b"HTTP/1.0 503 Busy\r\n"), Some(503));
        assert_eq!(parse_status_line(b"SSH-2.0-OpenSSH\r\n"), None);
    }

    #[test]
    fn posts_body_and_signature() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut seen = Vec::new();
            let mut chunk = [0u8; 1024];
            while !String::from_utf8_lossy(&seen).contains("{\"a\":1}") {
                let n = socket.read(&mut chunk).unwrap();
                seen.extend_from_slice(&chunk[..n]);
            }
            socket
                .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
            String::from_utf8(seen).unwrap()
        });
        let status = post(
            &format!("http://127.0.0.1:{port}/bitpay/ipn?x=1"),
            "{\"a\":1}",
            &[("x-signature", "c2ln")],
        )
        .unwrap();
        assert_eq!(status, 400);
        let request = server.join().unwrap();
        assert!(
            request.starts_with("POST /bitpay/ipn?x=1 HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(request.contains("\r\nx-signature: c2ln\r\n"), "{request}");
        assert!(request.contains("\r\nContent-Length: 7\r\n"), "{request}");
    }

    #[test]
    fn refuses_https_and_reports_refused_connections() {
        assert!(post("https://example.com/ipn", "{}", &[])
            .unwrap_err()
            .contains("plain http"));
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        assert!(post(&format!("http://127.0.0.1:{port}/ipn"), "{}", &[])
            .unwrap_err()
            .contains("cannot connect"));
    }
}
