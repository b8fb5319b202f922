//! `create-invoice`: from a Splynx invoice, proforma invoice or top-up amount to a BitPay
//! checkout URL — at most one open BitPay invoice per document and amount.

use std::time::Duration;

use anyhow::{Context as _, Result};
use rust_decimal::Decimal;
use serde_json::json;

use crate::bitpay::model::Invoice as BitPayInvoice;
use crate::bitpay::{BitPayClient, BitPayError};
use crate::cli::CreateInvoiceArgs;
use crate::context::Context;
use crate::exit::{Problem, SUCCESS};
use crate::money::{self, format_amount, json_number};
use crate::order_id::{self, OrderKey, OrderRef};
use crate::pairing;
use crate::splynx::model::{Customer, Invoice, Proforma};
use crate::splynx::{SplynxClient, SplynxError};
use crate::store::{DocKind, InvoiceRecord, NewInvoice, Settlement, TokenRecord};
use crate::{clock, lock};

/// A stored invoice with less time left than this is not handed out again.
const MIN_REMAINING_MS: i64 = 5 * 60 * 1000;

/// What the customer asked to pay.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Request {
    Invoice(i64),
    InvoiceNumber(String),
    Proforma(i64),
    ProformaNumber(String),
    Refill(Decimal),
}

/// A payable Splynx document, checked to belong to the customer and to be unpaid.
#[derive(Debug, Clone)]
struct Document {
    kind: DocKind,
    id: Option<i64>,
    number: Option<String>,
    price: Decimal,
    description: String,
}

/// What to do given the invoices already stored for the document (newest first).
#[derive(Debug, Clone, PartialEq)]
enum Existing {
    /// A previous attempt saved its guid but never learned BitPay's answer.
    Recover(i64),
    /// An open invoice for the same amount that may still be paid: check it, then reuse it.
    Candidate(i64),
    /// A payment for this document is already under way at BitPay.
    InProgress(i64),
    None,
}

fn classify_existing(
    records: &[InvoiceRecord],
    kind: DocKind,
    price: Decimal,
    now: i64,
) -> Existing {
    for record in records {
        let same_amount = record.price == price;
        match record.settlement {
            Settlement::Creating if same_amount => return Existing::Recover(record.id),
            Settlement::Crediting | Settlement::Sent if kind != DocKind::Refill => {
                return Existing::InProgress(record.id)
            }
            Settlement::Open => {
                let paying = matches!(
                    record.bitpay_status.as_str(),
                    "paid" | "confirmed" | "complete" | "invalid"
                );
                if paying && kind != DocKind::Refill {
                    return Existing::InProgress(record.id);
                }
                let time_left = record.expires_at.map_or(0, |e| e - now);
                if same_amount && record.bitpay_status == "new" && time_left >= MIN_REMAINING_MS {
                    return Existing::Candidate(record.id);
                }
            }
            _ => {}
        }
    }
    Existing::None
}

fn bad_input(message: impl Into<String>) -> anyhow::Error {
    Problem::BadInput(message.into()).into()
}

fn parse_id(text: &str, what: &str) -> Result<i64> {
    match text.trim().parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(bad_input(format!("\"{text}\" is not a valid {what} id"))),
    }
}

fn parse_number(text: &str, what: &str) -> Result<String> {
    let number = text.trim();
    if number.is_empty() || number.len() > 64 || !number.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad_input(format!(
            "\"{number}\" is not a valid {what} number"
        )));
    }
    Ok(number.to_string())
}

