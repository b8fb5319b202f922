//! The checkout: which Splynx document a customer pays (theirs, unpaid), and the one
//! payment-server invoice for it — created, handed out again while it is still payable, or
//! recovered when the server's answer to the create never arrived. Longer than 500 lines
//! because the document checks, reuse rules and the create-and-recover path are one flow.

use std::time::Duration;

use anyhow::{Context as _, Result};
use rust_decimal::Decimal;

use crate::config::Config;
use crate::context::Context;
pub use crate::domain::Origin;
use crate::fee::{self, Charge};
use crate::gateway::{self, Key, Need};
use crate::money;
use crate::order_id::{self, OrderKey, OrderRef};
use crate::server::{
    CreateDetails, Credential, InvoiceStatus, Payer, PaymentServer, ServerError, ServerInvoice,
};
use crate::splynx::model::{Customer, FinanceDocument};
use crate::splynx::{SplynxClient, SplynxError};
use crate::store::{DocKind, InvoiceRecord, NewInvoice, Settlement, SettlementTerms};
use crate::{clock, lock, recovery};

/// A stored invoice with less time left than this is not handed out again.
const MIN_REMAINING_MS: i64 = 5 * 60 * 1000;

/// What the customer asked to pay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Invoice(i64),
    InvoiceNumber(String),
    Proforma(i64),
    ProformaNumber(String),
    Refill(Decimal),
}

/// A payable Splynx document, checked to belong to the customer and to be unpaid.
#[derive(Debug, Clone)]
pub struct Document {
    pub kind: DocKind,
    pub id: Option<i64>,
    pub number: Option<String>,
    /// What the customer pays at BitPay: the document's amount, plus the service fee.
    pub price: Decimal,
    /// The document's amount and the fee, part by part.
    pub charge: Charge,
    /// What the fee is called (its text in Splynx), as the checkout that prices it says.
    pub fee_label: String,
    pub description: String,
}

/// A checkout's result: the stored record, the server's invoice, and whether an open one
/// was handed out again.
pub struct Checkout {
    pub record: InvoiceRecord,
    pub invoice: ServerInvoice,
    pub reused: bool,
}

/// The customer, and the settings that apply to them (their partner's, when the Modules
/// list has Partners settings).
pub fn customer(ctx: &Context, customer_id: i64) -> Result<(Customer, &Config)> {
    let customer = ctx
        .splynx()
        .customer(customer_id)
        .map_err(|e| not_found_as(e, Refusal::NoSuchCustomer(customer_id)))?;
    let settings = checkout_settings(ctx, customer.partner_id)?;
    Ok((customer, settings))
}

/// The settings of a partner's customers, every one of them valid: a wrong value refuses
/// the checkout (naming the field), never a credit.
fn checkout_settings(ctx: &Context, partner: Option<i64>) -> Result<&Config> {
    let settings = ctx.config.for_partner(partner);
    settings.ensure_valid()?;
    Ok(settings)
}

/// The customer's payable document, checked, with the service fee of their partner (what
/// `--check` shows).
pub fn check(
    ctx: &Context,
    settings: &Config,
    request: &Request,
    customer: &Customer,
) -> Result<Document> {
    let document = check_splynx(ctx, settings, request, customer)?;
    as_it_stands(ctx, document, customer.id, Origin::Portal)
}

/// What `check` finds in Splynx: the customer's document, priced with today's fee.
fn check_splynx(
    ctx: &Context,
    settings: &Config,
    request: &Request,
    customer: &Customer,
) -> Result<Document> {
    let currency = &settings.bitpay.currency;
    let resolved = match request {
        Request::Refill(amount) => (
            DocKind::Refill,
            None,
            None,
            *amount,
            // What BitPay's checkout page shows the payer: no customer number.
            "Balance top-up".to_string(),
        ),
        _ => {
            let (kind, label, candidates) = fetch_documents(&ctx.splynx(), request)?;
            // A foreign document gets the same words as a missing one: nothing about other
            // customers' documents is revealed.
            let document = candidates
                .into_iter()
                .find(|d| d.customer_id == customer.id)
                .ok_or_else(|| not_found(label, request, " for your account"))?;
            payable(kind, label, document, currency)?
        }
    };
    Ok(priced(resolved, settings))
}

