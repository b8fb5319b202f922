//! Benchmarks of the real binary against the loopback sandboxes. Prints tables; asserts
//! nothing about time (figures go to BENCHMARKS.md). Run with `./bench.sh` (release build);
//! `./bench.sh --quick` runs small sizes.
//!
//! Per-process figures: wall time measured here around each process, peak RSS from
//! `wait4`, and the process's own time waiting on HTTP (it logs it at `-vv`), so
//! "overhead" = wall − waiting on HTTP.
// A benchmark program prints its tables (the product writes stdout only through output.rs).
#![allow(clippy::print_stdout)]

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use splynx_bitpay::bitpay::{BitPayClient, BitPayServer, Identity};
use splynx_bitpay::btcpay::{BtcpayClient, BtcpayServer};
use splynx_bitpay::config::{Config, ServerKind};
use splynx_bitpay::server::{CreateDetails, Credential, PaymentServer};
use splynx_bitpay::store::{DocKind, NewInvoice, Store};
use splynx_bitpay_sandbox::{BitPaySandbox, BtcpaySandbox, SplynxSandbox};

const KEY: &str = "bench-key";
const SECRET: &str = "bench-secret";

struct Sample {
    wall: Duration,
    /// User plus system CPU time of the process.
    cpu: Duration,
    /// Wall time as the process itself measured it (main start to exit code).
    inner: Duration,
    http: Duration,
    max_rss_kib: i64,
    code: i32,
}

struct Bench {
    binary: PathBuf,
    dir: tempfile::TempDir,
    bitpay: BitPaySandbox,
    splynx: SplynxSandbox,
}

impl Bench {
    fn new() -> Bench {
        Bench::with_statements("month")
    }

    /// `[statements] group`: "month" (the default: one statement record per payment) or
    /// "off".
    fn with_statements(group: &str) -> Bench {
        let here = std::env::current_exe().unwrap();
        let binary = here
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("splynx-bitpay");
        assert!(
            binary.exists(),
            "{} missing: run ./bench.sh",
            binary.display()
        );
        let bench = Bench {
            binary,
            dir: tempfile::tempdir().unwrap(),
            bitpay: BitPaySandbox::start(),
            splynx: SplynxSandbox::start(KEY, SECRET),
        };
        bench.splynx.add_customer(json!({"id": 42, "name": "Ada Lovelace", "email": "ada@example.com", "status": "active"}));
        bench
            .splynx
            .add_payment_method(json!({"id": 7, "name": "BitPay", "is_active": "1"}));
        std::fs::write(
            bench.config(),
            format!(
                "[splynx]\nurl = \"https://splynx.isp.test\"\napi_url = \"{}/api/2.0/\"\napi_key = \"{KEY}\"\napi_secret = \"{SECRET}\"\npayment_method_id = 7\n\n[bitpay]\nenvironment = \"test\"\napi_url = \"{}\"\ncurrency = \"USD\"\n\n[refill]\nmin = \"1.00\"\nmax = \"100000.00\"\n\n[storage]\ndata_dir = \"{}\"\n\n[statements]\ngroup = \"{group}\"\n",
                bench.splynx.url(),
                bench.bitpay.url(),
                bench.dir.path().join("data").display()
            ),
        )
        .unwrap();
        let code = bench.bitpay.create_pairing_code();
        assert_eq!(bench.run(&["pair", &code], b"").code, 0);
        bench
    }

    /// With statements on, one statement record per payment; with them off, none.
    fn assert_statement_records(&self, payments: usize) {
        let on = std::fs::read_to_string(self.config())
            .unwrap()
            .contains("group = \"month\"");
        assert_eq!(
            self.splynx.statement_records().len(),
            if on { payments } else { 0 },
            "one statement record per payment"
        );
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    /// Runs one process; measures wall time, peak RSS and its own HTTP wait.
    fn run(&self, args: &[&str], stdin: &[u8]) -> Sample {
        self.run_capture(args, stdin).0
    }

    fn run_capture(&self, args: &[&str], stdin: &[u8]) -> (Sample, String) {
        let config = self.config();
        let mut all = vec!["--config", config.to_str().unwrap(), "-vv"];
        all.extend_from_slice(args);
        spawn(&self.binary, &all, stdin)
    }

    /// One command without `-vv` (as the shims run it): wall time, and stdout.
    fn run_plain(&self, args: &[&str], stdin: &[u8]) -> (Duration, String) {
        let config = self.config();
        let mut all = vec!["--config", config.to_str().unwrap()];
        all.extend_from_slice(args);
        let (sample, stdout) = spawn(&self.binary, &all, stdin);
        assert_eq!(sample.code, 0, "{args:?}");
        (sample.wall, stdout)
    }
}

/// Runs `program` as its own process; measures wall time, CPU, peak RSS and (from `-vv`
/// output) its own HTTP wait.
fn spawn(program: &std::path::Path, args: &[&str], stdin: &[u8]) -> (Sample, String) {
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        let _ = input.write_all(stdin);
    }
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let mut err = String::new();
    let _ = stderr.read_to_string(&mut err);
    // Reaped by wait4 (not Child::wait), for the child's own CPU time and peak RSS.
    let reaped = wait4::Wait4::wait4(child).unwrap();
    let wall = started.elapsed();
    let code = reaped.status.code().unwrap_or(-1);
    let stdout = out.join().unwrap();
    if code != 0 {
        eprintln!("{args:?} exited {code}: {err}");
    }
    for line in err.lines().filter(|l| l.contains("audit: ")) {
        eprintln!("{line}");
    }
    let (inner, http) = parse_timing(&err).unwrap_or_default();
    // wait4's maxrss includes the pages shared with this (large) parent between fork
    // and exec, so the child's own VmHWM is the figure that counts.
    let own_rss = parse_peak_rss(&err);
    (
        Sample {
            wall,
            cpu: reaped.rusage.utime + reaped.rusage.stime,
            inner,
            http,
            max_rss_kib: own_rss.unwrap_or((reaped.rusage.maxrss / 1024) as i64),
            code,
        },
        stdout,
    )
}