fn parse_request(args: &CreateInvoiceArgs, ctx: &Context) -> Result<Request> {
    if let Some(id) = &args.invoice {
        return Ok(Request::Invoice(parse_id(id, "invoice")?));
    }
    if let Some(number) = &args.invoice_number {
        return Ok(Request::InvoiceNumber(parse_number(number, "invoice")?));
    }
    if let Some(id) = &args.proforma {
        return Ok(Request::Proforma(parse_id(id, "proforma invoice")?));
    }
    if let Some(number) = &args.proforma_number {
        return Ok(Request::ProformaNumber(parse_number(
            number,
            "proforma invoice",
        )?));
    }
    let text = args.refill.as_deref().unwrap_or_default();
    let currency = &ctx.config.bitpay.currency;
    let amount = money::parse_amount(text.trim(), currency)
        .map_err(|e| bad_input(format!("Top-up amount: {e}")))?;
    let (min, max) = (ctx.config.refill.min, ctx.config.refill.max);
    if amount < min || amount > max {
        return Err(bad_input(format!(
            "Top-up amount must be between {} and {} {currency}",
            format_amount(min, currency),
            format_amount(max, currency)
        )));
    }
    Ok(Request::Refill(amount))
}

/// Splynx "not found" becomes the customer-facing refusal; everything else passes through.
fn not_found_as(error: SplynxError, message: &str) -> anyhow::Error {
    match error {
        SplynxError::NotFound { .. } => Problem::NotFound(message.into()).into(),
        other => other.into(),
    }
}

/// An invoice or proforma invoice, as far as paying it goes.
struct Payable {
    id: i64,
    number: String,
    customer_id: i64,
    status: String,
    /// What is left to pay: an invoice's `due`, a proforma's total.
    amount: Decimal,
}

impl From<Invoice> for Payable {
    fn from(i: Invoice) -> Payable {
        Payable {
            amount: i.amount_due(),
            id: i.id,
            number: i.number,
            customer_id: i.customer_id,
            status: i.status,
        }
    }
}

impl From<Proforma> for Payable {
    fn from(p: Proforma) -> Payable {
        Payable {
            amount: p.total,
            id: p.id,
            number: p.number,
            customer_id: p.customer_id,
            status: p.status,
        }
    }
}

