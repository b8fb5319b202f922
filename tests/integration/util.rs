//! Test harness: a temp data dir and config pointed at fresh sandboxes, and the real binary.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use splynx_bitpay_sandbox::{BitPaySandbox, SplynxSandbox, WebhookRoute};

pub(crate) const API_KEY: &str = "test-key-0123456789";
pub(crate) const API_SECRET: &str = "test-secret-do-not-print-9f8e7d";

pub(crate) struct Env {
    pub dir: tempfile::TempDir,
    pub bitpay: BitPaySandbox,
    pub splynx: SplynxSandbox,
}

#[derive(Debug)]
pub(crate) struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    #[track_caller]
    pub(crate) fn assert_code(&self, code: i32) -> &Run {
        assert_eq!(self.code, code, "unexpected exit code: {self:#?}");
        self
    }

    #[track_caller]
    pub(crate) fn assert_stderr_contains(&self, text: &str) -> &Run {
        assert!(
            self.stderr.contains(text),
            "stderr lacks {text:?}: {self:#?}"
        );
        self
    }
}

impl Env {
    /// Sandboxes seeded with the standard customers and documents, and a config using them.
    pub(crate) fn new() -> Env {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
            bitpay: BitPaySandbox::start(),
            splynx: SplynxSandbox::start(API_KEY, API_SECRET),
        };
        env.seed();
        env.write_config(&env.default_config());
        env
    }

    fn seed(&self) {
        let s = &self.splynx;
        s.add_customer(json!({"id": 42, "login": "ada", "name": "Ada Lovelace", "email": "ada@example.com", "status": "active", "partner_id": 1, "billing_type": "prepaid"}));
        s.add_customer(json!({"id": 43, "login": "grace", "name": "Grace Hopper", "email": "grace@example.com", "status": "active", "partner_id": 1, "billing_type": "recurring"}));
        s.add_invoice(json!({"id": 101, "number": "202401000001", "customer_id": 42, "status": "not_paid", "total": "51.61", "due": "51.61"}));
        s.add_invoice(json!({"id": 102, "number": "202401000002", "customer_id": 42, "status": "paid", "total": "10.00", "due": "0"}));
        s.add_invoice(json!({"id": 103, "number": "202401000003", "customer_id": 43, "status": "not_paid", "total": "99.00", "due": "99.00"}));
        s.add_invoice(json!({"id": 104, "number": "202401000004", "customer_id": 42, "status": "deleted", "total": "5.00", "due": "5.00"}));
        s.add_invoice(json!({"id": 105, "number": "202401000005", "customer_id": 42, "status": "not_paid", "total": "80.00", "due": "30.00"}));
        s.add_proforma(json!({"id": 201, "number": "2024000001", "customer_id": 42, "status": "not_paid", "total": "20.00"}));
        s.add_proforma(json!({"id": 202, "number": "2024000002", "customer_id": 43, "status": "not_paid", "total": "15.00"}));
        s.add_payment_method(json!({"id": 7, "name": "BitPay", "is_active": "1", "name_1": "BitPay invoice", "name_2": "Coin", "name_3": "Transaction"}));
    }

    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub(crate) fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    pub(crate) fn default_config(&self) -> String {
        format!(
            r#"[splynx]
url = "https://splynx.isp.test"
api_url = "{splynx}/api/2.0/"
api_key = "{API_KEY}"
api_secret = "{API_SECRET}"
payment_method_id = 7
timeout_seconds = 2

[bitpay]
environment = "test"
api_url = "{bitpay}"
currency = "USD"
transaction_speed = "medium"
credit_on = "confirmed"
timeout_seconds = 2

[refill]
min = "1.00"
max = "5000.00"

[storage]
data_dir = "{data}"
owner = "{owner}"
"#,
            splynx = self.splynx.url(),
            bitpay = self.bitpay.url(),
            data = self.data_dir().display(),
            owner = current_user()
        )
    }

    pub(crate) fn write_config(&self, text: &str) {
        std::fs::write(self.config_path(), text).unwrap();
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, b"")
    }

    pub(crate) fn run_with_stdin(&self, args: &[&str], stdin: &[u8]) -> Run {
        run_binary(&self.config_path(), args, stdin)
    }

    /// Pairs with a dashboard code (pos facade) and checks it worked.
    pub(crate) fn pair(&self) {
        let code = self.bitpay.create_pairing_code();
        self.run(&["pair", &code]).assert_code(0);
    }

    /// Adds a merchant token: requests a code, the merchant approves it, `status` sees it.
    pub(crate) fn pair_merchant(&self) {
        let request = self
            .run(&["--json", "pair", "--request", "--facade", "merchant"])
            .json();
        assert!(self
            .bitpay
            .approve_pairing(request["pairing_code"].as_str().unwrap()));
        self.run(&["status"]).assert_code(0);
    }

    /// Runs `handle-ipn` for `id` and kills it once Splynx has committed the payment POST
    /// whose reply it then never gets.
    pub(crate) fn kill_webhook_after_splynx_commits(&self, id: &str) {
        self.kill_webhook_once_splynx_has("admin/finance/payments", id, || {
            self.splynx.payment_count()
        });
    }

    /// Runs `handle-ipn` for `id` and kills it once Splynx has committed its first POST to
    /// a path containing `path` (one more row in `rows`), whose reply it then never gets.
    pub(crate) fn kill_webhook_once_splynx_has(
        &self,
        path: &str,
        id: &str,
        rows: impl Fn() -> usize,
    ) {
        let body = self.bitpay.webhook_body(id, true);
        self.kill_ipn_once_splynx_has(path, &["handle-ipn"], &body, rows);
    }

    /// Runs `handle-ipn` with `args` and the webhook `body`, and kills it once Splynx has
    /// committed its first POST to a path containing `path` (one more row in `rows`), whose
    /// reply it then never gets.
    pub(crate) fn kill_ipn_once_splynx_has(
        &self,
        path: &str,
        args: &[&str],
        body: &str,
        rows: impl Fn() -> usize,
    ) {
        let faults = self.splynx.faults();
        faults.set_filter(Some(path), Some("POST"));
        faults.hang_after_next(1);
        let before = rows();
        let mut child = spawn(&self.config_path(), args);
        child
            .stdin
            .take()
            .unwrap()
            .write_all(body.as_bytes())
            .unwrap();
        wait_until("Splynx has the row", || rows() == before + 1);
        child.kill().unwrap();
        child.wait().unwrap();
        faults.clear();
    }

    pub(crate) fn create_invoice(&self, args: &[&str]) -> Run {
        let mut all = vec!["--json", "create-invoice"];
        all.extend_from_slice(args);
        self.run(&all)
    }

    /// `create-invoice ARGS`, which must succeed: the server's invoice id.
    pub(crate) fn invoice_id(&self, args: &[&str]) -> String {
        let run = self.create_invoice(args);
        run.assert_code(0);
        run.json()["invoice_id"].as_str().unwrap().to_string()
    }

    /// Creates an invoice for Splynx invoice 101 (customer 42) and returns its BitPay id.
    pub(crate) fn create_invoice_101(&self) -> String {
        let run = self.create_invoice(&["--customer", "42", "--invoice", "101"]);
        run.assert_code(0);
        run.json()["bitpay_invoice_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Delivers the webhook BitPay would send now, with its signature.
    pub(crate) fn deliver_webhook(&self, id: &str, extended: bool) -> Run {
        let body = self.bitpay.webhook_body(id, extended);
        let signature = self.bitpay.webhook_signature(&body, id);
        self.run_with_stdin(&["handle-ipn", "--signature", &signature], body.as_bytes())
    }

    pub(crate) fn payments_with_receipt(&self, receipt: &str) -> Vec<Value> {
        self.splynx
            .payments()
            .into_iter()
            .filter(|p| p["receipt_number"].as_str() == Some(receipt))
            .collect()
    }

    /// Customer 77 of partner 2, with unpaid invoice 701 (number 202402000001, 100.00).
    pub(crate) fn add_partner_two_customer(&self) {
        self.splynx.add_customer(
            json!({"id": 77, "name": "Partner Two", "status": "active", "partner_id": 2}),
        );
        self.splynx.add_invoice(json!({"id": 701, "number": "202402000001", "customer_id": 77, "status": "not_paid", "total": "100.00", "due": "100.00"}));
    }

    /// The default config, reading Splynx's Modules-list settings file holding `ini`.
    pub(crate) fn with_modules_list_ini(&self, ini: &str) {
        let addon = self.data_dir().with_file_name("addon");
        std::fs::create_dir_all(addon.join("config")).unwrap();
        std::fs::write(addon.join("config/config.ini.php"), ini).unwrap();
        self.write_config(&format!(
            "{}\n[addon]\ndir = \"{}\"\n",
            self.default_config(),
            addon.display()
        ));
    }

    /// Where the booking of `kind` ("statement", "fee") after the credit of BitPay
    /// invoice `id` stands.
    pub(crate) fn booking_state(&self, id: &str, kind: &str) -> String {
        self.db()
            .query_row(
                "SELECT b.state FROM bookings b JOIN invoices i ON i.id = b.invoice_id
                 WHERE i.bitpay_id = ?1 AND b.kind = ?2",
                [id, kind],
                |r| r.get(0),
            )
            .unwrap()
    }

    pub(crate) fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.data_dir().join("state.db")).unwrap()
    }

    /// How many journal lines name BitPay invoice `id`.
    pub(crate) fn journal_rows(&self, id: &str) -> i64 {
        self.db()
            .query_row(
                "SELECT count(*) FROM journal WHERE bitpay_id = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap()
    }
}