/// `timing: wall 12.3ms, waiting on HTTP 4.5ms, peak RSS 9000 kB` (Debug-formatted durations).
fn parse_timing(stderr: &str) -> Option<(Duration, Duration)> {
    let line = stderr.lines().rev().find(|l| l.contains("timing: wall"))?;
    let rest = line.split("timing: wall ").nth(1)?;
    let (inner, rest) = rest.split_once(", waiting on HTTP ")?;
    let http = rest.split(", peak RSS").next()?;
    Some((
        parse_debug_duration(inner.trim())?,
        parse_debug_duration(http.trim())?,
    ))
}

fn parse_peak_rss(stderr: &str) -> Option<i64> {
    let line = stderr.lines().rev().find(|l| l.contains("timing: wall"))?;
    line.split("peak RSS ")
        .nth(1)?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn parse_debug_duration(text: &str) -> Option<Duration> {
    let (number, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic() || c == 'µ')?);
    let value: f64 = number.parse().ok()?;
    let seconds = match unit {
        "s" => value,
        "ms" => value / 1e3,
        "µs" | "us" => value / 1e6,
        "ns" => value / 1e9,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn mib(kib: i64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn summarize(name: &str, samples: &[Sample]) {
    let mut walls: Vec<Duration> = samples.iter().map(|s| s.wall).collect();
    let mut overheads: Vec<Duration> = samples
        .iter()
        .map(|s| s.wall.saturating_sub(s.http))
        .collect();
    let mut inner: Vec<Duration> = samples
        .iter()
        .map(|s| s.inner.saturating_sub(s.http))
        .collect();
    walls.sort();
    overheads.sort();
    inner.sort();
    let rss = samples.iter().map(|s| s.max_rss_kib).max().unwrap_or(0);
    let failed = samples.iter().filter(|s| s.code != 0).count();
    println!(
        "| {name} | {} | {} | {} | {} | {} | {} | {} | {failed} |",
        samples.len(),
        ms(percentile(&walls, 50.0)),
        ms(percentile(&walls, 99.0)),
        ms(percentile(&overheads, 50.0)),
        ms(percentile(&overheads, 99.0)),
        ms(percentile(&inner, 50.0)),
        mib(rss)
    );
}

/// Creates `n` refill invoices at the configured payment server and in the store directly
/// through the library's seam (what create-invoice does), so large reconcile runs start
/// quickly.
fn seed_open_invoices(bench: &Bench, n: usize, first_cents: usize) -> Vec<String> {
    let config = Config::load(&bench.config()).unwrap();
    let tokens: Vec<_> = {
        let store = Store::open(&config.data_dir).unwrap();
        ["test", "btcpay"]
            .iter()
            .flat_map(|e| store.tokens(e).unwrap())
            .collect()
    };
    let stored = |environment: &str| {
        tokens
            .iter()
            .filter(|t| t.environment == environment)
            .cloned()
            .collect::<Vec<_>>()
    };
    // Each worker opens its own server, as each process does.
    let open = || -> Box<dyn PaymentServer> {
        match config.server {
            ServerKind::BitPay => {
                let identity = Identity::load_or_create(&config.key_path()).unwrap();
                let sin = identity.sin();
                let token = stored("test").into_iter().find(|t| t.approved).unwrap();
                Box::new(BitPayServer::new(
                    BitPayClient::new(&config.bitpay, Some(identity)),
                    Vec::new(),
                    Some(Credential {
                        label: token.facade,
                        secret: token.token,
                    }),
                    sin,
                    "https://splynx.isp.test/bitpay/ipn".into(),
                ))
            }
            ServerKind::Btcpay => {
                let key = stored("btcpay")
                    .into_iter()
                    .find(|t| t.facade == "api-key")
                    .unwrap()
                    .token;
                Box::new(BtcpayServer::new(
                    BtcpayClient::configured(&config, key),
                    None,
                ))
            }
        }
    };
    let ids = Mutex::new(Vec::with_capacity(n));
    let next = Mutex::new(0..n);
    let threads = 8;
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let server = open();
                let credential = server.credential().unwrap();
                let store = Store::open(&config.data_dir).unwrap();
                loop {
                    let Some(i) = next.lock().unwrap().next() else {
                        break;
                    };
                    let cents = first_cents + i;
                    let price = rust_decimal::Decimal::new(100 + cents as i64, 2);
                    let guid = uuid::Uuid::new_v4().to_string();
                    let order_id = format!("splynx-refill-c42-{}", &guid.replace('-', "")[..8]);
                    let new = NewInvoice {
                        guid: guid.clone(),
                        environment: config.invoice_environment().into(),
                        facade: credential.label.clone(),
                        token: credential.secret.clone(),
                        doc_kind: DocKind::Refill,
                        doc_id: None,
                        doc_number: None,
                        customer_id: 42,
                        price,
                        currency: "USD".into(),
                        order_id: order_id.clone(),
                        partner_id: None,
                        fee: None,
                        origin: None,
                        terms: None,
                    };
                    store.insert_invoice(&new, 0).unwrap();
                    let invoice = server
                        .create(
                            &new,
                            &CreateDetails {
                                description: "Balance top-up",
                                redirect_url: "https://splynx.isp.test/bitpay/result",
                                metadata: "{}",
                                payer: None,
                                speed: "medium",
                            },
                        )
                        .unwrap();
                    store
                        .mark_created(&guid, &invoice, "created (benchmark seed)", 0)
                        .unwrap();
                    ids.lock().unwrap().push(invoice.id);
                }
            });
        }
    });
    ids.into_inner().unwrap()
}