/// A direct pay link's document (from an e-mail, no portal session): its customer is the
/// document's, and the link works only when that customer's partner grants access to
/// unauthorized customers (`[direct_pay] enabled`). A document of a partner without it
/// reads exactly like one that does not exist.
pub fn direct<'c>(ctx: &'c Context, request: &Request) -> Result<(Customer, &'c Config, Document)> {
    if matches!(request, Request::Refill(_)) {
        return Err(Refusal::TopUpHasNoLink.into());
    }
    let splynx = ctx.splynx();
    let (kind, label, candidates) = fetch_documents(&splynx, request)?;
    let missing = || not_found(label, request, "");
    // A number more than one customer's documents carry names none of them.
    let [document] = <[FinanceDocument; 1]>::try_from(candidates).map_err(|_| missing())?;
    let customer = match splynx.customer(document.customer_id) {
        Ok(customer) => customer,
        Err(SplynxError::NotFound { .. }) => return Err(missing()),
        Err(e) => return Err(e.into()),
    };
    let settings = checkout_settings(ctx, customer.partner_id)?;
    if !settings.direct_pay_links {
        return Err(missing());
    }
    let resolved = payable(kind, label, document, &settings.bitpay.currency)?;
    let document = priced(resolved, settings);
    let document = as_it_stands(ctx, document, customer.id, Origin::DirectLink)?;
    Ok((customer, settings, document))
}

/// The document as the customer would pay it now: a payment already under way refuses
/// (the page says so instead of offering to pay again), and an open BitPay invoice that
/// would be handed out again is what is shown, fee and all.
fn as_it_stands(
    ctx: &Context,
    mut document: Document,
    customer_id: i64,
    origin: Origin,
) -> Result<Document> {
    let records = ctx
        .store
        .unsettled_for_document(document.kind, document.id, customer_id)?;
    let found = classify_existing(
        &records,
        document.kind,
        document.charge.amount,
        origin,
        clock::now_ms(),
    );
    match found {
        Existing::InProgress(id) | Existing::OpenElsewhere(id) => {
            let record = ctx.store.invoice(id)?.context("stored invoice vanished")?;
            Err(refusal(ctx, &found, &document, &record))
        }
        Existing::Candidate(id) => {
            let record = ctx.store.invoice(id)?.context("stored invoice vanished")?;
            document.charge.fee = record.order.fee;
            document.price = record.order.price;
            if let Some(terms) = &record.order.terms {
                document.fee_label = terms.fee_message.clone();
            }
            Ok(document)
        }
        Existing::Recover(_) | Existing::None => Ok(document),
    }
}

/// Why a document cannot be paid now because of a BitPay invoice already made for it.
fn refusal(
    ctx: &Context,
    found: &Existing,
    document: &Document,
    record: &InvoiceRecord,
) -> anyhow::Error {
    let document = document.description.clone();
    match found {
        Existing::OpenElsewhere(_) => Refusal::OpenElsewhere {
            document,
            until: record
                .expires_at
                .map_or("it expires".into(), clock::datetime_of),
        },
        _ => Refusal::InProgress {
            document,
            server: ctx.config.server.name(),
            invoice: record
                .bitpay_id
                .as_ref()
                .map_or_else(|| "?".into(), ToString::to_string),
            status: record.words.status.clone(),
        },
    }
    .into()
}

/// The document with the service fee of `settings` on top.
fn priced((kind, id, number, amount, description): Resolved, settings: &Config) -> Document {
    let charge = fee::charge(amount, &settings.fee, &settings.bitpay.currency);
    Document {
        kind,
        id,
        number,
        price: charge.total(),
        charge,
        fee_label: settings.fee.message.clone(),
        description,
    }
}

/// The direct pay link of a document, by number: where its payer returns from BitPay.
fn direct_link(splynx_url: &str, document: &Document) -> String {
    let page = match document.kind {
        DocKind::Proforma => "direct-pay-proforma",
        _ => "direct-pay-invoice",
    };
    let number: String =
        url::form_urlencoded::byte_serialize(document.number.as_deref().unwrap_or("").as_bytes())
            .collect();
    format!("{splynx_url}/bitpay/{page}?item_id={number}")
}

/// A payable document: kind, id, number, amount due, description.
type Resolved = (DocKind, Option<i64>, Option<String>, Decimal, String);

/// Creates the BitPay invoice for the document, or hands out the open one still payable,
/// under the document's lock so two clicks never make two invoices.
pub fn checkout(
    ctx: &Context,
    settings: &Config,
    customer: &Customer,
    document: &Document,
    origin: Origin,
    expected_total: Option<Decimal>,
) -> Result<Checkout> {
    let gateway = gateway::open(ctx, Need::Invoices, Key::CreateIfMissing)?;
    let credential = gateway.server.credential()?;
    let doc_key = format!(
        "{}:{}:{}",
        document.kind.as_str(),
        document.id.unwrap_or_default(),
        customer.id
    );
    let wait = settings.bitpay.timeout * 3 + Duration::from_secs(5);
    let _lock = lock::acquire(
        &settings.data_dir,
        &lock::bucket_name("document", &doc_key),
        "this document's checkout",
        wait,
    )?;
    let creator = Creator {
        ctx,
        settings,
        server: &*gateway.server,
        credential: &credential,
        order_key: &gateway.order_key,
        origin,
        expected_total,
    };
    let (record, invoice, reused) = creator.find_or_create(document, customer)?;
    Ok(Checkout {
        record,
        invoice,
        reused,
    })
}

