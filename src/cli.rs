//! Command-line definition (clap derive). Parsing only; no I/O.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "splynx-bitpay",
    version,
    about = "Pay Splynx invoices, proforma invoices and balance top-ups with crypto through BitPay",
    after_help = "Exit status: 0 done, 65 bad input, 75 temporary failure (retry later), 78 configuration or pairing problem, 1 other failure."
)]
pub struct Cli {
    /// Config file [default: $SPLYNX_BITPAY_CONFIG or /etc/splynx-bitpay/config.toml]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Print one JSON document on stdout instead of text
    #[arg(long, global = true)]
    pub json: bool,
    /// More diagnostics on stderr (repeat for more)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pair with BitPay using a dashboard pairing code, or request a code to approve; or
    /// connect to BTCPay Server with a store API key (--btcpay)
    #[command(
        long_about = "Pair with BitPay using a dashboard pairing code, or request a code to approve in the dashboard. With [server] kind = \"btcpay\", --btcpay connects to BTCPay Server instead: the store's API key is read from stdin (never from the command line) and checked with GET /api/v1/api-keys/current (the store of [btcpay] store_id and each permission the add-on needs: btcpay.store.canviewinvoices, btcpay.store.cancreateinvoice, btcpay.store.webhooks.canmodifywebhooks, btcpay.store.canviewstoresettings; a missing one is named, exit 78, nothing stored); then our webhook is registered (our notification URL, the invoice events we settle on, automatic redelivery), replacing the one an earlier connect registered, and the key and the webhook's secret are kept in the state store. The admin page's \"Connect to BTCPay Server\" does the same through BTCPay's authorize page (--authorize-redirect, then --state).",
        after_help = "Examples:\n  splynx-bitpay pair u7m0VSR\n  splynx-bitpay pair --request --facade merchant\n  splynx-bitpay pair --btcpay < api-key.txt"
    )]
    Pair(PairArgs),
    /// Forget the BitPay tokens of the configured environment; with BTCPay Server, delete our
    /// webhook there and forget the key and the webhook's secret
    #[command(
        after_help = "Example (then revoke the token in the BitPay dashboard, or the API key in BTCPay, too):\n  splynx-bitpay unpair"
    )]
    Unpair(UnpairArgs),
    /// Pairing state, invoice counts, last webhook, oldest unsettled invoice
    #[command(after_help = "Examples:\n  splynx-bitpay status\n  splynx-bitpay status --json")]
    Status(StatusArgs),
    /// Create (or reuse) a BitPay or BTCPay Server invoice for a Splynx document or a
    /// balance top-up
    #[command(
        after_help = "Examples:\n  splynx-bitpay create-invoice --customer 42 --invoice 101\n  splynx-bitpay create-invoice --customer 42 --refill 25.00 --json"
    )]
    CreateInvoice(CreateInvoiceArgs),
    /// A direct pay link from an e-mail: the document's own customer, no portal session
    #[command(
        after_help = "Works only for customers whose partner grants access to unauthorized customers ([direct_pay] enabled, or the Modules-list setting); any other document reads as not found. Prints no customer data.\n\nExamples:\n  splynx-bitpay direct-pay --invoice-number 202401000001 --check --json\n  splynx-bitpay direct-pay --invoice 101"
    )]
    DirectPay(DirectPayArgs),
    /// Handle one webhook (BitPay's or BTCPay Server's): body on stdin; re-fetch the invoice
    /// and settle it
    #[command(
        after_help = "Examples:\n  splynx-bitpay handle-ipn --signature \"$HTTP_X_SIGNATURE\" < body.json\n  splynx-bitpay handle-ipn --btcpay-sig \"$HTTP_BTCPAY_SIG\" < body.json"
    )]
    HandleIpn(HandleIpnArgs),
    /// Re-check every unsettled invoice and settle what webhooks missed
    #[command(
        long_about = "Re-check every unsettled invoice (and every credit the server may still take back) and settle what webhooks missed, through the same decision as handle-ipn; book what earlier credits left open; report what newly needs the admin; prune the journal once a day. With BTCPay Server one paged listing of the store's invoices comes first, from the oldest invoice to check or the last listing (less an hour, at most 7 days back): only the invoices it shows changed are fetched one by one, invoices older than the window or missing from it are fetched too, and invoices of ours that have no record (a create whose answer was lost, a restored database) are adopted by their order id. With --since, the server's list from that day is searched for such invoices as well (BitPay: needs a merchant token).",
        after_help = "Examples:\n  splynx-bitpay reconcile\n  splynx-bitpay reconcile --since 2026-11-01 --dry-run"
    )]
    Reconcile(ReconcileArgs),
    /// Refund a credited payment (all that is left, or --amount), cancel a refund, or record
    /// one made in the server's dashboard
    #[command(
        long_about = "Refund a credited payment through the payment server, exactly once: ID is the server's invoice id or the Splynx payment id; without --amount, everything still refundable (what was credited less refunds paid out, pending or in flight; a failed or cancelled refund frees its amount). Only a credited payment that is not held, in the invoice's currency with its decimals, and not one the server lists a dashboard refund for. BitPay: only a complete invoice (a confirmed one would be declined), only with a merchant token, and not an invoice paid through a direct link (BitPay has no e-mail address to ask the payer for a refund address); BitPay e-mails the payer for an address. BTCPay Server: a pull payment of exactly the amount, in the invoice's currency; its claim link is printed, for the admin to hand to the customer, who claims it with their own address; the admin approves and pays the payout in BTCPay. The request is recorded before it is sent and sent once: an answer that never came is looked up by its key (reconcile does it), never repeated. The refund is followed through the server's webhooks (BTCPay: its payout events) and reconcile, and booked in Splynx only when the server says the money was paid out: a negative payment with the add-on's payment method, receipt number = the refund's id, not allocated to the document (it stays paid; the customer's balance goes down by the refund). A failed or cancelled refund books nothing and is reported by reconcile. --cancel cancels a BitPay refund not paid out yet (a BTCPay refund is cancelled by archiving its pull payment in BTCPay). --record records the refunds the server lists for the invoice that were made in its own dashboard, after the admin checked them: booked like ours once paid out, never without this command.",
        after_help = "Examples:\n  splynx-bitpay refund UZjwcYkWAKfTMn9J1yyfs4\n  splynx-bitpay refund 812 --amount 10.00 --reason \"cancelled contract\"\n  splynx-bitpay refund --cancel Eso8srxKJR5U71ahCspAAA\n  splynx-bitpay refund UZjwcYkWAKfTMn9J1yyfs4 --record"
    )]
    Refund(RefundArgs),
    /// What would happen now: re-run one invoice's decision from a fresh fetch (--apply
    /// takes its steps)
    #[command(
        long_about = "What would happen now: re-runs the settlement decision for one invoice from a fresh fetch at the payment server and prints what the server says, what is recorded here, the decision and the steps it leads to. Nothing is changed without --apply; with --apply the steps are taken through the same exactly-once settlement as handle-ipn (a payment already in Splynx is found by its receipt number, never made twice). ID is the server's invoice id; --webhook N replays stored webhook N from the journal (`status` lists recent webhooks with their numbers): its invoice is fetched afresh, the body's claims are not believed. An id with no record here is looked up with the add-on's credentials: another integration's is left alone; one of ours whose record was lost is adopted with --apply. A refund webhook replays its invoice; the refund itself is followed by reconcile. Exit 0 once the decision is shown, whatever it is.",
        after_help = "Examples:\n  splynx-bitpay replay UZjwcYkWAKfTMn9J1yyfs4\n  splynx-bitpay replay --webhook 812\n  splynx-bitpay replay UZjwcYkWAKfTMn9J1yyfs4 --apply"
    )]
    Replay(ReplayArgs),
    /// The add-on's state in the Prometheus text format (what reconcile writes to
    /// [metrics] textfile)
    #[command(
        long_about = "The add-on's state in the Prometheus text format, read from the state store only (nothing remote): invoices by settlement state, refunds by state, records held for the admin by kind, bookings waiting, findings not reported yet, whether the payment server's credential is stored and was not refused at the last reconcile, when the oldest unsettled invoice was created, when the last webhook arrived, when the last reconcile ended and last succeeded, its duration, errors and exit status, and the last recorded audit's differences. Times are Unix timestamps (_timestamp_seconds). reconcile writes the same to [metrics] textfile, replaced whole, for node exporter's textfile collector.",
        after_help = "Examples:\n  splynx-bitpay metrics\n  splynx-bitpay metrics | grep held_records"
    )]
    Metrics,
    /// The payment server's book and Splynx's side by side for a period: every difference
    #[command(
        long_about = "The payment server's book and Splynx's side by side for a period (days in this server's timezone, which Splynx's dates are in; both ends included; last month when --from and --to are left out). Reads every invoice the server says was created in the period (BitPay: needs a merchant token) and every Splynx payment dated in it with the add-on's payment methods, matches them by invoice id = receipt number, and lists each difference: paid at the server but not in Splynx; in Splynx but not paid at the server (or not this add-on's); amount, customer or document differs; more than one Splynx payment for one invoice; a refund paid out at the server but not booked, or booked but not paid out. An invoice belongs to the day it was created at the server, a payment to its Splynx date; each side's items are looked up on the other side wherever they fall, so a payment credited after midnight still matches. Other integrations' invoices on the same account are counted, not compared. Exit 1 when there is any difference. Changes nothing anywhere; --record keeps the summary for the admin page and `metrics`.",
        after_help = "Examples:\n  splynx-bitpay audit --from 2026-11-01 --to 2026-11-30\n  splynx-bitpay audit --csv > audit-2026-11.csv\n  splynx-bitpay audit --record --json"
    )]
    Audit(AuditArgs),
    /// Close a record held for the admin (review, reversed after credit, duplicates)
    #[command(
        long_about = "Close a record held for the admin: held for review (a mismatch, a payment Splynx refused, a late payment, duplicate Splynx payments) or reversed after credit (BitPay marked a credited invoice invalid or declined, or refunded it). First act in Splynx (keep or delete the payment, record a late payment by hand); this command changes nothing in Splynx, it only records that the admin dealt with it. `status` and `doctor` stop listing it.",
        after_help = "Example:\n  splynx-bitpay resolve UZjwcYkWAKfTMn9J1yyfs4 --note \"deleted duplicate payment 812\""
    )]
    Resolve(ResolveArgs),
    /// Drop journal detail older than the retention period (reconcile does it daily)
    #[command(
        long_about = "Drop journal detail older than storage.journal_retention_days (or --older-than): settled payments (credited and no longer watched, expired, resolved) keep one summary line each, bodies naming no invoice of ours and reported findings go. Payments held for the admin and unsettled ones keep their whole journal; the BitPay invoice to Splynx payment mapping is kept forever. reconcile runs this at most once a day.",
        after_help = "Examples:\n  splynx-bitpay prune --dry-run\n  splynx-bitpay prune --older-than 90"
    )]
    Prune(PruneArgs),
    /// One invoice (BitPay or BTCPay Server id, order id or Splynx document number) with its
    /// whole journal
    #[command(after_help = "Example:\n  splynx-bitpay show UZjwcYkWAKfTMn9J1yyfs4")]
    Show(ShowArgs),
    /// What the add-on's pages show: currency and its decimals, refill bounds, URLs
    #[command(
        after_help = "Examples:\n  splynx-bitpay settings --json\n  splynx-bitpay settings --customer 42 --json"
    )]
    Settings(SettingsArgs),
    /// Every effective setting and where it came from: Modules list, TOML file or default
    #[command(
        after_help = "Sources: modules-list (what the admin set in Splynx: Config → Integrations → Modules list), modules-list default partner / modules-list partner N (its Partners settings), toml (the config file), default. Secrets are shown as (redacted).\n\nExamples:\n  splynx-bitpay config\n  splynx-bitpay config --partner 2 --json"
    )]
    Config(ConfigArgs),
    /// Check the installation: config, files, database, BitPay or BTCPay Server, Splynx API,
    /// webhook URL
    #[command(
        long_about = "Check the installation, one line per check: config file, data directory and key permissions, database integrity and schema, BitPay reachability and token (with BTCPay Server instead: the server reachable and at least version 2.1.2, the API key valid with each permission it needs, the store and its default currency, our webhook registered, enabled and sending to our URL, and how its last deliveries were answered), Splynx API reachability and permissions, the payment method, the public webhook URL, and when the last webhook arrived. Every failure comes with its fix. Run as root, the checks run as the owner of the data directory (the web server user). It changes nothing: no file or directory is created (without a database yet, the API checks use a scratch directory that is removed), nothing is written to Splynx's books (what the API key may add is read from the permissions Splynx lists with an access token; the only requests that change anything at Splynx are that token, a session like any API login) and nothing is created at BitPay; the webhook URL gets one empty POST, which the add-on answers 400 without a record.",
        after_help = "Exit status: 0 when every check passes (warnings allowed), 78 when a check fails, 75 when the only failures are BitPay, Splynx or the webhook URL being unreachable.\n\nExamples:\n  splynx-bitpay doctor\n  sudo -u www-data splynx-bitpay doctor --json"
    )]
    Doctor,
}