/// The same installation switched to BTCPay Server (`[server] kind = "btcpay"`) and
/// connected with a key of a fresh sandbox store.
fn with_btcpay(bench: &Bench) -> BtcpaySandbox {
    let btcpay = BtcpaySandbox::start();
    let store = btcpay.create_store();
    let permissions: Vec<String> = splynx_bitpay::btcpay::model::PERMISSIONS
        .iter()
        .map(|p| format!("{p}:{store}"))
        .collect();
    let key = btcpay.create_api_key(&permissions);
    let config = std::fs::read_to_string(bench.config()).unwrap();
    std::fs::write(
        bench.config(),
        format!(
            "[server]\nkind = \"btcpay\"\n\n[btcpay]\nurl = \"{}\"\nstore_id = \"{store}\"\n\n{config}",
            btcpay.url()
        ),
    )
    .unwrap();
    bench.run_plain(&["pair", "--btcpay"], key.as_bytes());
    btcpay
}

/// BTCPay per process: create-invoice, and handle-ipn of a signed `InvoiceSettled`.
fn btcpay_walls(rounds: usize) -> (Vec<Duration>, Vec<Duration>) {
    let bench = Bench::new();
    let btcpay = with_btcpay(&bench);
    let (mut creates, mut webhooks) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        let amount = format!("{}.{:02}", 300 + i / 100, i % 100);
        let (create, stdout) = bench.run_plain(&top_up(&amount), b"");
        let out: Value = serde_json::from_str(&stdout).unwrap();
        let id = out["invoice_id"].as_str().unwrap().to_string();
        btcpay.set_status(&id, "Settled", None);
        let (body, signature) = btcpay.webhook(&id, "InvoiceSettled").unwrap();
        creates.push(create);
        webhooks.push(
            bench
                .run_plain(&["handle-ipn", "--btcpay-sig", &signature], body.as_bytes())
                .0,
        );
    }
    assert_eq!(
        bench.splynx.payment_count(),
        rounds,
        "one payment per invoice"
    );
    (creates, webhooks)
}

/// `create-invoice` of a top-up for customer 42, with `--json`.
fn top_up(amount: &str) -> [&str; 6] {
    [
        "--json",
        "create-invoice",
        "--customer",
        "42",
        "--refill",
        amount,
    ]
}