/// What to do given the invoices already stored for the document (newest first).
#[derive(Debug, Clone, PartialEq)]
enum Existing {
    /// A previous attempt saved its guid but never learned BitPay's answer.
    Recover(i64),
    /// An open invoice for the same amount due, from the same origin, that may still be
    /// paid: check it, then reuse it (whatever the fee is today: the customer saw it).
    Candidate(i64),
    /// A payment for this document is already under way at BitPay.
    InProgress(i64),
    /// An open invoice for the document, made from the other origin (portal or direct
    /// link): not handed out (it carries or lacks the customer's name and returns
    /// elsewhere), and no second payable invoice is made for one document.
    OpenElsewhere(i64),
    None,
}

/// Reuse is keyed on the document's amount due and the origin, never on the fee.
fn classify_existing(
    records: &[InvoiceRecord],
    kind: DocKind,
    due: Decimal,
    origin: Origin,
    now: i64,
) -> Existing {
    for record in records {
        let same_amount = record.order.due() == due;
        let same_origin = record.order.origin() == origin;
        match record.settlement {
            Settlement::Creating if same_amount && same_origin => {
                return Existing::Recover(record.id)
            }
            Settlement::Crediting | Settlement::Sent if kind != DocKind::Refill => {
                return Existing::InProgress(record.id)
            }
            Settlement::Open => {
                if record.status.is_paying() && kind != DocKind::Refill {
                    return Existing::InProgress(record.id);
                }
                let time_left = record.expires_at.map_or(0, |e| e - now);
                if same_amount
                    && record.status == InvoiceStatus::Open
                    && time_left >= MIN_REMAINING_MS
                {
                    return if same_origin {
                        Existing::Candidate(record.id)
                    } else {
                        Existing::OpenElsewhere(record.id)
                    };
                }
            }
            _ => {}
        }
    }
    Existing::None
}

/// Splynx "not found" becomes the customer-facing refusal; everything else passes through.
fn not_found_as(error: SplynxError, refusal: Refusal) -> anyhow::Error {
    match error {
        SplynxError::NotFound { .. } => refusal.into(),
        other => other.into(),
    }
}

