//! `splynx-bitpay-demo [--server bitpay|btcpay]`: the product's main job end to end on this
//! machine, against the sandboxes: pair (or connect to BTCPay Server), a customer's invoice
//! becomes a checkout, the customer pays, the server's webhook arrives (more than once),
//! and exactly one payment lands in Splynx.
//!
//! Runs the real `splynx-bitpay` binary (next to this program, or `$SPLYNX_BITPAY_BIN`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use splynx_bitpay_sandbox::{BitPaySandbox, BtcpaySandbox, SplynxSandbox, WebhookRoute};

const API_KEY: &str = "sandbox-key";
const API_SECRET: &str = "sandbox-secret";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] | ["--server", "bitpay"] => run_bitpay(),
        ["--server", "btcpay"] => run_btcpay(),
        _ => {
            eprintln!("usage: splynx-bitpay-demo [--server bitpay|btcpay]");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("demo failed: {message}");
            ExitCode::FAILURE
        }
    }
}

fn product_binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("SPLYNX_BITPAY_BIN") {
        return Ok(PathBuf::from(path));
    }
    let here = std::env::current_exe().map_err(|e| e.to_string())?;
    let beside = here.with_file_name("splynx-bitpay");
    if beside.exists() {
        Ok(beside)
    } else {
        Err(format!(
            "{} not found; build it first: cargo build --workspace",
            beside.display()
        ))
    }
}

struct Demo {
    binary: PathBuf,
    config: PathBuf,
}

impl Demo {
    /// Runs `splynx-bitpay ARGS`, echoing the command and its output.
    fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<String, String> {
        self.run_with(args, stdin.map(|body| ("webhook.json", body)))
    }

    /// Runs `splynx-bitpay ARGS` with `stdin` (named as a file in the echo).
    fn run_with(&self, args: &[&str], stdin: Option<(&str, &[u8])>) -> Result<String, String> {
        println!(
            "\n$ splynx-bitpay {}{}",
            args.join(" "),
            stdin
                .map(|(name, _)| format!(" < {name}"))
                .unwrap_or_default()
        );
        let stdin = stdin.map(|(_, body)| body);
        let mut child = Command::new(&self.binary)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.binary.display()))?;
        let mut input = child.stdin.take().expect("piped stdin");
        input
            .write_all(stdin.unwrap_or_default())
            .map_err(|e| e.to_string())?;
        drop(input);
        let output = child.wait_with_output().map_err(|e| e.to_string())?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        print!("{}", indent(&stdout));
        eprint!("{}", indent(&String::from_utf8_lossy(&output.stderr)));
        if !output.status.success() {
            return Err(format!(
                "splynx-bitpay {} exited with {}",
                args.join(" "),
                output.status
            ));
        }
        Ok(stdout)
    }
}

