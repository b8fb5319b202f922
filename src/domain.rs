//! The domain: the Splynx documents paid, the invoice a checkout makes and keeps (what was
//! asked of the payment server, where it started, the terms its settlement follows) and
//! where it stands on our side. Plain data over the settings' types; no I/O. Longer than 500
//! lines because the test-only example record sits at its end.

use std::str::FromStr;

use rust_decimal::Decimal;

use crate::config::{Config, ConfigError, CreditOn, ServerKind, StatementGrouping};
pub use crate::fee::AppliedFee;
use crate::secret::Secret;

mod refund;
pub use refund::{
    check_refund, made_elsewhere, refundable_left, RefundRecord, RefundRefusal, RefundState,
};

/// Where the customer started a checkout. A BitPay invoice is handed out again only to
/// the same origin: a direct link's carries no name or e-mail and returns to the link, a
/// portal's shows the customer and returns to the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The portal, logged in.
    Portal,
    /// A direct pay link from an e-mail, with no session: whoever holds the link sees only
    /// the document's number and amount, so BitPay gets no name or e-mail address to show,
    /// and the customer returns to the link (which then says paid or in progress).
    DirectLink,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Portal => "portal",
            Origin::DirectLink => "link",
        }
    }

    pub fn parse(text: &str) -> Option<Origin> {
        [Origin::Portal, Origin::DirectLink]
            .into_iter()
            .find(|o| o.as_str() == text)
    }
}

/// What settlement needs, decided at checkout and stored with the invoice (and in its
/// posData, for a record rebuilt from BitPay): a setting changed or broken afterwards
/// never changes how money already received is credited and booked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementTerms {
    /// The Splynx payment method of the customer's partner.
    pub payment_method_id: i64,
    pub credit_on: CreditOn,
    pub statements: StatementGrouping,
    /// The fee transaction's category and description (used only when a fee was charged).
    pub fee_category: i64,
    pub fee_message: String,
}

impl SettlementTerms {
    /// The terms `settings` (one partner's) give; refused while any of them is wrong.
    pub fn of(settings: &Config) -> Result<SettlementTerms, ConfigError> {
        const KEYS: [&str; 5] = [
            "splynx.payment_method_id",
            "bitpay.credit_on",
            "statements.group",
            "fee.category",
            "fee.message",
        ];
        let wrong: Vec<_> = settings
            .problems
            .iter()
            .filter(|p| KEYS.contains(&p.key.as_str()))
            .cloned()
            .collect();
        if !wrong.is_empty() {
            return Err(settings.problems_error(wrong));
        }
        Ok(SettlementTerms {
            payment_method_id: settings.splynx.payment_method_id,
            credit_on: settings.bitpay.credit_on,
            statements: settings.statements,
            fee_category: settings.fee.category,
            fee_message: settings.fee.message.clone(),
        })
    }

    /// As posData carries them (`checkout`), and back (`recovery`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "payment_method_id": self.payment_method_id,
            "credit_on": self.credit_on.as_str(),
            "statements": self.statements.as_str(),
            "fee_category": self.fee_category,
            "fee_message": self.fee_message,
        })
    }

    pub fn from_json(value: &serde_json::Value) -> Option<SettlementTerms> {
        let text = |key: &str| value.get(key)?.as_str();
        let id = |key: &str| value.get(key)?.as_i64().filter(|id| *id > 0);
        Some(SettlementTerms {
            payment_method_id: id("payment_method_id")?,
            credit_on: CreditOn::parse(text("credit_on")?)?,
            statements: StatementGrouping::parse(text("statements")?)?,
            fee_category: id("fee_category")?,
            fee_message: text("fee_message")
                .filter(|m| (1..=200).contains(&m.chars().count()))?
                .to_string(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    Invoice,
    Proforma,
    Refill,
}

impl DocKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Invoice => "invoice",
            DocKind::Proforma => "proforma",
            DocKind::Refill => "refill",
        }
    }
}

impl FromStr for DocKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<DocKind, String> {
        match s {
            "invoice" => Ok(DocKind::Invoice),
            "proforma" => Ok(DocKind::Proforma),
            "refill" => Ok(DocKind::Refill),
            other => Err(format!("unknown document kind {other}")),
        }
    }
}