pub(crate) fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_splynx-bitpay")
}

/// Starts the binary with piped stdio; the caller feeds stdin and collects the output.
pub(crate) fn spawn(config: &Path, args: &[&str]) -> std::process::Child {
    Command::new(binary())
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("SPLYNX_BITPAY_CONFIG")
        .env_remove("RUST_LOG")
        // Splynx dates are server-local; the sandbox's are UTC.
        .env("TZ", "UTC")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

pub(crate) fn run_binary(config: &Path, args: &[&str], stdin: &[u8]) -> Run {
    let mut child = spawn(config, args);
    let mut input = child.stdin.take().unwrap();
    let _ = input.write_all(stdin);
    drop(input);
    let output = child.wait_with_output().unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Polls `ready` for up to 20 s.
#[track_caller]
pub(crate) fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The config with `[splynx] auth` set ("signature" or "access_token").
pub(crate) fn with_splynx_auth(config: &str, auth: &str) -> String {
    config.replace(
        "payment_method_id = 7",
        &format!("payment_method_id = 7\nauth = \"{auth}\""),
    )
}

/// This process's user name: the test configs' `storage.owner`, so doctor accepts the
/// temporary data directories the tests create.
pub(crate) fn current_user() -> String {
    uzers::get_current_username()
        .expect("the test's user has a name")
        .to_string_lossy()
        .into_owned()
}

/// The add-on's webhook route on loopback, running this binary with the test's config.
pub(crate) fn ipn_route(config: PathBuf) -> WebhookRoute {
    WebhookRoute::start(move |args, body| {
        let mut child = spawn(&config, args);
        child.stdin.take().unwrap().write_all(body).unwrap();
        child
            .wait_with_output()
            .unwrap()
            .status
            .code()
            .unwrap_or(-1)
    })
}