/// Who is at the admin page (the PHP shim passes these; on the command line, leave them out).
#[derive(Debug, Args, Default)]
pub struct AdminArgs {
    /// The Splynx administrator session hash the admin page received; pairing changes then
    /// need a role in admin.pairing_roles
    #[arg(long, value_name = "SASH")]
    pub sash: Option<String>,
    /// The administrator id of the page's login session: must be the sash's administrator
    #[arg(long, value_name = "ID", requires = "sash")]
    pub session_admin: Option<i64>,
    /// Asked by the admin page: without --sash it gets the read-only view (no pending
    /// pairing codes), as any administrator without a pairing role does
    #[arg(long)]
    pub from_page: bool,
}

#[derive(Debug, Args)]
pub struct UnpairArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
}

#[derive(Debug, Args)]
pub struct PairArgs {
    /// The 7-character pairing code from the BitPay dashboard
    #[arg(
        required_unless_present_any = ["request", "btcpay"],
        conflicts_with_all = ["request", "btcpay"]
    )]
    pub code: Option<String>,
    /// Connect to BTCPay Server ([server] kind = "btcpay") with the store's API key, read
    /// from stdin (never from the command line)
    #[arg(long, conflicts_with = "request")]
    pub btcpay: bool,
    /// With --btcpay: print the address of BTCPay's authorize page instead, which returns
    /// the admin (and the key) to URL with a one-time state (the admin page's "Connect")
    #[arg(
        long,
        value_name = "URL",
        requires = "btcpay",
        conflicts_with = "state"
    )]
    pub authorize_redirect: Option<String>,
    /// With --btcpay: the one-time state the authorize page returned with the key
    #[arg(long, value_name = "STATE", requires = "btcpay")]
    pub state: Option<String>,
    /// Ask BitPay for a pairing code that the merchant then approves in the dashboard
    #[arg(long)]
    pub request: bool,
    /// Facade to request with --request
    #[arg(long, default_value = "merchant", requires = "request", value_parser = ["merchant", "pos"])]
    pub facade: String,
    /// With --sash: replace an active token (the admin page asks for this confirmation)
    #[arg(long)]
    pub replace: bool,
    #[command(flatten)]
    pub admin: AdminArgs,
}