fn per_process(bench: &Bench, runs: usize) {
    println!("\n## Per process (sandboxes on loopback, no injected latency)\n");
    println!("| command | runs | wall median | wall p99 | own overhead median | own overhead p99 | in-process overhead median | peak RSS | failed |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut creates = Vec::new();
    let mut ids = Vec::new();
    for i in 0..runs {
        let amount = format!("{}.{:02}", 10 + i / 100, i % 100);
        let (sample, stdout) = bench.run_capture(&top_up(&amount), b"");
        let out: Value = serde_json::from_str(&stdout).unwrap_or_default();
        if let Some(id) = out["bitpay_invoice_id"].as_str() {
            ids.push(id.to_string());
        }
        creates.push(sample);
    }
    summarize("create-invoice (new BitPay invoice)", &creates);
    let mut settles = Vec::new();
    for id in &ids {
        bench.bitpay.set_status(id, "confirmed", None);
        let body = bench.bitpay.webhook_body(id, true);
        settles.push(bench.run(&["handle-ipn"], body.as_bytes()));
    }
    summarize("handle-ipn (fetch, look up, create payment)", &settles);
    assert_eq!(
        bench.splynx.payment_count(),
        ids.len(),
        "every settle credited once"
    );
    bench.assert_statement_records(ids.len());
}

/// Each command's wall median as a ratio to the floor (`examples/floor.rs`: the I/O of
/// `handle-ipn` and nothing else). Floor and commands take turns round by round, without
/// `-vv`, as the shims run them.
fn floor_ratio(bench: &Bench, rounds: usize) {
    println!("\n## Against the floor (the same I/O as handle-ipn, nothing else)\n");
    let floor = std::env::current_exe().unwrap().with_file_name("floor");
    assert!(
        floor.exists(),
        "{} missing: run ./bench.sh",
        floor.display()
    );
    let data_dir = bench.dir.path().join("data");
    // The floor uses what the product stored: the BitPay token and Splynx's access token
    // (create-invoice below fetches one first).
    bench.run_plain(
        &["create-invoice", "--customer", "42", "--refill", "1.00"],
        b"",
    );
    let db = rusqlite::Connection::open(data_dir.join("state.db")).unwrap();
    let token: String = db
        .query_row("SELECT token FROM tokens WHERE approved = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    let access_token: String = db
        .query_row("SELECT token FROM splynx_token", [], |r| r.get(0))
        .unwrap();
    drop(db);
    let names = ["floor", "handle-ipn", "create-invoice", "status", "show"];
    let mut walls: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
    let splynx_api = format!("{}/api/2.0/", bench.splynx.url());
    for i in 0..rounds {
        let amount = format!("{}.{:02}", 300 + i / 100, i % 100);
        let (create, stdout) = bench.run_plain(&top_up(&amount), b"");
        let out: Value = serde_json::from_str(&stdout).unwrap();
        let id = out["bitpay_invoice_id"].as_str().unwrap().to_string();
        bench.bitpay.set_status(&id, "confirmed", None);
        let receipt = format!("floor-{i}");
        let (sample, _) = spawn(
            &floor,
            &[
                data_dir.to_str().unwrap(),
                &bench.bitpay.url(),
                &id,
                &token,
                &splynx_api,
                &access_token,
                &receipt,
            ],
            b"",
        );
        assert_eq!(sample.code, 0, "floor");
        walls[0].push(sample.wall);
        let body = bench.bitpay.webhook_body(&id, true);
        walls[1].push(bench.run_plain(&["handle-ipn"], body.as_bytes()).0);
        walls[2].push(create);
        walls[3].push(bench.run_plain(&["--json", "status"], b"").0);
        walls[4].push(bench.run_plain(&["--json", "show", &id], b"").0);
    }
    let (btcpay_creates, btcpay_webhooks) = btcpay_walls(rounds);
    walls.push(btcpay_webhooks);
    walls.push(btcpay_creates);
    let names = [
        &names[..],
        &[
            "handle-ipn (BTCPay Server)",
            "create-invoice (BTCPay Server)",
        ],
    ]
    .concat();
    let medians: Vec<Duration> = walls.into_iter().map(median).collect();
    println!("| process | runs | wall median | ratio to the floor |");
    println!("|---|---|---|---|");
    for (name, wall) in names.iter().zip(&medians) {
        println!(
            "| {name} | {rounds} | {} | {:.2}× |",
            ms(*wall),
            wall.as_secs_f64() / medians[0].as_secs_f64()
        );
    }
}

fn reconcile_scaling(sizes: &[usize], latency: Duration, server: ServerKind) {
    println!(
        "\n## reconcile over open {} invoices ({} ms latency per sandbox request, default settings)\n",
        server.as_str(),
        latency.as_millis()
    );
    println!(
        "| open invoices | of which paid without webhook | wall | floor (n × latency / workers) | wall / floor | requests sent | floor (requests × latency / workers) | wall / that floor | CPU (reconcile process) | peak RSS | credited | exit |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    // Default `[reconcile] concurrency`: each worker waits one latency per invoice at least.
    let workers = 8;
    for &n in sizes {
        let bench = Bench::new();
        let btcpay = (server == ServerKind::Btcpay).then(|| with_btcpay(&bench));
        let ids = seed_open_invoices(&bench, n, 0);
        let paid = n / 20;
        for id in ids.iter().take(paid) {
            match &btcpay {
                Some(btcpay) => btcpay.set_status(id, "Settled", None),
                None => bench.bitpay.set_status(id, "confirmed", None),
            }
        }
        bench.splynx.latency(latency);
        bench.splynx.clear_requests();
        match &btcpay {
            Some(btcpay) => {
                btcpay.latency(latency);
                btcpay.clear_requests();
            }
            None => {
                bench.bitpay.latency(latency);
                bench.bitpay.clear_requests();
            }
        }
        let (sample, stdout) = bench.run_capture(&["--json", "reconcile"], b"");
        let summary: Value = serde_json::from_str(&stdout).unwrap_or_default();
        let wall = sample.wall.as_secs_f64();
        let floor = latency.as_secs_f64() * n as f64 / workers as f64;
        // Every request waits one latency: a paid invoice's Splynx look-ups and writes too.
        let server_requests = match &btcpay {
            Some(btcpay) => btcpay.requests().len(),
            None => bench.bitpay.requests().len(),
        };
        let requests = server_requests + bench.splynx.requests().len();
        let request_floor = latency.as_secs_f64() * requests as f64 / workers as f64;
        println!(
            "| {n} | {paid} | {wall:.1} s | {floor:.1} s | {:.2}× | {requests} | {request_floor:.1} s | {:.2}× | {:.1} s | {} | {} | {} |",
            wall / floor,
            wall / request_floor,
            sample.cpu.as_secs_f64(),
            mib(sample.max_rss_kib),
            summary["credited"],
            sample.code
        );
        assert_eq!(bench.splynx.payment_count(), paid);
    }
}

/// `n` invoices re-checked, `watched` of them credited on "confirmed" by an earlier run
/// (so watched until BitPay says complete) and the rest open: the cost of the watch.
fn reconcile_with_watched(n: usize, watched: usize, latency: Duration) {
    println!(
        "\n## reconcile with watched credits ({} ms latency per sandbox request, default settings)\n",
        latency.as_millis()
    );
    println!("| invoices checked | of which watched credits | wall | CPU (reconcile process) | peak RSS | still watched | exit |");
    println!("|---|---|---|---|---|---|---|");
    let bench = Bench::new();
    let ids = seed_open_invoices(&bench, n + watched, 0);
    for id in ids.iter().take(watched) {
        bench.bitpay.set_status(id, "confirmed", None);
    }
    // Credits them (and checks the open ones once); they are watched from now on.
    let first = bench.run(&["reconcile"], b"");
    assert_eq!(first.code, 0, "the crediting run");
    assert_eq!(bench.splynx.payment_count(), watched);
    // Leave exactly `n` to check: `watched` credits and `n - watched` open invoices.
    let config = Config::load(&bench.config()).unwrap();
    let store = Store::open(&config.data_dir).unwrap();
    for id in ids.iter().skip(n) {
        let record = store.invoice_by_bitpay_id(id).unwrap().unwrap();
        store
            .set_settlement(
                record.id,
                splynx_bitpay::store::Settlement::Expired,
                None,
                0,
            )
            .unwrap();
    }
    bench.bitpay.latency(latency);
    bench.splynx.latency(latency);
    let (sample, stdout) = bench.run_capture(&["--json", "reconcile"], b"");
    let summary: Value = serde_json::from_str(&stdout).unwrap_or_default();
    println!(
        "| {} | {watched} | {:.1} s | {:.1} s | {} | {} | {} |",
        summary["checked"],
        sample.wall.as_secs_f64(),
        sample.cpu.as_secs_f64(),
        mib(sample.max_rss_kib),
        summary["watched"],
        sample.code
    );
    assert_eq!(summary["checked"], n);
    assert_eq!(bench.splynx.payment_count(), watched);
}

/// A year of a large ISP's history: settled invoices and journal rows written straight into
/// the store (as the binary would have left them), spread over the last 365 days.
fn fill_history(bench: &Bench, invoices: usize, journal_per_invoice: usize) {
    let config = Config::load(&bench.config()).unwrap();
    drop(Store::open(&config.data_dir).unwrap()); // migrated
    let mut db = rusqlite::Connection::open(config.database_path()).unwrap();
    let now = splynx_bitpay::clock::now_ms();
    let year = 365 * 24 * 3600 * 1000_i64;
    let tx = db.transaction().unwrap();
    {
        let mut invoice = tx
            .prepare(
                "INSERT INTO invoices (guid, bitpay_id, environment, facade, token, doc_kind, doc_id,
                     doc_number, customer_id, price, currency, order_id, url, bitpay_status,
                     settlement, note, splynx_payment_id, created_at, updated_at, credited_at,
                     status)
                 VALUES (?1, ?2, 'test', 'pos', 'HistoricToken', 'invoice', ?3, ?4, ?5, '51.61',
                     'USD', ?6, 'https://bitpay.example/i', ?7, ?8, ?9, ?10, ?11, ?11, ?12,
                     CASE ?7 WHEN 'complete' THEN 'final' ELSE 'expired' END)",
            )
            .unwrap();
        let mut journal = tx
            .prepare(
                "INSERT INTO journal (at, bitpay_id, kind, summary, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .unwrap();
        let kinds = ["create", "webhook", "fetch", "decision", "splynx"];
        for i in 0..invoices {
            let at = now - year + (i as i64 * year / invoices as i64);
            let id = format!("Hist{i:018}");
            let credited = i % 10 != 0;
            invoice
                .execute(rusqlite::params![
                    format!("guid-{i}"),
                    id,
                    100_000 + i as i64,
                    format!("2025{i:08}"),
                    1000 + (i % 5000) as i64,
                    format!("splynx-invoice-{}-{:08x}", 100_000 + i, i),
                    if credited { "complete" } else { "expired" },
                    if credited { "credited" } else { "expired" },
                    if credited {
                        "credited 51.61 USD as Splynx payment"
                    } else {
                        "expired unpaid"
                    },
                    credited.then_some(i as i64 + 1),
                    at,
                    credited.then_some(at + 60_000),
                ])
                .unwrap();
            for j in 0..journal_per_invoice {
                let kind = kinds[j % kinds.len()];
                journal
                    .execute(rusqlite::params![
                        at + j as i64 * 30_000,
                        id,
                        kind,
                        format!("{kind}: historic entry {j}"),
                        (kind == "webhook").then_some(r#"{"event":{"code":1005,"name":"invoice_confirmed"},"data":{"id":"x","status":"confirmed"}}"#),
                    ])
                    .unwrap();
            }
        }
    }
    // Pruned today already: the reconcile measured below is an ordinary run, and the
    // prune is measured on its own.
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('prune.last_run', ?1)",
        [now.to_string()],
    )
    .unwrap();
    tx.commit().unwrap();
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    percentile(&samples, 50.0)
}

/// The per-command medians on each store: create-invoice, handle-ipn, status, show, and the
/// admin page's data (status, then show of the oldest unsettled invoice). The stores take
/// turns, command by command, so a busy moment of the machine hits both alike.
fn command_medians(benches: [&Bench; 2], runs: usize) -> Vec<(&'static str, [Duration; 2])> {
    let mut walls: Vec<(&'static str, [Vec<Duration>; 2])> = [
        "create-invoice",
        "handle-ipn",
        "status",
        "show",
        "admin page data (status + show)",
    ]
    .iter()
    .map(|name| (*name, [Vec::new(), Vec::new()]))
    .collect();
    for i in 0..runs {
        for (side, bench) in benches.iter().enumerate() {
            let ok = |sample: &Sample, what: &str| {
                assert_eq!(sample.code, 0, "{what}");
                sample.wall
            };
            let amount = format!("{}.{:02}", 200 + i / 100, i % 100);
            let (create, stdout) = bench.run_capture(&top_up(&amount), b"");
            walls[0].1[side].push(ok(&create, "create-invoice"));
            let out: Value = serde_json::from_str(&stdout).unwrap_or_default();
            let id = out["bitpay_invoice_id"].as_str().unwrap().to_string();
            bench.bitpay.set_status(&id, "confirmed", None);
            let body = bench.bitpay.webhook_body(&id, true);
            walls[1].1[side].push(ok(
                &bench.run(&["handle-ipn"], body.as_bytes()),
                "handle-ipn",
            ));
            let (status, stdout) = bench.run_capture(&["--json", "status"], b"");
            walls[2].1[side].push(ok(&status, "status"));
            walls[3].1[side].push(ok(&bench.run(&["--json", "show", &id], b""), "show"));
            let json: Value = serde_json::from_str(&stdout).unwrap_or_default();
            let oldest = json["oldest_unsettled"]["bitpay_invoice_id"]
                .as_str()
                .unwrap_or("none")
                .to_string();
            let shown = bench.run(&["--json", "show", &oldest], b"");
            walls[4].1[side].push(status.wall + ok(&shown, "show oldest"));
        }
    }
    walls
        .into_iter()
        .map(|(name, [a, b])| (name, [median(a), median(b)]))
        .collect()
}

/// A store with a year of a large ISP's history against an empty one; reconcile with 100
/// open invoices among that history; prune; and the query plans.
fn large_store(invoices: usize, journal_per_invoice: usize, runs: usize) {
    println!(
        "\n## A year of history: {invoices} invoices, {} journal rows\n",
        invoices * journal_per_invoice
    );
    let empty = Bench::new();
    seed_open_invoices(&empty, 100, 0);

    let large = Bench::new();
    let filled = Instant::now();
    fill_history(&large, invoices, journal_per_invoice);
    let config = Config::load(&large.config()).unwrap();
    let db_size = |config: &Config| {
        ["state.db", "state.db-wal"]
            .iter()
            .filter_map(|f| std::fs::metadata(config.data_dir.join(f)).ok())
            .map(|m| m.len())
            .sum::<u64>() as f64
            / 1024.0
            / 1024.0
    };
    let seeded_size = db_size(&config);
    let fill_time = filled.elapsed();
    seed_open_invoices(&large, 100, 0);

    large.bitpay.latency(Duration::from_millis(25));
    large.splynx.latency(Duration::from_millis(25));
    let (reconcile, stdout) = large.run_capture(&["--json", "reconcile"], b"");
    let summary: Value = serde_json::from_str(&stdout).unwrap_or_default();
    assert_eq!(summary["checked"], 100, "{summary}");
    large.bitpay.latency(Duration::ZERO);
    large.splynx.latency(Duration::ZERO);
    let figures = command_medians([&empty, &large], runs);

    println!("| command | runs | empty store median | large store median | ratio |");
    println!("|---|---|---|---|---|");
    for (name, [empty, large]) in &figures {
        println!(
            "| {name} | {runs} | {} | {} | {:.2}× |",
            ms(*empty),
            ms(*large),
            large.as_secs_f64() / empty.as_secs_f64()
        );
    }
    println!(
        "\nreconcile over 100 open invoices among them (25 ms latency): {:.2} s, exit {}",
        reconcile.wall.as_secs_f64(),
        reconcile.code
    );

    let (prune, stdout) = large.run_capture(&["--json", "prune"], b"");
    let pruned: Value = serde_json::from_str(&stdout).unwrap_or_default();
    assert_eq!(prune.code, 0);
    let store = Store::open(&config.data_dir).unwrap();
    let plans = store.query_plans().unwrap();
    drop(store);
    println!(
        "\nprune (180 days): {:.1} s; {} journal entries of {} settled payments dropped, {} left; state.db {:.0} MiB before (filled in {:.0} s), {:.0} MiB after (free pages are reused; VACUUM returns them to the disk)",
        prune.wall.as_secs_f64(),
        pruned["settled_entries"],
        pruned["settled_payments"],
        pruned["journal_entries_after"],
        seeded_size,
        fill_time.as_secs_f64(),
        db_size(&config)
    );
    println!("\n### Query plans (EXPLAIN QUERY PLAN) on that store\n");
    println!("| query | plan |");
    println!("|---|---|");
    for (name, plan) in plans {
        println!("| {name} | {} |", plan.join("; "));
    }
}

fn webhook_storm(statements: &str, invoices: usize, deliveries_each: usize, parallel: usize) {
    println!("\n## Webhook storm: {invoices} invoices × {deliveries_each} deliveries, {parallel} processes at a time, statements {statements}\n");
    let bench = Bench::with_statements(statements);
    let ids = seed_open_invoices(&bench, invoices, 0);
    let mut bodies = Vec::new();
    for id in &ids {
        bench.bitpay.set_status(id, "confirmed", None);
        let body = bench.bitpay.webhook_body(id, true);
        bodies.extend(std::iter::repeat_n(body, deliveries_each));
    }
    // Interleave so duplicates of one invoice race each other.
    bodies.sort_by_key(|b| (b.len() * 7919) % 1009);
    let queue = Mutex::new(bodies.into_iter());
    let samples = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..parallel {
            scope.spawn(|| loop {
                let Some(body) = queue.lock().unwrap().next() else {
                    break;
                };
                let sample = bench.run(&["handle-ipn"], body.as_bytes());
                samples.lock().unwrap().push(sample);
            });
        }
    });
    let elapsed = started.elapsed();
    let samples = samples.into_inner().unwrap();
    let mut walls: Vec<Duration> = samples.iter().map(|s| s.wall).collect();
    walls.sort();
    let non_zero = samples.iter().filter(|s| s.code != 0).count();
    println!("| deliveries | payments in Splynx | non-zero exits | latency median | latency p99 | max | peak RSS | total |");
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {non_zero} | {} | {} | {} | {} | {:.1} s |",
        samples.len(),
        bench.splynx.payment_count(),
        ms(percentile(&walls, 50.0)),
        ms(percentile(&walls, 99.0)),
        ms(*walls.last().unwrap()),
        mib(samples.iter().map(|s| s.max_rss_kib).max().unwrap_or(0)),
        elapsed.as_secs_f64()
    );
    assert_eq!(
        bench.splynx.payment_count(),
        invoices,
        "exactly one payment per invoice"
    );
    assert_eq!(non_zero, 0, "every delivery exits 0");
    bench.assert_statement_records(invoices);
}

