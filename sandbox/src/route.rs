//! The add-on's webhook route on loopback, standing in for `hooks/pages/ipn.php` (whose own
//! mapping the PHP suite tests) where no PHP server runs: each POST's body and signature
//! header go to `handle` as `handle-ipn` arguments (`--signature` for BitPay's
//! `x-signature`, `--btcpay-sig` for `BTCPay-Sig`), and the exit code it returns becomes
//! the HTTP status the shim would answer (0: 200, 65: 400, 75: 503, anything else: 500).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// Serves until dropped, one request at a time (as BTCPay's queue sends them).
pub struct WebhookRoute {
    /// `http://127.0.0.1:PORT/bitpay/ipn`.
    pub url: String,
    stop: Arc<AtomicBool>,
    worker: Option<thread::JoinHandle<()>>,
}

impl WebhookRoute {
    /// `handle(args, body)` runs `handle-ipn` and returns its exit code.
    pub fn start(handle: impl Fn(&[&str], &[u8]) -> i32 + Send + 'static) -> WebhookRoute {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener.set_nonblocking(true).expect("non-blocking accept");
        let url = format!(
            "http://{}/bitpay/ipn",
            listener.local_addr().expect("bound")
        );
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let worker = thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((socket, _)) => answer(socket, &handle),
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        WebhookRoute {
            url,
            stop,
            worker: Some(worker),
        }
    }
}

fn answer(socket: TcpStream, handle: &dyn Fn(&[&str], &[u8]) -> i32) {
    if socket.set_nonblocking(false).is_err() {
        return;
    }
    let mut reader = BufReader::new(socket);
    let (mut length, mut flag) = (0usize, None);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        let (name, value) = line.split_once(':').unwrap_or((&line, ""));
        let value = value.trim().to_string();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse().unwrap_or(0),
            "btcpay-sig" => flag = Some(("--btcpay-sig", value)),
            "x-signature" => flag = Some(("--signature", value)),
            _ => {}
        }
    }
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let mut args = vec!["handle-ipn"];
    if let Some((name, value)) = &flag {
        args.extend([*name, value.as_str()]);
    }
    let status = match handle(&args, &body) {
        0 => 200,
        65 => 400,
        75 => 503,
        _ => 500,
    };
    let _ = reader.into_inner().write_all(
        format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
    );
}

impl Drop for WebhookRoute {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_code_becomes_the_status_and_the_header_a_flag() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let route = WebhookRoute::start(move |args, body| {
            log.lock()
                .unwrap()
                .push((args.join(" "), String::from_utf8_lossy(body).into_owned()));
            75
        });
        let status =
            crate::webhook::post(&route.url, "{\"a\":1}", &[("BTCPay-Sig", "sha256=ab")]).unwrap();
        assert_eq!(status, 503);
        assert_eq!(
            seen.lock().unwrap().as_slice(),
            [(
                "handle-ipn --btcpay-sig sha256=ab".to_string(),
                "{\"a\":1}".to_string()
            )]
        );
    }
}
