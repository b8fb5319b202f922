//! The payment-server seam: what checkout, recovery and settlement need from the server
//! that takes the coins (BitPay today), and the one normalised invoice every server answers
//! with. A server's own words (BitPay's `confirmed` with `exceptionStatus` `paidPartial`)
//! are kept beside the normalised status, for the journal and `show`; decisions are made
//! over the status only, once (`settlement::decide`).
//!
//! Adding a server: a module under `src/` that implements `PaymentServer` and its
//! `WebhookFormat` (the BitPay one, `bitpay::server`, is the worked example), and a line in
//! each of `gateway::open` and `gateway::webhooks`.

use rust_decimal::Decimal;

use crate::domain::NewInvoice;
pub use crate::domain::{InvoiceStatus, StatusWords};
use crate::exit::{ExitCode, Failing};
use crate::secret::Secret;

/// One invoice as a payment server reports it, normalised.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerInvoice {
    pub id: String,
    /// Where the payer pays.
    pub url: String,
    pub order_id: String,
    /// Our idempotency key, when the server hands it back (BitPay's `guid`).
    pub guid: String,
    pub price: Option<Decimal>,
    pub currency: String,
    pub status: InvoiceStatus,
    pub words: StatusWords,
    /// Less than the price arrived (whatever the status).
    pub underpaid: bool,
    /// The server lists a refund for it.
    pub refunded: bool,
    pub expires_at: Option<i64>,
    /// When the server made it (Unix milliseconds), when it says.
    pub created_at: Option<i64>,
    /// What was paid, in the coin's own units ("0.000871"), empty before any payment.
    pub amount_paid: String,
    /// The coin ("BTC"), empty when unknown.
    pub coin: String,
    /// Transaction ids, comma-separated.
    pub transaction_ids: String,
    /// Our own text the server hands back untouched (BitPay's `posData`).
    pub metadata: String,
}

impl ServerInvoice {
    /// What was paid, for people: "0.000871 BTC", or None before any payment.
    pub fn paid_text(&self) -> Option<String> {
        let amount = self.amount_paid.trim();
        if amount.is_empty() || amount.trim_start_matches(['0', '.']).is_empty() {
            return None;
        }
        let coin = if self.coin.is_empty() {
            "(coin unknown)"
        } else {
            &self.coin
        };
        Some(format!("{amount} {coin}"))
    }
}

/// What a server can do beyond the basics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Invoices can be listed by date (`reconcile --since`).
    pub listing: bool,
    /// One listing of recent invoices, every status, is cheap enough that `reconcile`
    /// reads it first and fetches only the records it shows changed (BTCPay). BitPay's
    /// list needs the merchant token, so each record is fetched.
    pub lists_changes: bool,
    /// Refunds can be asked for.
    pub refunds: bool,
    /// A refund asked for can be cancelled through the API (BTCPay's are archived in BTCPay).
    pub cancels_refunds: bool,
    /// A create sent twice makes one invoice (BitPay's `guid`); without it a create with
    /// an unknown outcome is looked up by order id before it is sent again.
    pub idempotent_create: bool,
}

/// Who pays, when the checkout knows (the portal); a direct link names nobody.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payer<'a> {
    pub name: &'a str,
    pub email: Option<&'a str>,
}

/// What a create sends besides the stored order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateDetails<'a> {
    /// What the payer reads at the server's checkout.
    pub description: &'a str,
    /// Where the payer returns.
    pub redirect_url: &'a str,
    /// Our text the server keeps and hands back (`pos_data::write`).
    pub metadata: &'a str,
    pub payer: Option<Payer<'a>>,
    /// How soon a payment counts as confirmed (`high`, `medium`, `low`: the customer's
    /// partner's `transaction_speed`).
    pub speed: &'a str,
}

/// A credential invoices are made and read with, as stored with each invoice (BitPay: a
/// token and its facade).
#[derive(Debug, Clone)]
pub struct Credential {
    pub label: String,
    pub secret: Secret,
}

/// What went wrong talking to a payment server, by what the caller does about it. The
/// server's own error is the cause (its words stay in the message).
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// No answer, or a 5xx: the outcome is unknown; try again later.
    #[error(transparent)]
    Temporary(anyhow::Error),
    /// The server does not have it (for our credentials).
    #[error(transparent)]
    NotFound(anyhow::Error),
    /// Our credentials were refused: the admin must act (the error says how).
    #[error(transparent)]
    Authorization(anyhow::Error),
    /// Refused for another reason, or an answer we could not read: `words` are the
    /// server's own (what a payer may be shown).
    #[error("{cause}")]
    Refused {
        words: String,
        #[source]
        cause: anyhow::Error,
    },
}

impl ServerError {
    pub fn is_temporary(&self) -> bool {
        matches!(self, ServerError::Temporary(_))
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, ServerError::NotFound(_))
    }
}