/// Where a stored invoice stands on our side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// Saved before `POST /invoices`; BitPay may or may not have it (recover by guid).
    Creating,
    /// Known to BitPay, not yet paid and confirmed.
    Open,
    /// A Splynx payment is about to be made; finish by looking it up first.
    Crediting,
    /// A payment POST was sent and its outcome is unknown (no reply, 5xx): only looked up
    /// until the grace period has passed, never sent again blindly.
    Sent,
    Credited,
    /// Expired, declined or underpaid at BitPay: nothing to credit.
    Expired,
    /// Needs the admin: mismatch, Splynx refused the payment, duplicates, paid late, ...
    Review,
    /// Invalid, declined or refunded at BitPay after we credited it: held for the admin.
    Reversed,
    /// A held record the admin has dealt with (`splynx-bitpay resolve`).
    Resolved,
}

impl Settlement {
    pub fn as_str(self) -> &'static str {
        match self {
            Settlement::Creating => "creating",
            Settlement::Open => "open",
            Settlement::Crediting => "crediting",
            Settlement::Sent => "sent",
            Settlement::Credited => "credited",
            Settlement::Expired => "expired",
            Settlement::Review => "review",
            Settlement::Reversed => "reversed",
            Settlement::Resolved => "resolved",
        }
    }

    /// For people: what the state means.
    pub fn describe(self) -> &'static str {
        match self {
            Settlement::Creating => "being created at BitPay",
            Settlement::Open => "waiting for payment",
            Settlement::Crediting => "being credited in Splynx",
            Settlement::Sent => "payment sent to Splynx, outcome unknown",
            Settlement::Credited => "credited",
            Settlement::Expired => "expired, nothing to credit",
            Settlement::Review => "held for review",
            Settlement::Reversed => "reversed after credit",
            Settlement::Resolved => "resolved by the admin",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            Settlement::Credited
                | Settlement::Expired
                | Settlement::Review
                | Settlement::Reversed
                | Settlement::Resolved
        )
    }

    /// Held until the admin resolves it.
    pub fn needs_admin(self) -> bool {
        matches!(self, Settlement::Review | Settlement::Reversed)
    }
}

impl FromStr for Settlement {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Settlement, String> {
        Ok(match s {
            "creating" => Settlement::Creating,
            "open" => Settlement::Open,
            "crediting" => Settlement::Crediting,
            "sent" => Settlement::Sent,
            "credited" => Settlement::Credited,
            "expired" => Settlement::Expired,
            "review" => Settlement::Review,
            "reversed" => Settlement::Reversed,
            "resolved" => Settlement::Resolved,
            other => return Err(format!("unknown settlement state {other}")),
        })
    }
}

/// What settlement needs to know of an invoice's state, whichever server reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum InvoiceStatus {
    /// Waiting for (the rest of) the payment; may still be paid.
    Open,
    /// Paid in full, not yet confirmed on the chain.
    PaidUnconfirmed,
    /// Paid and confirmed as far as the merchant asked (BitPay's `transactionSpeed`).
    PaidConfirmed,
    /// Final at the server: it will not take the payment back on its own.
    Final,
    /// Marked final by hand at the server (BTCPay's `Settled`/`Marked`): an admin's word,
    /// with no proof that anything was paid. Held for the admin, never credited.
    MarkedFinal,
    /// Not paid in time (or underpaid and refunded); never credited.
    Expired,
    /// Paid after it expired: never settles automatically; the admin decides.
    ExpiredPaidLate,
    /// Marked invalid (a payment not confirmed in time, or by hand): may still complete
    /// before a credit; after one, it is a reversal.
    Invalid,
    /// Declined or reversed by the server (refunded, never confirmed).
    Reversed,
    /// A status this add-on does not know: held for the admin, never credited.
    #[default]
    Unknown,
}

