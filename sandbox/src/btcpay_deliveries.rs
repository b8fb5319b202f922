//! BTCPay's webhook deliveries, as `WebhookSender` makes them (reference §7.2–7.4): one
//! ordered queue, each event POSTed with `BTCPay-Sig`; a 5xx, 408, 429 or network error is
//! retried after 10 s, 1 min, then 6 × 10 min (each retry a new delivery with
//! `isRedelivery` and the first one's `originalDeliveryId`), and holds back every later
//! event until it succeeds or gives up. Tests shorten the schedule, ask for duplicates (a
//! proxy that sends a request twice) and wait for the queue to drain.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::btcpay::btcpay_signature;
use crate::util::{now_ms, random_string, BASE58};
use crate::webhook;

/// BTCPay's automatic redelivery schedule.
fn real_schedule() -> Vec<Duration> {
    let mut delays = vec![Duration::from_secs(10), Duration::from_secs(60)];
    delays.extend([Duration::from_secs(600); 6]);
    delays
}

/// Where one event goes: a webhook as it was when the event happened.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) webhook_id: String,
    pub(crate) url: String,
    pub(crate) secret: String,
    pub(crate) automatic_redelivery: bool,
}

/// An event waiting in the queue (or being retried).
#[derive(Debug, Clone)]
struct Job {
    target: Target,
    /// `type`, `timestamp`, `storeId`, `invoiceId`, `metadata` and the type's extras.
    event: Map<String, Value>,
    /// The id this attempt is sent under (known when queued: redeliver answers it).
    delivery_id: String,
    /// The first delivery's id; `None` for a first delivery.
    original: Option<String>,
    /// Retries already made.
    retries: usize,
}

/// One POST the fake made, and how the merchant answered.
#[derive(Debug, Clone, Serialize)]
pub struct BtcpayDelivery {
    pub id: String,
    pub webhook_id: String,
    pub original_delivery_id: String,
    pub is_redelivery: bool,
    #[serde(rename = "type")]
    pub kind: String,
    pub invoice_id: String,
    pub body: String,
    pub signature: String,
    /// HTTP status of the answer; `None` when there was none.
    pub http_code: Option<u16>,
    pub error_message: Option<String>,
    /// Unix seconds.
    pub delivery_time: i64,
}

impl BtcpayDelivery {
    /// BTCPay's words: `HttpSuccess`, `HttpError` or `Failed` (no answer).
    pub fn status(&self) -> &'static str {
        match self.http_code {
            Some(200..=299) => "HttpSuccess",
            Some(_) => "HttpError",
            None => "Failed",
        }
    }

    /// `GET …/webhooks/{id}/deliveries` shows each delivery like this.
    pub(crate) fn listed(&self, timestamp: i64) -> Value {
        json!({
            "id": self.id,
            "timestamp": timestamp,
            "deliveryTime": self.delivery_time,
            "httpCode": self.http_code,
            "errorMessage": self.error_message,
            "status": self.status(),
        })
    }

    /// Retried by BTCPay 2.3.4 and later: 5xx, 408, 429, and no answer at all.
    fn retried(&self) -> bool {
        matches!(self.http_code, None | Some(408 | 429 | 500..=599))
    }
}

struct Queue {
    jobs: VecDeque<Job>,
    sent: Vec<(BtcpayDelivery, Job)>,
    schedule: Vec<Duration>,
    duplicate_next: usize,
    /// A job is being sent or waits for its retry.
    busy: bool,
    stopping: bool,
}

/// The queue and its worker thread.
pub(crate) struct Deliveries {
    queue: Mutex<Queue>,
    wake: Condvar,
}