/// Splynx "not found" is just "no such document".
fn found<T: Into<Payable>>(result: Result<T, SplynxError>) -> Result<Option<Payable>> {
    match result {
        Ok(document) => Ok(Some(document.into())),
        Err(SplynxError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn by_number<T: Into<Payable>>(list: Vec<T>, number: &str, customer_id: i64) -> Option<Payable> {
    list.into_iter()
        .map(Into::into)
        .find(|p: &Payable| p.number == number && p.customer_id == customer_id)
}

fn resolve_document(
    splynx: &SplynxClient<'_>,
    request: &Request,
    customer: &Customer,
    currency: &str,
) -> Result<Document> {
    let (kind, label, candidate) = match request {
        Request::Refill(amount) => {
            return Ok(Document {
                kind: DocKind::Refill,
                id: None,
                number: None,
                price: *amount,
                description: format!("Balance top-up, customer #{}", customer.id),
            })
        }
        Request::Invoice(id) => (DocKind::Invoice, "Invoice", found(splynx.invoice(*id))?),
        Request::InvoiceNumber(n) => (
            DocKind::Invoice,
            "Invoice",
            by_number(splynx.invoices_by_number(n)?, n, customer.id),
        ),
        Request::Proforma(id) => (
            DocKind::Proforma,
            "Proforma invoice",
            found(splynx.proforma(*id))?,
        ),
        Request::ProformaNumber(n) => (
            DocKind::Proforma,
            "Proforma invoice",
            by_number(splynx.proformas_by_number(n)?, n, customer.id),
        ),
    };
    // A foreign document gets the same words as a missing one: nothing about other
    // customers' documents is revealed.
    let document = candidate
        .filter(|d| d.customer_id == customer.id)
        .ok_or_else(|| {
            anyhow::Error::from(Problem::NotFound(format!(
                "{label} {} was not found for your account",
                describe_request(request)
            )))
        })?;
    let number = &document.number;
    match document.status.as_str() {
        "paid" => return Err(bad_input(format!("{label} #{number} is already paid"))),
        "deleted" => {
            return Err(bad_input(format!(
                "{label} #{number} was cancelled and cannot be paid"
            )))
        }
        "pending" => {
            return Err(bad_input(format!(
                "A payment for {} #{number} is already being processed",
                label.to_lowercase()
            )))
        }
        _ => {}
    }
    if document.amount <= Decimal::ZERO {
        return Err(bad_input(format!(
            "{label} #{number} has nothing left to pay"
        )));
    }
    Ok(Document {
        kind,
        id: Some(document.id),
        description: format!("{label} #{number}"),
        price: round_for(document.amount, currency)?,
        number: Some(document.number),
    })
}

/// Splynx keeps 4 decimals; BitPay takes the currency's. A due amount with more precision
/// than the currency has cannot be charged exactly, so it is refused, not rounded.
fn round_for(amount: Decimal, currency: &str) -> Result<Decimal> {
    let places = money::currency_decimals(currency);
    let rounded = amount.round_dp(places);
    if rounded != amount {
        return Err(bad_input(format!(
            "The amount {amount} has more decimals than {currency} allows ({places}); ask your provider to correct the invoice"
        )));
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

pub fn run(args: CreateInvoiceArgs, ctx: &Context) -> Result<u8> {
    let customer_id = parse_id(&args.customer, "customer")?;
    let request = parse_request(&args, ctx)?;
    let currency = ctx.config.bitpay.currency.clone();

    let splynx = ctx.splynx();
    let customer = splynx
        .customer(customer_id)
        .map_err(|e| not_found_as(e, &format!("Customer {customer_id} does not exist")))?;
    let document = resolve_document(&splynx, &request, &customer, &currency)?;
    if args.check {
        let price = format_amount(document.price, &currency);
        ctx.output.emit(
            &format!("{}: {price} {currency}", document.description),
            &json!({
                "document": document.kind.as_str(),
                "document_id": document.id,
                "number": document.number,
                "description": document.description,
                "price": price,
                "currency": currency,
            }),
        );
        return Ok(SUCCESS);
    }

    let identity = ctx.identity()?;
    let sin = identity.sin();
    let order_key = OrderKey::of(&identity);
    let bitpay = ctx.bitpay(Some(identity));
    let token = pairing::invoice_token(ctx, &bitpay)?;

    let doc_key = format!(
        "{}:{}:{}",
        document.kind.as_str(),
        document.id.unwrap_or_default(),
        customer.id
    );
    let wait = ctx.config.bitpay.timeout * 3 + Duration::from_secs(5);
    let _lock = lock::acquire(
        &ctx.config.data_dir,
        &lock::bucket_name("document", &doc_key),
        "this document's checkout",
        wait,
    )?;

    let creator = Creator {
        ctx,
        bitpay: &bitpay,
        token: &token,
        sin: &sin,
        order_key: &order_key,
    };
    let (record, invoice, reused) = creator.find_or_create(&document, &customer)?;
    let price = format_amount(record.price, &record.currency);
    let url = invoice.url.clone();
    ctx.output.emit(
        &url,
        &json!({
            "bitpay_invoice_id": invoice.id,
            "url": url,
            "price": price,
            "currency": record.currency,
            "status": invoice.status,
            "reused": reused,
        }),
    );
    Ok(SUCCESS)
}

struct Creator<'a> {
    ctx: &'a Context,
    bitpay: &'a BitPayClient,
    token: &'a TokenRecord,
    sin: &'a str,
    order_key: &'a OrderKey,
}

impl Creator<'_> {
    /// Runs under the document lock.
    fn find_or_create(
        &self,
        document: &Document,
        customer: &Customer,
    ) -> Result<(InvoiceRecord, BitPayInvoice, bool)> {
        let store = &self.ctx.store;
        let records = store.unsettled_for_document(document.kind, document.id, customer.id)?;
        match classify_existing(&records, document.kind, document.price, clock::now_ms()) {
            Existing::Recover(id) => {
                let record = store.invoice(id)?.context("stored invoice vanished")?;
                let token = record.token.clone();
                match self
                    .bitpay
                    .invoice_by_guid(&record.guid, token.expose())
                    .map_err(|e| self.token_error(e))?
                {
                    Some(found) => {
                        self.record_created(
                            &record,
                            &found,
                            "recovered by guid after an unanswered request",
                        )?;
                        if found.status == "new" {
                            return Ok((record, found, true));
                        }
                        // Recovered but no longer payable: decide afresh.
                        self.find_or_create(document, customer)
                    }
                    None => {
                        store.journal(
                            None,
                            "create",
                            &format!("guid {} unknown to BitPay; creating it again", record.guid),
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
                let fresh = self
                    .bitpay
                    .invoice(&bitpay_id, record.token.expose())
                    .map_err(|e| self.token_error(e))?;
                store.update_bitpay_status(
                    record.id,
                    &fresh.status,
                    fresh.exception_status.as_deref(),
                    fresh.expiration_time,
                    clock::now_ms(),
                )?;
                let time_left = fresh.expiration_time.map_or(0, |e| e - clock::now_ms());
                if fresh.status == "new" && time_left >= MIN_REMAINING_MS {
                    store.journal(
                        Some(&bitpay_id),
                        "create",
                        "reused for another click on the same document",
                        None,
                        clock::now_ms(),
                    )?;
                    return Ok((record, fresh, true));
                }
                if fresh.status == "expired" {
                    store.set_settlement(
                        record.id,
                        Settlement::Expired,
                        Some("expired unpaid"),
                        clock::now_ms(),
                    )?;
                }
                self.find_or_create(document, customer)
            }
            Existing::InProgress(id) => {
                let record = store.invoice(id)?.context("stored invoice vanished")?;
                Err(bad_input(format!(
                    "A payment for {} is already in progress (BitPay invoice {} is {}); it will be credited once confirmed",
                    document.description,
                    record.bitpay_id.as_deref().unwrap_or("?"),
                    record.bitpay_status
                )))
            }
            Existing::None => {
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
                    environment: self.ctx.environment().to_string(),
                    facade: self.token.facade.clone(),
                    token: self.token.token.clone(),
                    doc_kind: document.kind,
                    doc_id: document.id,
                    doc_number: document.number.clone(),
                    customer_id: customer.id,
                    price: document.price,
                    currency: self.ctx.config.bitpay.currency.clone(),
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
    ) -> Result<BitPayInvoice> {
        let settings = &self.ctx.config.bitpay;
        let pos_data = json!({
            "customer_id": customer.id,
            "document": document.kind.as_str(),
            "document_id": document.id,
            "number": document.number,
        });
        let mut buyer = json!({"name": customer.name, "notify": true});
        if customer.contact_email().contains('@') {
            buyer["email"] = json!(customer.contact_email());
        }
        let body = json!({
            "token": record.token.expose(),
            "price": json_number(record.price),
            "currency": record.currency,
            "orderId": record.order_id,
            "itemDesc": document.description,
            "posData": pos_data.to_string(),
            "notificationURL": settings.notification_url,
            "redirectURL": format!("{}?order={}", settings.redirect_url, record.order_id),
            "transactionSpeed": settings.transaction_speed,
            "fullNotifications": true,
            "extendedNotifications": true,
            "guid": record.guid,
            "buyer": buyer,
        });
        let store = &self.ctx.store;
        match self.bitpay.create_invoice(&body) {
            Ok(invoice) => {
                self.record_created(record, &invoice, "created")?;
                Ok(invoice)
            }
            Err(error) if error.is_temporary() => {
                log::warn!(
                    "creating BitPay invoice {}: {error}; looking it up by guid",
                    record.guid
                );
                let recovered = self
                    .bitpay
                    .invoice_by_guid(&record.guid, record.token.expose());
                match recovered {
                    Ok(Some(invoice)) => {
                        self.record_created(
                            record,
                            &invoice,
                            "created (recovered by guid after an unanswered request)",
                        )?;
                        Ok(invoice)
                    }
                    _ => {
                        store.journal(
                            None,
                            "create",
                            &format!("guid {}: {error}; left for recovery", record.guid),
                            None,
                            clock::now_ms(),
                        )?;
                        Err(anyhow::Error::new(error).context(Problem::Temporary(
                            "BitPay did not answer in time; please try again in a minute".into(),
                        )))
                    }
                }
            }
            Err(error) => {
                store.delete_creating(&record.guid)?;
                store.journal(
                    None,
                    "create",
                    &format!("guid {}: BitPay refused: {error}", record.guid),
                    None,
                    clock::now_ms(),
                )?;
                if error.is_authorization() {
                    return Err(self.token_error(error));
                }
                Err(anyhow::Error::new(Problem::BadInput(format!(
                    "BitPay could not create the invoice: {}",
                    error.message()
                )))
                .context(error))
            }
        }
    }

    fn record_created(
        &self,
        record: &InvoiceRecord,
        invoice: &BitPayInvoice,
        how: &str,
    ) -> Result<()> {
        let summary = format!(
            "{how}: {} {} {} for customer {} ({}), token {}",
            record.doc_kind.as_str(),
            record.doc_number.as_deref().unwrap_or("-"),
            format_amount(record.price, &record.currency),
            record.customer_id,
            record.order_id,
            record.facade
        );
        Ok(self
            .ctx
            .store
            .mark_created(&record.guid, invoice, &summary, clock::now_ms())?)
    }

    fn token_error(&self, error: BitPayError) -> anyhow::Error {
        pairing::explain_token_error(self.ctx, self.token, self.sin, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use std::str::FromStr;

    fn record(
        id: i64,
        settlement: Settlement,
        status: &str,
        price: &str,
        expires_at: i64,
    ) -> InvoiceRecord {
        InvoiceRecord {
            id,
            guid: format!("g{id}"),
            bitpay_id: Some(format!("B{id}")),
            environment: "test".into(),
            facade: "pos".into(),
            token: Secret::new("t"),
            doc_kind: DocKind::Invoice,
            doc_id: Some(1),
            doc_number: Some("N".into()),
            customer_id: 1,
            price: Decimal::from_str(price).unwrap(),
            currency: "USD".into(),
            order_id: format!("o{id}"),
            url: None,
            bitpay_status: status.into(),
            exception_status: None,
            settlement,
            note: None,
            expires_at: Some(expires_at),
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

    #[test]
    fn reuse_recover_or_refuse() {
        let price = Decimal::from_str("51.61").unwrap();
        let now = 1_000_000_000;
        let fresh = now + 10 * 60 * 1000;
        let nearly_gone = now + 60 * 1000;
        let kind = DocKind::Invoice;
        assert_eq!(classify_existing(&[], kind, price, now), Existing::None);
        let open = record(1, Settlement::Open, "new", "51.61", fresh);
        assert_eq!(
            classify_existing(std::slice::from_ref(&open), kind, price, now),
            Existing::Candidate(1)
        );
        let other_amount = record(2, Settlement::Open, "new", "20.00", fresh);
        assert_eq!(
            classify_existing(&[other_amount], kind, price, now),
            Existing::None
        );
        let expiring = record(3, Settlement::Open, "new", "51.61", nearly_gone);
        assert_eq!(
            classify_existing(&[expiring], kind, price, now),
            Existing::None
        );
        let creating = record(4, Settlement::Creating, "unknown", "51.61", 0);
        assert_eq!(
            classify_existing(&[creating], kind, price, now),
            Existing::Recover(4)
        );
        let paid = record(5, Settlement::Open, "paid", "51.61", fresh);
        assert_eq!(
            classify_existing(&[paid.clone(), open.clone()], kind, price, now),
            Existing::InProgress(5)
        );
        assert_eq!(
            classify_existing(&[paid, open], DocKind::Refill, price, now),
            Existing::Candidate(1)
        );
        let expired = record(6, Settlement::Expired, "expired", "51.61", fresh);
        assert_eq!(
            classify_existing(&[expired], kind, price, now),
            Existing::None
        );
    }

    #[test]
    fn splynx_precision_beyond_the_currency_is_refused() {
        assert_eq!(
            round_for(Decimal::from_str("51.6100").unwrap(), "USD")
                .unwrap()
                .to_string(),
            "51.61"
        );
        assert!(round_for(Decimal::from_str("51.6150").unwrap(), "USD").is_err());
    }
}