#[derive(Debug, Args)]
#[group(skip)]
#[command(group(
    clap::ArgGroup::new("document")
        .required(true)
        .multiple(false)
        .args(["invoice", "invoice_number", "proforma", "proforma_number", "refill"])
))]
pub struct CreateInvoiceArgs {
    /// The logged-in Splynx customer's id
    #[arg(long, value_name = "ID", allow_hyphen_values = true)]
    pub customer: String,
    #[command(flatten)]
    pub document: DocumentArgs,
    /// Top up the balance by AMOUNT (in the configured currency)
    #[arg(long, value_name = "AMOUNT", allow_hyphen_values = true)]
    pub refill: Option<String>,
}

/// The Splynx document to pay, and `--check`.
#[derive(Debug, Args)]
#[group(skip)]
pub struct DocumentArgs {
    /// Splynx invoice id
    #[arg(long, value_name = "ID")]
    pub invoice: Option<String>,
    /// Splynx invoice number
    #[arg(long, value_name = "NUMBER")]
    pub invoice_number: Option<String>,
    /// Splynx proforma invoice id
    #[arg(long, value_name = "ID")]
    pub proforma: Option<String>,
    /// Splynx proforma invoice number
    #[arg(long, value_name = "NUMBER")]
    pub proforma_number: Option<String>,
    /// Only check that the document can be paid and print what would be charged
    #[arg(long)]
    pub check: bool,
    /// The total the page showed the customer: the checkout is refused when it would
    /// charge anything else
    #[arg(long, value_name = "AMOUNT", conflicts_with = "check")]
    pub expect_total: Option<String>,
}