/// Splynx "not found" is just "no such document".
fn found(result: Result<FinanceDocument, SplynxError>) -> Result<Option<FinanceDocument>> {
    match result {
        Ok(document) => Ok(Some(document)),
        Err(SplynxError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The documents a request names, as Splynx has them: by id the one (if it exists), by
/// number every one with that number. Not for a top-up.
fn fetch_documents(
    splynx: &SplynxClient<'_>,
    request: &Request,
) -> Result<(DocKind, &'static str, Vec<FinanceDocument>)> {
    let with_number = |list: Vec<FinanceDocument>, number: &str| -> Vec<FinanceDocument> {
        list.into_iter().filter(|d| d.number == number).collect()
    };
    Ok(match request {
        Request::Invoice(id) => (
            DocKind::Invoice,
            "Invoice",
            found(splynx.invoice(*id))?.into_iter().collect(),
        ),
        Request::InvoiceNumber(n) => (
            DocKind::Invoice,
            "Invoice",
            with_number(splynx.invoices_by_number(n)?, n),
        ),
        Request::Proforma(id) => (
            DocKind::Proforma,
            "Proforma invoice",
            found(splynx.proforma(*id))?.into_iter().collect(),
        ),
        Request::ProformaNumber(n) => (
            DocKind::Proforma,
            "Proforma invoice",
            with_number(splynx.proformas_by_number(n)?, n),
        ),
        Request::Refill(_) => unreachable!("a top-up names no Splynx document"),
    })
}

/// "Invoice #N was not found" (+ `scope`).
fn not_found(label: &'static str, request: &Request, scope: &'static str) -> anyhow::Error {
    Refusal::NoSuchDocument {
        label,
        request: describe_request(request),
        scope,
    }
    .into()
}

/// The document checked to be payable now: unpaid, not cancelled, something due in the
/// currency's precision.
fn payable(
    kind: DocKind,
    label: &'static str,
    document: FinanceDocument,
    currency: &str,
) -> Result<Resolved> {
    let number = document.number.clone();
    let refused = match document.status.as_str() {
        "paid" => Some(Refusal::AlreadyPaid { label, number }),
        "deleted" => Some(Refusal::Cancelled { label, number }),
        "pending" => Some(Refusal::BeingProcessed { label, number }),
        _ if document.amount_due() <= Decimal::ZERO => Some(Refusal::NothingDue { label, number }),
        _ => None,
    };
    if let Some(refusal) = refused {
        return Err(refusal.into());
    }
    let number = &document.number;
    Ok((
        kind,
        Some(document.id),
        Some(document.number.clone()),
        round_for(document.amount_due(), currency)?,
        format!("{label} #{number}"),
    ))
}

/// Splynx keeps 4 decimals; BitPay takes the currency's. A due amount with more precision
/// than the currency has cannot be charged exactly, so it is refused, not rounded.
fn round_for(amount: Decimal, currency: &str) -> Result<Decimal> {
    let places = money::currency_decimals(currency);
    let rounded = amount.round_dp(places);
    if rounded != amount {
        return Err(Refusal::TooPrecise {
            amount: amount.to_string(),
            currency: currency.to_string(),
            places,
        }
        .into());
    }
    Ok(rounded)
}

fn describe_request(request: &Request) -> String {
    match request {
        Request::Invoice(id) | Request::Proforma(id) => id.to_string(),
        Request::InvoiceNumber(n) | Request::ProformaNumber(n) => format!("#{n}"),
        Request::Refill(a) => a.to_string(),
    }
}

struct Creator<'a> {
    ctx: &'a Context,
    /// The customer's settings (their partner's).
    settings: &'a Config,
    server: &'a dyn PaymentServer,
    /// What new invoices are made with.
    credential: &'a Credential,
    order_key: &'a OrderKey,
    origin: Origin,
    /// The total the page showed, if it showed one: nothing else is charged.
    expected_total: Option<Decimal>,
}

impl Creator<'_> {
    /// Runs under the document lock.
    fn find_or_create(
        &self,
        document: &Document,
        customer: &Customer,
    ) -> Result<(InvoiceRecord, ServerInvoice, bool)> {
        let store = &self.ctx.store;
        let records = store.unsettled_for_document(document.kind, document.id, customer.id)?;
        let found = classify_existing(
            &records,
            document.kind,
            document.charge.amount,
            self.origin,
            clock::now_ms(),
        );
        match found {
            Existing::Recover(id) => {
                let record = store.invoice(id)?.context("stored invoice vanished")?;
                let recovered = recovery::recover_created(
                    store,
                    self.server,
                    &record,
                    "after an unanswered request",
                    true,
                )?;
                match recovered {
                    Some(found) => {
                        if found.status == InvoiceStatus::Open {
                            return Ok((record, found, true));
                        }
                        // Recovered but no longer payable: decide afresh.
                        self.find_or_create(document, customer)
                    }
                    None => {
                        store.journal(
                            None,
                            "create",
                            &format!(
                                "guid {} unknown to {}; creating it again",
                                record.order.guid,
                                self.server.name()
                            ),
                            None,
                            clock::now_ms(),
                        )?;
                        let invoice = self.post(&record, document, customer)?;
                        Ok((record, invoice, false))
                    }
                }
            }
            Existing::Candidate(id) => {
                let record = store.invoice(id)?.context("stored invoice vanished")?;
                let bitpay_id = record
                    .bitpay_id
                    .clone()
                    .context("open invoice without a BitPay id")?;
                let fresh = self.server.fetch(&bitpay_id, &record.order)?;
                store.update_status(record.id, &fresh, clock::now_ms())?;
                let time_left = fresh.expires_at.map_or(0, |e| e - clock::now_ms());
                if fresh.status == InvoiceStatus::Open && time_left >= MIN_REMAINING_MS {
                    self.refuse_other_total(record.order.price)?;
                    store.journal(
                        Some(&bitpay_id),
                        "create",
                        "reused for another click on the same document",
                        None,
                        clock::now_ms(),
                    )?;
                    return Ok((record, fresh, true));
                }
                if fresh.status == InvoiceStatus::Expired {
                    store.set_settlement(
                        record.id,
                        Settlement::Expired,
                        Some("expired unpaid"),
                        clock::now_ms(),
                    )?;
                }
                self.find_or_create(document, customer)
            }
            Existing::InProgress(id) | Existing::OpenElsewhere(id) => {
                let record = store.invoice(id)?.context("stored invoice vanished")?;
                Err(refusal(self.ctx, &found, document, &record))
            }
            Existing::None => {
                // A new invoice is priced with today's fee.
                let charge = fee::charge(
                    document.charge.amount,
                    &self.settings.fee,
                    &self.settings.bitpay.currency,
                );
                self.refuse_other_total(charge.total())?;
                let guid = uuid::Uuid::new_v4().to_string();
                let new = NewInvoice {
                    order_id: order_id::write(
                        OrderRef {
                            kind: document.kind,
                            doc_id: document.id,
                            refill_customer: (document.kind == DocKind::Refill)
                                .then_some(customer.id),
                        },
                        customer.id,
                        &guid,
                        self.order_key,
                    ),
                    guid,
                    environment: self.settings.invoice_environment().to_string(),
                    facade: self.credential.label.clone(),
                    token: self.credential.secret.clone(),
                    doc_kind: document.kind,
                    doc_id: document.id,
                    doc_number: document.number.clone(),
                    customer_id: customer.id,
                    price: charge.total(),
                    currency: self.settings.bitpay.currency.clone(),
                    partner_id: customer.partner_id,
                    fee: charge.fee,
                    origin: Some(self.origin),
                    terms: Some(SettlementTerms::of(self.settings)?),
                };
                // Committed before the request: a timed-out POST is recovered by guid.
                let record = store.insert_invoice(&new, clock::now_ms())?;
                let invoice = self.post(&record, document, customer)?;
                Ok((record, invoice, false))
            }
        }
    }

    fn post(
        &self,
        record: &InvoiceRecord,
        document: &Document,
        customer: &Customer,
    ) -> Result<ServerInvoice> {
        let email = customer.contact_email();
        let description = match (&record.order.fee, &record.order.terms) {
            (Some(_), Some(terms)) => format!("{} + {}", document.description, terms.fee_message),
            _ => document.description.clone(),
        };
        let redirect_url = match self.origin {
            Origin::Portal => format!(
                "{}?order={}",
                self.settings.bitpay.redirect_url, record.order.order_id
            ),
            Origin::DirectLink => direct_link(&self.settings.splynx.url, document),
        };
        let metadata = crate::pos_data::write(&record.order);
        let details = CreateDetails {
            description: &description,
            redirect_url: &redirect_url,
            metadata: &metadata,
            // A direct link's payer is not known: no name, no e-mail.
            payer: (self.origin == Origin::Portal).then(|| Payer {
                name: &customer.name,
                email: email.contains('@').then_some(email),
            }),
            speed: self.settings.transaction_speed(),
        };
        let store = &self.ctx.store;
        let server = self.server.name();
        match self.server.create(&record.order, &details) {
            Ok(invoice) => {
                recovery::record_created(store, record, &invoice, "created")?;
                Ok(invoice)
            }
            Err(error) if error.is_temporary() => {
                log::warn!(
                    "creating {server} invoice {}: {error}; looking it up by {}",
                    record.order.guid,
                    recovery::lookup_key(self.server)
                );
                let recovered = recovery::recover_created(
                    store,
                    self.server,
                    record,
                    "after an unanswered request",
                    true,
                );
                match recovered {
                    Ok(Some(invoice)) => Ok(invoice),
                    _ => {
                        store.journal(
                            None,
                            "create",
                            &format!("guid {}: {error}; left for recovery", record.order.guid),
                            None,
                            clock::now_ms(),
                        )?;
                        Err(anyhow::Error::new(error).context(Refusal::ServerSlow { server }))
                    }
                }
            }
            Err(error) => {
                store.delete_creating(&record.order.guid)?;
                store.journal(
                    None,
                    "create",
                    &format!("guid {}: {server} refused: {error}", record.order.guid),
                    None,
                    clock::now_ms(),
                )?;
                if let ServerError::Authorization(_) = error {
                    return Err(error.into());
                }
                let words = match &error {
                    ServerError::Refused { words, .. } => words.clone(),
                    other => other.to_string(),
                };
                Err(anyhow::Error::new(Refusal::ServerRefused { server, words }).context(error))
            }
        }
    }

    /// The customer is charged exactly what the page showed, or nothing.
    fn refuse_other_total(&self, total: Decimal) -> Result<()> {
        match self.expected_total {
            Some(shown) if shown != total => {
                let currency = &self.settings.bitpay.currency;
                Err(Refusal::AmountChanged {
                    now: money::format_amount(total, currency),
                    shown: money::format_amount(shown, currency),
                    currency: currency.clone(),
                }
                .into())
            }
            _ => Ok(()),
        }
    }
}

mod refusal;
#[cfg(test)]
mod tests;

pub use refusal::Refusal;