impl InvoiceStatus {
    /// How it is stored (migration 16).
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Open => "open",
            InvoiceStatus::PaidUnconfirmed => "paid-unconfirmed",
            InvoiceStatus::PaidConfirmed => "paid-confirmed",
            InvoiceStatus::Final => "final",
            InvoiceStatus::MarkedFinal => "marked-final",
            InvoiceStatus::Expired => "expired",
            InvoiceStatus::ExpiredPaidLate => "expired-paid-late",
            InvoiceStatus::Invalid => "invalid",
            InvoiceStatus::Reversed => "reversed",
            InvoiceStatus::Unknown => "unknown",
        }
    }

    pub fn parse(text: &str) -> InvoiceStatus {
        [
            InvoiceStatus::Open,
            InvoiceStatus::PaidUnconfirmed,
            InvoiceStatus::PaidConfirmed,
            InvoiceStatus::Final,
            InvoiceStatus::MarkedFinal,
            InvoiceStatus::Expired,
            InvoiceStatus::ExpiredPaidLate,
            InvoiceStatus::Invalid,
            InvoiceStatus::Reversed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
        .unwrap_or(InvoiceStatus::Unknown)
    }

    /// A payment for it has reached the server (the document's checkout is under way).
    pub fn is_paying(self) -> bool {
        matches!(
            self,
            InvoiceStatus::PaidUnconfirmed
                | InvoiceStatus::PaidConfirmed
                | InvoiceStatus::Final
                | InvoiceStatus::Invalid
        )
    }

    /// Paid and confirmed at least as far as crediting on `confirmed` needs.
    pub fn is_confirmed(self) -> bool {
        matches!(self, InvoiceStatus::PaidConfirmed | InvoiceStatus::Final)
    }

    /// Nothing (more) can be paid on it.
    pub fn is_over(self) -> bool {
        matches!(
            self,
            InvoiceStatus::Expired | InvoiceStatus::Invalid | InvoiceStatus::Reversed
        )
    }
}

/// The server's own words for a status: kept for the journal, `show` and messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusWords {
    pub status: String,
    /// BitPay's `exceptionStatus` (`paidPartial`, `paidLate`, ...), BTCPay's
    /// `additionalStatus`; `None` when there is none.
    pub exception: Option<String>,
}

impl std::fmt::Display for StatusWords {
    /// "confirmed (paidPartial)".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.status)?;
        if let Some(exception) = &self.exception {
            write!(f, " ({exception})")?;
        }
        Ok(())
    }
}

/// An invoice's id at the payment server (BitPay's `Hpqc62dfE1ZjzeeH4kEycF`): what the
/// journal, receipts and webhooks name it by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct InvoiceId(String);

impl InvoiceId {
    pub fn new(id: impl Into<String>) -> InvoiceId {
        InvoiceId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for InvoiceId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for InvoiceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for InvoiceId {
    fn from(id: String) -> InvoiceId {
        InvoiceId(id)
    }
}

impl From<&str> for InvoiceId {
    fn from(id: &str) -> InvoiceId {
        InvoiceId(id.to_string())
    }
}

#[derive(Debug, Clone)]
pub struct InvoiceRecord {
    pub id: i64,
    /// What was asked of BitPay: saved before the request, never changed after.
    pub order: NewInvoice,
    /// The payment server's id, once it answered the create.
    pub bitpay_id: Option<InvoiceId>,
    pub url: Option<String>,
    /// The payment server's last status, in its words and normalised.
    pub words: StatusWords,
    pub status: InvoiceStatus,
    pub settlement: Settlement,
    pub note: Option<String>,
    pub expires_at: Option<i64>,
    pub splynx_payment_id: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// When a payment POST was last sent (cleared when Splynx provably refused it).
    pub payment_sent_at: Option<i64>,
    pub payment_attempts: i64,
    pub credited_at: Option<i64>,
    /// Credited and re-checked by `reconcile` until BitPay says complete, or until then.
    pub watch_until: Option<i64>,
    /// Every Splynx payment found with this receipt number when there was more than one.
    pub duplicate_payment_ids: Vec<i64>,
    /// When BitPay was last asked about it.
    pub fetched_at: Option<i64>,
}

/// A new invoice row, saved before BitPay is asked to create it.
#[derive(Debug, Clone)]
pub struct NewInvoice {
    pub guid: String,
    pub environment: String,
    pub facade: String,
    pub token: Secret,
    pub doc_kind: DocKind,
    pub doc_id: Option<i64>,
    pub doc_number: Option<String>,
    pub customer_id: i64,
    pub price: Decimal,
    pub currency: String,
    pub order_id: String,
    /// The customer's Splynx partner (whose settings apply), when known.
    pub partner_id: Option<i64>,
    /// The service fee included in `price`, if any.
    pub fee: Option<AppliedFee>,
    /// Where the checkout started (`None`: before this was recorded, the portal).
    pub origin: Option<Origin>,
    /// What settlement needs (`None`: recorded before terms were stored).
    pub terms: Option<SettlementTerms>,
}

impl NewInvoice {
    /// The payment server that made it (records keep it in `environment`: BitPay's
    /// "test"/"prod", or "btcpay").
    pub fn server(&self) -> ServerKind {
        if self.environment == "btcpay" {
            ServerKind::Btcpay
        } else {
            ServerKind::BitPay
        }
    }

    /// The payment server that made it, for people.
    pub fn server_name(&self) -> &'static str {
        self.server().name()
    }

    /// The terms its checkout stored; for a record from before terms were stored, today's
    /// settings of the customer's partner.
    pub fn terms_or(&self, config: &Config) -> Result<SettlementTerms, ConfigError> {
        match &self.terms {
            Some(terms) => Ok(terms.clone()),
            None => SettlementTerms::of(config.for_partner(self.partner_id)),
        }
    }

    /// The document's amount (or the top-up entered): the price without the fee.
    pub fn due(&self) -> Decimal {
        self.price - self.fee.map_or(Decimal::ZERO, |f| f.total())
    }

    /// Where the checkout started; the portal for records from before origins.
    pub fn origin(&self) -> Origin {
        self.origin.unwrap_or(Origin::Portal)
    }

    /// The Splynx invoice a payment for this links to.
    pub fn invoice_id(&self) -> Option<i64> {
        (self.doc_kind == DocKind::Invoice)
            .then_some(self.doc_id)
            .flatten()
    }

    /// "invoice #202401000001", "proforma #2024000001", "balance top-up".
    pub fn document_label(&self) -> String {
        match (self.doc_kind, &self.doc_number) {
            (DocKind::Refill, _) => "balance top-up".to_string(),
            (kind, Some(number)) => format!("{} #{number}", kind.as_str()),
            (kind, None) => kind.as_str().to_string(),
        }
    }

    /// The Splynx proforma invoice (`request_id`) a payment for this links to.
    pub fn request_id(&self) -> Option<i64> {
        (self.doc_kind == DocKind::Proforma)
            .then_some(self.doc_id)
            .flatten()
    }
}

/// Why a record is held for the admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldKind {
    /// Mismatch, Splynx refused the payment, unknown status, underpaid but confirmed, ...
    Review,
    /// More than one Splynx payment carries this invoice's receipt number.
    Duplicate,
    /// Paid after the invoice expired.
    PaidLate,
    /// Invalid, declined or refunded after the credit.
    Reversed,
}