#[derive(Debug, Args)]
#[group(skip)]
#[command(group(
    clap::ArgGroup::new("document")
        .required(true)
        .multiple(false)
        .args(["invoice", "invoice_number", "proforma", "proforma_number"])
))]
pub struct DirectPayArgs {
    #[command(flatten)]
    pub document: DocumentArgs,
}

#[derive(Debug, Args)]
pub struct HandleIpnArgs {
    /// The webhook's x-signature header (BitPay)
    #[arg(long, value_name = "VALUE")]
    pub signature: Option<String>,
    /// The webhook's BTCPay-Sig header (BTCPay Server: checked before anything else)
    #[arg(long, value_name = "VALUE")]
    pub btcpay_sig: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// Also list the server's invoices from DATE (YYYY-MM-DD) to find ones we have no record of
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Print what would be done and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The server's invoice id
    #[arg(required_unless_present = "webhook", conflicts_with = "webhook")]
    pub id: Option<String>,
    /// Replay stored webhook N (its number in the journal) instead
    #[arg(long, value_name = "N")]
    pub webhook: Option<i64>,
    /// Take the steps (without it, nothing is changed)
    #[arg(long)]
    pub apply: bool,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// First day (YYYY-MM-DD) [default: the first of last month]
    #[arg(long, value_name = "DATE")]
    pub from: Option<String>,
    /// Last day, included (YYYY-MM-DD) [default: the last of last month]
    #[arg(long, value_name = "DATE")]
    pub to: Option<String>,
    /// The differences as CSV (RFC 4180, one row per difference) for the accountant
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    /// Keep the summary for the admin page and `metrics` (the only thing written)
    #[arg(long)]
    pub record: bool,
    #[command(flatten)]
    pub admin: AdminArgs,
}