impl Failing for ServerError {
    fn exit_code(&self) -> ExitCode {
        match self {
            ServerError::Temporary(_) => ExitCode::Temporary,
            ServerError::Authorization(_) => ExitCode::Config,
            ServerError::NotFound(_) | ServerError::Refused { .. } => ExitCode::Failure,
        }
    }
}

pub type ServerResult<T> = Result<T, ServerError>;

/// The largest webhook body read.
pub const WEBHOOK_MAX_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    #[error("the webhook body is empty")]
    Empty,
    #[error("the webhook body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the webhook body is not JSON: {0}")]
    NotJson(String),
    #[error("the webhook body has no invoice id (expected `id` or `data.id`)")]
    NoInvoiceId,
    #[error("the webhook's invoice id {0:?} is not an invoice id")]
    BadInvoiceId(String),
    /// A refund webhook that names no (valid) invoice: recorded, never bad input, since
    /// the server would retry it for an hour.
    #[error("refund webhook (refund {0:?}) names no invoice (expected `data.invoice`)")]
    RefundWithoutInvoice(String),
    #[error("the webhook carries no {0} signature")]
    Unsigned(&'static str),
    #[error("the webhook's {0} signature does not match its body")]
    Forged(&'static str),
}

impl Failing for WebhookError {
    /// Not a webhook: the sender must not retry it as is.
    fn exit_code(&self) -> ExitCode {
        ExitCode::BadInput
    }
}

/// A webhook body as JSON, refused when it is too large, empty or not JSON.
pub fn webhook_json(body: &[u8]) -> Result<serde_json::Value, WebhookError> {
    if body.len() > WEBHOOK_MAX_BYTES {
        return Err(WebhookError::TooLarge(WEBHOOK_MAX_BYTES));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(WebhookError::Empty);
    }
    serde_json::from_slice(body).map_err(|e| WebhookError::NotJson(e.to_string()))
}

/// What an invoice id may look like (both servers' are at most 64 letters and digits): a
/// webhook naming anything else is refused before it reaches a URL or the journal.
pub fn is_invoice_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// What we take from a webhook: the invoice id (and, for the journal, the event and what it
/// claims). Everything else is untrusted: what settles is a fresh fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookNotice {
    pub invoice_id: String,
    /// The event in an admin's words (`None`: a format without events).
    pub event: Option<String>,
    pub claimed: Option<StatusWords>,
    /// The refund id, when this is a refund webhook.
    pub refund_id: Option<String>,
}

/// What a webhook's signature header says about its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureCheck {
    /// No header was sent.
    Absent,
    /// The invoice is not ours: there is no key to check it with.
    NotChecked,
    Valid,
    /// Journaled and logged; the decision is still made from the fetched invoice.
    Invalid,
}

impl SignatureCheck {
    /// For the journal.
    pub fn describe(self) -> &'static str {
        match self {
            SignatureCheck::Absent => "no signature header",
            SignatureCheck::NotChecked => "signature not checked (unknown invoice)",
            SignatureCheck::Valid => "signature valid",
            SignatureCheck::Invalid => {
                "SIGNATURE INVALID (decision still made from the fetched invoice)"
            }
        }
    }
}

/// The signature headers a webhook arrived with (each server signs in its own).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookHeaders {
    /// BitPay's `x-signature`.
    pub x_signature: Option<String>,
    /// BTCPay's `BTCPay-Sig`.
    pub btcpay_sig: Option<String>,
}

/// How a server announces changes: its webhooks, read and checked without any credential
/// of ours (a webhook is answered before the key is opened).
pub trait WebhookFormat {
    /// "BitPay": the server's name, for people.
    fn name(&self) -> &'static str;

    /// The header this server signs its webhooks in.
    fn signature<'h>(&self, headers: &'h WebhookHeaders) -> Option<&'h str>;

    /// Whether a webhook must carry a valid signature before anything else is done with it
    /// (BTCPay signs with a secret of ours; BitPay's signature is only noted, since the
    /// fetch decides).
    fn signature_required(&self) -> bool {
        false
    }

    /// The invoice a webhook body names, and what it claims.
    fn parse_webhook(&self, body: &[u8]) -> Result<WebhookNotice, WebhookError>;

    /// The webhook's signature `header` over `body`, checked with the key of the invoice's
    /// order (when we hold it).
    fn check_signature(
        &self,
        body: &[u8],
        header: Option<&str>,
        order: Option<&NewInvoice>,
    ) -> SignatureCheck;
}

/// A payment server: where invoices are made, read, listed and announced.
pub trait PaymentServer: Send + Sync {
    /// How it announces changes.
    fn webhooks(&self) -> &dyn WebhookFormat;