/// An audit of a year: `n` paid invoices at BitPay (balance top-ups of customer 42, created
/// evenly through last year, order ids signed with this installation's key, so the audit
/// recognises them without a local record, as after a restored database) and their `n`
/// Splynx payments, every sandbox request answered after `latency`.
fn audit_year(n: usize, latency: Duration) {
    use chrono::{Datelike, TimeZone};
    use splynx_bitpay::order_id::{self, OrderKey, OrderRef};
    let bench = Bench::new();
    let (_, request) = bench.run_plain(
        &["--json", "pair", "--request", "--facade", "merchant"],
        b"",
    );
    let request: Value = serde_json::from_str(&request).unwrap();
    assert!(bench
        .bitpay
        .approve_pairing(request["pairing_code"].as_str().unwrap()));
    bench.run_plain(&["status"], b"");
    let config = Config::load(&bench.config()).unwrap();
    let key = OrderKey::of(&Identity::load_or_create(&config.key_path()).unwrap());
    let year = chrono::Local::now().year() - 1;
    let midnight = |y: i32| {
        chrono::Local
            .with_ymd_and_hms(y, 1, 1, 0, 0, 0)
            .earliest()
            .unwrap()
            .timestamp_millis()
    };
    let (start, span) = (midnight(year), midnight(year + 1) - midnight(year));
    let seeding = Instant::now();
    for i in 0..n {
        let refill = OrderRef {
            kind: DocKind::Refill,
            doc_id: None,
            refill_customer: Some(42),
        };
        let order = order_id::write(refill, 42, &format!("{i:08x}"), &key);
        let price = format!("{}.{:02}", 10 + i % 90, i % 100);
        let id = bench.bitpay.create_foreign_invoice(&order, &price, "USD");
        bench.bitpay.set_status(&id, "complete", None);
        let at = start + (i as i64) * (span - 60_000) / n as i64;
        bench.bitpay.set_invoice_time(&id, at);
        let date = chrono::Local
            .timestamp_millis_opt(at)
            .unwrap()
            .format("%Y-%m-%d")
            .to_string();
        bench
            .splynx
            .add_payment_by_hand(json!({"customer_id": 42, "payment_type": 7,
            "receipt_number": id, "date": date, "amount": price}));
    }
    println!(
        "\n## audit of a year: {n} paid invoices and {n} Splynx payments, {} ms latency\n\nseeded in {:.1} s",
        latency.as_millis(),
        seeding.elapsed().as_secs_f64()
    );
    let before = (bench.bitpay.requests().len(), bench.splynx.requests().len());
    let sandboxes_before = own_cpu();
    bench.bitpay.latency(latency);
    bench.splynx.latency(latency);
    let (from, to) = (format!("{year}-01-01"), format!("{year}-12-31"));
    let (sample, stdout) =
        bench.run_capture(&["--json", "audit", "--from", &from, "--to", &to], b"");
    let sandboxes = own_cpu() - sandboxes_before;
    let audit: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        sample.code,
        0,
        "a clean year: {}",
        &stdout[..stdout.len().min(2000)]
    );
    assert_eq!(audit["totals"]["matched"], n, "every invoice matched once");
    let bitpay = bench.bitpay.requests().len() - before.0;
    let splynx = bench.splynx.requests().len() - before.1;
    // BitPay's list: 100 invoices a page, the first page alone, then 4 pages at a time;
    // Splynx's pages (1000) are read meanwhile. Every byte is made and read on the same two
    // cores, so the CPU the audit and the sandboxes spent is a floor too.
    let pages = n.div_ceil(100) + 1;
    let latency_floor = latency * (1 + (pages - 1).div_ceil(4)) as u32;
    let cpu_floor = (sample.cpu + sandboxes) / 2;
    let floor = latency_floor.max(cpu_floor);
    println!("\n| invoices | wall | BitPay requests | Splynx requests | latency floor (page rounds × latency) | CPU: audit | CPU: sandboxes | CPU floor (both / 2 cores) | wall / the larger floor | peak RSS |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {n} | {:.1} s | {bitpay} | {splynx} | {:.1} s | {:.1} s | {:.1} s | {:.1} s | {:.2}× | {} |",
        sample.wall.as_secs_f64(),
        latency_floor.as_secs_f64(),
        sample.cpu.as_secs_f64(),
        sandboxes.as_secs_f64(),
        cpu_floor.as_secs_f64(),
        sample.wall.as_secs_f64() / floor.as_secs_f64(),
        mib(sample.max_rss_kib)
    );
}