impl Demo {
    /// Step 2 of both stories: customer 42 pays invoice 101; the server's invoice id.
    fn customer_clicks_pay(&self) -> Result<String, String> {
        println!(
            "\n2. Customer 42 (Ada Lovelace) clicks Pay on invoice #202401000001 (51.61 USD)."
        );
        let created = self.run(
            &[
                "--json",
                "create-invoice",
                "--customer",
                "42",
                "--invoice",
                "101",
            ],
            None,
        )?;
        let created: serde_json::Value =
            serde_json::from_str(&created).map_err(|e| e.to_string())?;
        println!(
            "  → the portal sends the browser to {}",
            created["url"].as_str().unwrap_or_default()
        );
        created["invoice_id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| "no invoice id".to_string())
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// The config: Splynx, the `[bitpay]` section (`bitpay_lines`) and anything before it
/// (`head`: the server choice and `[btcpay]`).
fn write_config(
    path: &Path,
    head: &str,
    bitpay_lines: &str,
    splynx: &str,
    data: &Path,
) -> Result<(), String> {
    let text = format!(
        "{head}[splynx]\nurl = \"https://splynx.isp.test\"\napi_url = \"{splynx}/api/2.0/\"\napi_key = \"{API_KEY}\"\napi_secret = \"{API_SECRET}\"\npayment_method_id = 7\n\n[bitpay]\ncurrency = \"USD\"\n{bitpay_lines}\n[storage]\ndata_dir = \"{}\"\n",
        data.display()
    );
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// The Splynx sandbox with the demo's customers and invoices, checking nonces.
fn start_splynx() -> SplynxSandbox {
    let splynx = SplynxSandbox::start(API_KEY, API_SECRET);
    splynx.seed_demo();
    splynx.set_check_nonce(true);
    splynx
}

fn demo_dir() -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("splynx-bitpay-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    Ok(dir)
}

fn run_bitpay() -> Result<(), String> {
    let binary = product_binary()?;
    let bitpay = BitPaySandbox::start();
    let splynx = start_splynx();
    let dir = demo_dir()?;
    let config = dir.join("config.toml");
    write_config(
        &config,
        "",
        &format!("environment = \"test\"\napi_url = \"{}\"\n", bitpay.url()),
        &splynx.url(),
        &dir.join("data"),
    )?;
    let demo = Demo { binary, config };

    println!("splynx-bitpay demo — sandboxes on loopback:");
    println!("  BitPay (strict: every request signed)  {}", bitpay.url());
    println!(
        "  Splynx API (Splynx-EA, nonce checking)  {}/api/2.0/",
        splynx.url()
    );
    println!(
        "  config and state                        {}",
        dir.display()
    );

    println!("\n1. The admin creates a pairing code in the BitPay dashboard and pairs the add-on.");
    let code = bitpay.create_pairing_code();
    demo.run(&["pair", &code], None)?;
    demo.run(&["status"], None)?;

    let id = demo.customer_clicks_pay()?;

    println!("\n3. The customer pays in BTC; BitPay confirms the payment.");
    bitpay.set_status(&id, "confirmed", None);

    println!("\n4. BitPay's webhook reaches /bitpay/ipn, which hands it to handle-ipn (twice: BitPay retries).");
    let body = bitpay.webhook_body(&id, true);
    let signature = bitpay.webhook_signature(&body, &id);
    demo.run(
        &["handle-ipn", "--signature", &signature],
        Some(body.as_bytes()),
    )?;
    demo.run(
        &["handle-ipn", "--signature", &signature],
        Some(body.as_bytes()),
    )?;

    println!("\n5. Cron runs reconcile; nothing is left to do.");
    demo.run(&["reconcile"], None)?;

    println!("\n6. What Splynx now holds:");
    splynx_holds_one_payment(&splynx)?;
    demo.run(&["show", &id], None)?;
    println!(
        "\nDone: one BitPay invoice, one webhook delivered twice, exactly one Splynx payment (and its payment statement record)."
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Prints invoice 101, the payments and the statement records; exactly one of each is
/// expected, and the invoice paid.
fn splynx_holds_one_payment(splynx: &SplynxSandbox) -> Result<(), String> {
    let invoice = splynx.invoice(101).ok_or("invoice 101 vanished")?;
    println!(
        "  invoice #{}: status {}, due {}",
        invoice["number"].as_str().unwrap_or("?"),
        invoice["status"],
        invoice["due"]
    );
    let payments = splynx.payments();
    for p in &payments {
        println!(
            "  payment {}: customer {}, amount {}, receipt {}, {}",
            p["id"], p["customer_id"], p["amount"], p["receipt_number"], p["comment"]
        );
    }
    let statements = splynx.statements();
    let records = splynx.statement_records();
    for r in &records {
        let title = statements
            .iter()
            .find(|s| s["id"] == r["bank_statements_process_id"])
            .map_or("?", |s| s["title"].as_str().unwrap_or("?"));
        println!(
            "  payment statement \"{title}\": record {}, {}, customer {}, amount {}, payment {}, {}",
            r["id"], r["status"], r["customer_id"], r["amount"], r["payment_id"], r["comment"]
        );
    }
    if payments.len() != 1 || invoice["status"] != "paid" || records.len() != 1 {
        return Err(format!(
            "expected exactly one payment, one statement record and a paid invoice, got {} payment(s) and {} record(s)",
            payments.len(),
            records.len()
        ));
    }
    Ok(())
}

/// The same story with BTCPay Server: the admin connects with a store API key, BTCPay
/// delivers its webhooks itself (over HTTP to the add-on's route, one of them twice), and
/// Splynx gets exactly one payment.
fn run_btcpay() -> Result<(), String> {
    let binary = product_binary()?;
    let btcpay = BtcpaySandbox::start();
    let store = btcpay.create_store();
    let key = btcpay.create_api_key(
        &[
            "btcpay.store.canviewinvoices",
            "btcpay.store.cancreateinvoice",
            "btcpay.store.webhooks.canmodifywebhooks",
            "btcpay.store.canviewstoresettings",
            "btcpay.store.cancreatenonapprovedpullpayments",
            "btcpay.store.canviewpullpayments",
        ]
        .map(|p| format!("{p}:{store}")),
    );
    let splynx = start_splynx();
    let dir = demo_dir()?;
    let config = dir.join("config.toml");
    // The add-on's /bitpay/ipn on loopback: what the PHP shim does, echoed.
    let route = {
        let (binary, config) = (binary.clone(), config.clone());
        WebhookRoute::start(move |args, body| {
            let mut child = Command::new(&binary)
                .arg("--config")
                .arg(&config)
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("the splynx-bitpay binary runs");
            let _ = child.stdin.take().expect("piped").write_all(body);
            let output = child.wait_with_output().expect("it exits");
            let code = output.status.code().unwrap_or(-1);
            println!(
                "\n  [BTCPay → /bitpay/ipn] $ splynx-bitpay {} < webhook.json → exit {code}",
                args[..2.min(args.len())].join(" ")
            );
            print!("{}", indent(&String::from_utf8_lossy(&output.stdout)));
            code
        })
    };
    write_config(
        &config,
        &format!(
            "[server]\nkind = \"btcpay\"\n\n[btcpay]\nurl = \"{}\"\nstore_id = \"{store}\"\n\n",
            btcpay.url()
        ),
        &format!("notification_url = \"{}\"\n", route.url),
        &splynx.url(),
        &dir.join("data"),
    )?;
    let demo = Demo { binary, config };

    println!("splynx-bitpay demo with BTCPay Server — sandboxes on loopback:");
    println!(
        "  BTCPay Server (strict: store-scoped API keys)  {}",
        btcpay.url()
    );
    println!(
        "  Splynx API (Splynx-EA, nonce checking)         {}/api/2.0/",
        splynx.url()
    );
    println!(
        "  the add-on's webhook route                     {}",
        route.url
    );
    println!(
        "  config and state                               {}",
        dir.display()
    );

    println!("\n1. The admin connects the add-on to the store with an API key (the admin page does the same through BTCPay's authorize page); the add-on registers its webhook.");
    demo.run_with(&["pair", "--btcpay"], Some(("api-key.txt", key.as_bytes())))?;
    demo.run(&["status"], None)?;

    let id = demo.customer_clicks_pay()?;

    println!("\n3. The customer pays in BTC; BTCPay sees it, then settles it, and delivers a webhook for each step (a proxy sends the last one twice).");
    btcpay.set_status(&id, "Processing", None);
    btcpay.wait_for_deliveries(std::time::Duration::from_secs(60));
    btcpay.duplicate_next(1);
    btcpay.set_status(&id, "Settled", None);
    btcpay.wait_for_deliveries(std::time::Duration::from_secs(60));
    for d in btcpay.deliveries() {
        println!(
            "  delivery {} {}: HTTP {}",
            d.id,
            d.kind,
            d.http_code.map_or("none".to_string(), |c| c.to_string())
        );
    }

    println!("\n4. Cron runs reconcile; nothing is left to do.");
    demo.run(&["reconcile"], None)?;

    println!("\n5. What Splynx now holds:");
    splynx_holds_one_payment(&splynx)?;
    demo.run(&["show", &id], None)?;
    println!(
        "\nDone: one BTCPay invoice, its webhooks delivered by BTCPay (one twice), exactly one Splynx payment (and its payment statement record)."
    );
    drop(route);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