impl Deliveries {
    pub(crate) fn start() -> Arc<Deliveries> {
        let deliveries = Arc::new(Deliveries {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                sent: Vec::new(),
                schedule: real_schedule(),
                duplicate_next: 0,
                busy: false,
                stopping: false,
            }),
            wake: Condvar::new(),
        });
        let worker = deliveries.clone();
        thread::Builder::new()
            .name("btcpay-webhooks".into())
            .spawn(move || worker.work())
            .expect("a thread for the webhook queue");
        deliveries
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues one event for one webhook.
    pub(crate) fn enqueue(&self, target: Target, event: Map<String, Value>) {
        self.push(Job {
            target,
            event,
            delivery_id: random_string(BASE58, 22),
            original: None,
            retries: 0,
        });
    }

    fn push(&self, job: Job) {
        self.lock().jobs.push_back(job);
        self.wake.notify_all();
    }

    /// `POST …/deliveries/{id}/redeliver`: the same event again, with its own retry series;
    /// the new delivery's id, or `None` for an unknown delivery.
    pub(crate) fn redeliver(&self, webhook_id: &str, delivery_id: &str) -> Option<String> {
        let job = {
            let queue = self.lock();
            let (delivery, job) = queue
                .sent
                .iter()
                .find(|(d, _)| d.id == delivery_id && d.webhook_id == webhook_id)?;
            Job {
                delivery_id: random_string(BASE58, 22),
                original: Some(delivery.original_delivery_id.clone()),
                retries: 0,
                ..job.clone()
            }
        };
        let id = job.delivery_id.clone();
        self.push(job);
        Some(id)
    }

    /// A webhook's deliveries, newest first, as `GET …/deliveries?count=N` lists them.
    pub(crate) fn listed(&self, webhook_id: &str, count: usize) -> Vec<Value> {
        self.lock()
            .sent
            .iter()
            .rev()
            .filter(|(d, _)| d.webhook_id == webhook_id)
            .take(count)
            .map(|(d, job)| d.listed(job.event["timestamp"].as_i64().unwrap_or_default()))
            .collect()
    }

    /// The body a delivery sent (`GET …/deliveries/{id}/request`).
    pub(crate) fn request_body(&self, webhook_id: &str, delivery_id: &str) -> Option<String> {
        self.lock()
            .sent
            .iter()
            .find(|(d, _)| d.id == delivery_id && d.webhook_id == webhook_id)
            .map(|(d, _)| d.body.clone())
    }

    pub(crate) fn all(&self) -> Vec<BtcpayDelivery> {
        self.lock().sent.iter().map(|(d, _)| d.clone()).collect()
    }

    pub(crate) fn set_schedule(&self, delays: Vec<Duration>) {
        self.lock().schedule = delays;
    }

    pub(crate) fn duplicate_next(&self, n: usize) {
        self.lock().duplicate_next = n;
    }

    /// Blocks until nothing is queued, sent or waiting for a retry.
    pub(crate) fn wait_idle(&self, timeout: Duration) -> bool {
        self.wait_while(Instant::now() + timeout, |q| q.busy || !q.jobs.is_empty())
    }

    /// Waits while `waiting` holds, until `deadline`; false when the deadline came first.
    fn wait_while(&self, deadline: Instant, waiting: impl Fn(&Queue) -> bool) -> bool {
        let mut queue = self.lock();
        while waiting(&queue) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            queue = self
                .wake
                .wait_timeout(queue, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    pub(crate) fn stop(&self) {
        self.lock().stopping = true;
        self.wake.notify_all();
    }

    fn work(&self) {
        loop {
            let mut job = {
                let mut queue = self.lock();
                loop {
                    if queue.stopping {
                        return;
                    }
                    if let Some(job) = queue.jobs.pop_front() {
                        queue.busy = true;
                        break job;
                    }
                    queue = self.wake.wait(queue).unwrap_or_else(|e| e.into_inner());
                }
            };
            // The queue is held back while one event is retried, as in BTCPay.
            loop {
                let retried = self.send(&job);
                let delay = {
                    let queue = self.lock();
                    queue.schedule.get(job.retries).copied()
                };
                let (true, true, Some(delay)) = (retried, job.target.automatic_redelivery, delay)
                else {
                    break;
                };
                if !self.sleep(delay) {
                    return;
                }
                job.original.get_or_insert_with(|| job.delivery_id.clone());
                job.delivery_id = random_string(BASE58, 22);
                job.retries += 1;
            }
            self.lock().busy = false;
            self.wake.notify_all();
        }
    }

    /// False when the sandbox stops meanwhile.
    fn sleep(&self, delay: Duration) -> bool {
        self.wait_while(Instant::now() + delay, |q| !q.stopping);
        !self.lock().stopping
    }

    /// POSTs one attempt (twice when a duplicate is asked for); whether BTCPay retries it.
    fn send(&self, job: &Job) -> bool {
        let original = job
            .original
            .clone()
            .unwrap_or_else(|| job.delivery_id.clone());
        let mut envelope = Map::new();
        envelope.insert("deliveryId".into(), json!(job.delivery_id));
        envelope.insert("webhookId".into(), json!(job.target.webhook_id));
        envelope.insert("originalDeliveryId".into(), json!(original));
        envelope.insert("isRedelivery".into(), json!(job.original.is_some()));
        envelope.extend(job.event.clone());
        let body = serde_json::to_string_pretty(&Value::Object(envelope)).expect("JSON");
        let signature = btcpay_signature(&job.target.secret, body.as_bytes());
        let twice = {
            let mut queue = self.lock();
            let twice = queue.duplicate_next > 0;
            queue.duplicate_next = queue.duplicate_next.saturating_sub(1);
            twice
        };
        // BTCPay sees the first answer; a duplicate is the proxy's own.
        let mut retried = None;
        for _ in 0..if twice { 2 } else { 1 } {
            let answer = webhook::post(
                &job.target.url,
                &body,
                &[
                    ("User-Agent", "BTCPayServer/2.4.1"),
                    ("BTCPay-Sig", &signature),
                ],
            );
            let delivery = BtcpayDelivery {
                id: job.delivery_id.clone(),
                webhook_id: job.target.webhook_id.clone(),
                original_delivery_id: original.clone(),
                is_redelivery: job.original.is_some(),
                kind: job.event["type"].as_str().unwrap_or_default().to_string(),
                // Payout events name no invoice.
                invoice_id: job
                    .event
                    .get("invoiceId")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                body: body.clone(),
                signature: signature.clone(),
                http_code: answer.as_ref().ok().copied(),
                error_message: answer.err(),
                delivery_time: now_ms() / 1000,
            };
            retried.get_or_insert(delivery.retried());
            self.lock().sent.push((delivery, job.clone()));
        }
        retried.unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A merchant answering the statuses given, in turn; returns what it received.
    fn merchant(answers: Vec<u16>) -> (String, thread::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/ipn", listener.local_addr().unwrap());
        let handle = thread::spawn(move || {
            let mut seen = Vec::new();
            for status in answers {
                let (mut socket, _) = listener.accept().unwrap();
                let mut request = Vec::new();
                let mut chunk = [0u8; 4096];
                while !String::from_utf8_lossy(&request).ends_with('}') {
                    let n = socket.read(&mut chunk).unwrap();
                    request.extend_from_slice(&chunk[..n]);
                }
                socket
                    .write_all(
                        format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n").as_bytes(),
                    )
                    .unwrap();
                seen.push(String::from_utf8(request).unwrap());
            }
            seen
        });
        (url, handle)
    }

    fn event(kind: &str) -> Map<String, Value> {
        json!({"type": kind, "timestamp": 1700000000, "storeId": "S", "invoiceId": "I", "metadata": {}})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn a_failed_delivery_is_retried_as_a_new_delivery_and_holds_back_the_next() {
        let (url, merchant) = merchant(vec![503, 200, 200]);
        let deliveries = Deliveries::start();
        deliveries.set_schedule(vec![Duration::from_millis(50)]);
        let target = Target {
            webhook_id: "W".into(),
            url,
            secret: "s3cret".into(),
            automatic_redelivery: true,
        };
        deliveries.enqueue(target.clone(), event("InvoiceProcessing"));
        deliveries.enqueue(target, event("InvoiceSettled"));
        assert!(deliveries.wait_idle(Duration::from_secs(10)));
        let seen = merchant.join().unwrap();
        let sent = deliveries.all();
        assert_eq!(
            sent.iter()
                .map(|d| (d.kind.as_str(), d.status()))
                .collect::<Vec<_>>(),
            [
                ("InvoiceProcessing", "HttpError"),
                ("InvoiceProcessing", "HttpSuccess"),
                ("InvoiceSettled", "HttpSuccess"),
            ]
        );
        assert_ne!(sent[0].id, sent[1].id);
        assert_eq!(sent[1].original_delivery_id, sent[0].id);
        assert!(sent[1].is_redelivery && !sent[0].is_redelivery);
        let expected = btcpay_signature("s3cret", sent[2].body.as_bytes());
        assert!(
            seen[2].contains(&format!("BTCPay-Sig: {expected}")),
            "{}",
            seen[2]
        );
        assert!(seen[1].contains("\"isRedelivery\": true"));
        deliveries.stop();
    }

    #[test]
    fn a_4xx_is_not_retried_and_a_redelivery_is_its_own() {
        let (url, merchant) = merchant(vec![400, 200, 200]);
        let deliveries = Deliveries::start();
        deliveries.set_schedule(vec![Duration::from_millis(10)]);
        let target = Target {
            webhook_id: "W".into(),
            url,
            secret: "s".into(),
            automatic_redelivery: true,
        };
        deliveries.enqueue(target, event("InvoiceSettled"));
        assert!(deliveries.wait_idle(Duration::from_secs(10)));
        let first = deliveries.all()[0].clone();
        assert_eq!(first.http_code, Some(400));
        deliveries.duplicate_next(1);
        let again = deliveries.redeliver("W", &first.id).unwrap();
        assert!(deliveries.wait_idle(Duration::from_secs(10)));
        merchant.join().unwrap();
        let sent = deliveries.all();
        assert_eq!(sent.len(), 3, "the redelivery, sent twice");
        assert!(sent[1..]
            .iter()
            .all(|d| d.id == again && d.original_delivery_id == first.id));
        assert_eq!(deliveries.listed("W", 2).len(), 2);
        assert_eq!(deliveries.redeliver("W", "unknown"), None);
        deliveries.stop();
    }
}