    /// "BitPay": the server's name, for people.
    fn name(&self) -> &'static str {
        self.webhooks().name()
    }

    fn capabilities(&self) -> Capabilities;

    /// The credential new invoices are made with (stored with each invoice).
    fn credential(&self) -> ServerResult<Credential>;

    /// Creates the invoice for a stored order (its `guid` is the idempotency key).
    fn create(
        &self,
        order: &NewInvoice,
        details: &CreateDetails<'_>,
    ) -> ServerResult<ServerInvoice>;

    /// The invoice `id`, read with the credential its order was made with.
    fn fetch(&self, id: &str, order: &NewInvoice) -> ServerResult<ServerInvoice>;

    /// The invoice a create whose answer never arrived made, if any (by guid or order id).
    fn find_created(&self, order: &NewInvoice) -> ServerResult<Option<ServerInvoice>>;

    /// An invoice id we hold no record of, asked with each of our credentials: the invoice
    /// and the credential that could read it, or `None` when none could.
    fn fetch_unknown(&self, id: &str) -> ServerResult<Option<(ServerInvoice, Credential)>>;

    /// Each invoice created from `from_ms` up to `until_ms` (Unix milliseconds; the server
    /// may hand back a little more, whole days for BitPay: callers filter by
    /// `created_at`), handed to `each` page by page, so a year of them is never held at
    /// once. Needs `capabilities().listing`.
    fn for_each_created(
        &self,
        from_ms: i64,
        until_ms: i64,
        each: &mut dyn FnMut(ServerInvoice),
    ) -> ServerResult<()>;

    /// `for_each_created`, collected.
    fn list_created(&self, from_ms: i64, until_ms: i64) -> ServerResult<Vec<ServerInvoice>> {
        let mut all = Vec::new();
        self.for_each_created(from_ms, until_ms, &mut |invoice| all.push(invoice))?;
        Ok(all)
    }

    /// Asks for a refund (needs `capabilities().refunds`). Sent once: an answer that never
    /// came is looked up with `find_refund`.
    fn request_refund(&self, ask: &RefundAsk<'_>) -> ServerResult<ServerRefund> {
        Err(no_refunds(self.name(), ask.invoice_id))
    }

    /// The refund a request whose answer never arrived made, if any (by its key).
    fn find_refund(&self, ask: &RefundAsk<'_>) -> ServerResult<Option<ServerRefund>> {
        Err(no_refunds(self.name(), ask.invoice_id))
    }

    /// Refund `id`, freshly read.
    fn fetch_refund(&self, id: &str) -> ServerResult<ServerRefund> {
        Err(no_refunds(self.name(), id))
    }

    /// Every refund the server holds for invoice `invoice_id`, ours and those made in its
    /// dashboard (needs the refund credentials, like a request).
    fn refunds_of(&self, invoice_id: &str) -> ServerResult<Vec<ServerRefund>> {
        Err(no_refunds(self.name(), invoice_id))
    }

    /// Every refund the server holds for these invoices (`audit`): each an id and whether
    /// a refund is known of (the server listed one, or one was asked for here). By default
    /// the known ones are read one by one.
    fn refunds_among(&self, invoices: &[(&str, bool)]) -> ServerResult<Vec<ServerRefund>> {
        let mut all = Vec::new();
        for (id, _) in invoices.iter().filter(|(_, known)| *known) {
            all.extend(self.refunds_of(id)?);
        }
        Ok(all)
    }

    /// Cancels refund `id` (while the server still allows it).
    fn cancel_refund(&self, id: &str) -> ServerResult<ServerRefund> {
        Err(no_refunds(self.name(), id))
    }
}

fn no_refunds(server: &str, id: &str) -> ServerError {
    ServerError::Refused {
        words: format!("{server} refunds are not made through this add-on"),
        cause: anyhow::anyhow!(
            "{server} refunds are not made through this add-on (yet): refund {id} in {server} itself"
        ),
    }
}

/// A refund to ask for.
#[derive(Debug, Clone)]
pub struct RefundAsk<'a> {
    /// The server's invoice id.
    pub invoice_id: &'a str,
    /// What the invoice was made with (its credential).
    pub order: &'a NewInvoice,
    pub amount: Decimal,
    pub currency: &'a str,
    /// The request's own key (BitPay's `guid`).
    pub key: &'a str,
    pub reason: Option<&'a str>,
}

/// A refund as a payment server reports it, normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerRefund {
    pub id: String,
    /// The server's invoice id.
    pub invoice_id: String,
    /// The server's own word ("created", "success", "canceled").
    pub words: String,
    pub state: crate::domain::RefundState,
    pub amount: Option<Decimal>,
    /// The currency of `amount` (a refund made in BTCPay's dashboard may be in the coin).
    pub currency: String,
    /// The request key it was made with, when it carries one (ours, or none).
    pub key: Option<String>,
    /// Where the payer claims it, when the server hands one out (BTCPay).
    pub claim_link: Option<String>,
}