#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// BitPay invoice id
    pub id: String,
    /// What you did, for the journal
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
    #[command(flatten)]
    pub admin: AdminArgs,
}

#[derive(Debug, Args)]
pub struct RefundArgs {
    /// The server's invoice id, or the Splynx payment id of its credit
    #[arg(required_unless_present = "cancel", conflicts_with = "cancel")]
    pub id: Option<String>,
    /// How much, in the invoice's currency (default: everything still refundable)
    #[arg(long, value_name = "AMOUNT")]
    pub amount: Option<String>,
    /// Why, for the journal and the Splynx payment
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Cancel this refund (the server's refund id) instead
    #[arg(long, value_name = "REFUND_ID", conflicts_with_all = ["amount", "reason"])]
    pub cancel: Option<String>,
    /// Record in Splynx the refunds of invoice ID made in the server's dashboard (booked,
    /// like ours, once paid out) instead of asking for one
    #[arg(long, conflicts_with_all = ["amount", "reason", "cancel"])]
    pub record: bool,
    #[command(flatten)]
    pub admin: AdminArgs,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Count what would go; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Prune detail older than DAYS instead of storage.journal_retention_days
    #[arg(long, value_name = "DAYS")]
    pub older_than: Option<u32>,
}

#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// What this customer sees (their partner's currency and bounds)
    #[arg(long, value_name = "ID")]
    pub customer: Option<i64>,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The settings that apply to this Splynx partner's customers
    #[arg(long, value_name = "ID")]
    pub partner: Option<i64>,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// BitPay invoice id, order id or Splynx document number
    pub id: String,
    /// Only this customer's payments (what the result page asks for); others are "not found"
    #[arg(long, value_name = "ID")]
    pub customer: Option<i64>,
}