impl HoldKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldKind::Review => "review",
            HoldKind::Duplicate => "duplicate",
            HoldKind::PaidLate => "paid late",
            HoldKind::Reversed => "reversed after credit",
        }
    }

    /// The settlement state a hold of this kind puts a record in.
    pub fn settlement(self) -> Settlement {
        match self {
            HoldKind::Reversed => Settlement::Reversed,
            _ => Settlement::Review,
        }
    }
}

#[cfg(test)]
impl InvoiceRecord {
    /// A stored invoice for unit tests: Splynx invoice 101 (number 202401000001) of
    /// customer 42, 51.61 USD, that BitPay last called `bitpay_status`.
    pub fn example(id: i64, settlement: Settlement, bitpay_status: &str) -> InvoiceRecord {
        InvoiceRecord {
            id,
            order: NewInvoice {
                guid: format!("g{id}"),
                environment: "test".into(),
                facade: "pos".into(),
                token: Secret::new("t"),
                doc_kind: DocKind::Invoice,
                doc_id: Some(101),
                doc_number: Some("202401000001".into()),
                customer_id: 42,
                price: Decimal::new(5161, 2),
                currency: "USD".into(),
                order_id: format!("o{id}"),
                partner_id: None,
                fee: None,
                origin: Some(Origin::Portal),
                terms: Some(SettlementTerms {
                    payment_method_id: 7,
                    credit_on: CreditOn::Confirmed,
                    statements: StatementGrouping::Month,
                    fee_category: 5,
                    fee_message: "BitPay fee".into(),
                }),
            },
            bitpay_id: Some(format!("B{id}").into()),
            url: None,
            words: StatusWords {
                status: bitpay_status.into(),
                exception: None,
            },
            status: crate::bitpay::server::status_of(bitpay_status, None),
            settlement,
            note: None,
            expires_at: None,
            splynx_payment_id: None,
            created_at: 0,
            updated_at: 0,
            payment_sent_at: None,
            payment_attempts: 0,
            credited_at: None,
            watch_until: None,
            duplicate_payment_ids: Vec::new(),
            fetched_at: None,
        }
    }
}