/// CPU time (user + system) this process has used: the sandboxes run in it.
fn own_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    // Fields 14 and 15 of proc(5), counted after the command name: utime and stime, in
    // clock ticks (100 a second on Linux).
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    Duration::from_millis(ticks * 10)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // `--audit [N [LATENCY_MS]]`: an audit of a year of N paid invoices (default 100,000,
    // 25 ms).
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--audit") {
        let arg = |i: usize, default: usize| {
            args.get(at + i)
                .and_then(|n| n.parse().ok())
                .unwrap_or(default)
        };
        audit_year(arg(1, 100_000), Duration::from_millis(arg(2, 25) as u64));
        return;
    }
    // `--reconcile-only [LATENCY_MS]`: just the 10,000-invoice reconciles.
    if let Some(at) = args.iter().position(|a| a == "--reconcile-only") {
        let latency = args.get(at + 1).and_then(|l| l.parse().ok()).unwrap_or(25);
        reconcile_scaling(&[10000], Duration::from_millis(latency), ServerKind::BitPay);
        reconcile_scaling(&[10000], Duration::from_millis(latency), ServerKind::Btcpay);
        reconcile_with_watched(10000, 1000, Duration::from_millis(latency));
        return;
    }
    // `--btcpay-reconcile [LATENCY_MS]`: only BTCPay's 10,000-invoice reconcile.
    if let Some(at) = args.iter().position(|a| a == "--btcpay-reconcile") {
        let latency = args.get(at + 1).and_then(|l| l.parse().ok()).unwrap_or(25);
        reconcile_scaling(&[10000], Duration::from_millis(latency), ServerKind::Btcpay);
        return;
    }
    // `--large-store`: a year of a large ISP's history (100,000 invoices, 2 million journal
    // rows) against an empty store.
    if args.iter().any(|a| a == "--large-store") {
        if quick {
            large_store(5_000, 20, 10);
        } else {
            large_store(100_000, 20, 60);
        }
        return;
    }
    // `--floor-only [ROUNDS]`: just the commands against the floor.
    if let Some(at) = args.iter().position(|a| a == "--floor-only") {
        let rounds = args.get(at + 1).and_then(|r| r.parse().ok()).unwrap_or(100);
        floor_ratio(&Bench::new(), rounds);
        return;
    }
    // `--storm-only`: just the webhook storm.
    if args.iter().any(|a| a == "--storm-only") {
        webhook_storm("month", 250, 4, 32);
        return;
    }
    // `--statements [ROUNDS]`: per process and the storm with payment statements off and
    // on, taking turns, so the one extra Splynx round trip per payment can be compared.
    if let Some(at) = args.iter().position(|a| a == "--statements") {
        let rounds = args.get(at + 1).and_then(|r| r.parse().ok()).unwrap_or(2);
        for _ in 0..rounds {
            for group in ["off", "month"] {
                println!("\n# statements {group}");
                per_process(&Bench::with_statements(group), if quick { 40 } else { 200 });
                webhook_storm(group, if quick { 50 } else { 250 }, 4, 32);
            }
        }
        return;
    }
    println!(
        "# splynx-bitpay benchmarks{}",
        if quick { " (quick)" } else { "" }
    );
    println!(
        "\nmachine: {} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        machine()
    );
    let bench = Bench::new();
    per_process(&bench, if quick { 40 } else { 300 });
    floor_ratio(&bench, if quick { 40 } else { 200 });
    let latency = Duration::from_millis(25);
    if quick {
        reconcile_scaling(&[200, 500], latency, ServerKind::BitPay);
        reconcile_scaling(&[200], latency, ServerKind::Btcpay);
        reconcile_with_watched(500, 50, latency);
        webhook_storm("month", 50, 4, 32);
    } else {
        reconcile_scaling(&[1000, 2500, 5000, 10000], latency, ServerKind::BitPay);
        reconcile_scaling(&[10000], latency, ServerKind::Btcpay);
        reconcile_with_watched(10000, 1000, latency);
        webhook_storm("month", 250, 4, 32);
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0)
            })
        })
        .map(|kib| format!("{:.0} GiB RAM", kib as f64 / 1024.0 / 1024.0))
        .unwrap_or_default();
    format!("{cpu}, {memory}")
}
