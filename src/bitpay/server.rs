//! BitPay as a `PaymentServer`: its statuses normalised, its tokens as credentials, its
//! refusals of a token explained. Everything BitPay-specific the seam hides lives here and
//! in its siblings (SIN, signatures, facades, `exceptionStatus`, refund events).

use anyhow::anyhow;

use super::client::{BitPayClient, BitPayError};
use super::model::{self, Buyer, InvoiceRequest};
use super::webhook;
use crate::domain::{NewInvoice, RefundState};
use crate::money::json_number;
use crate::server::{
    Capabilities, CreateDetails, Credential, InvoiceStatus, PaymentServer, RefundAsk, ServerError,
    ServerInvoice, ServerRefund, ServerResult, SignatureCheck, StatusWords, WebhookError,
    WebhookFormat, WebhookHeaders, WebhookNotice,
};

/// BitPay's status and `exceptionStatus`, normalised.
pub fn status_of(status: &str, exception: Option<&str>) -> InvoiceStatus {
    match status {
        "new" => InvoiceStatus::Open,
        "paid" => InvoiceStatus::PaidUnconfirmed,
        "confirmed" => InvoiceStatus::PaidConfirmed,
        "complete" => InvoiceStatus::Final,
        "expired" if exception == Some("paidLate") => InvoiceStatus::ExpiredPaidLate,
        "expired" => InvoiceStatus::Expired,
        "invalid" => InvoiceStatus::Invalid,
        "declined" => InvoiceStatus::Reversed,
        _ => InvoiceStatus::Unknown,
    }
}

/// Invoices per page of BitPay's list.
const LIST_PAGE: usize = 100;

/// BitPay's invoice in the seam's terms.
pub fn normalise(invoice: model::Invoice) -> ServerInvoice {
    let refunded = invoice.has_refund();
    let transaction_ids = invoice.transaction_ids();
    ServerInvoice {
        status: status_of(&invoice.status, invoice.exception_status.as_deref()),
        underpaid: invoice.exception_status.as_deref() == Some("paidPartial"),
        refunded,
        words: StatusWords {
            status: invoice.status,
            exception: invoice.exception_status,
        },
        id: invoice.id,
        url: invoice.url,
        order_id: invoice.order_id,
        guid: invoice.guid,
        price: invoice.price,
        currency: invoice.currency,
        expires_at: invoice.expiration_time,
        created_at: invoice.invoice_time,
        amount_paid: invoice.display_amount_paid,
        coin: invoice.transaction_currency,
        transaction_ids,
        metadata: invoice.pos_data,
    }
}

/// BitPay's error, by what the caller does about it.
/// A BitPay refund, normalised (reference §14.3.4; `canceled` is how BitPay spells it).
fn refund_of(refund: model::Refund) -> ServerRefund {
    let state = match refund.status.as_str() {
        "success" => RefundState::PaidOut,
        "pending" => RefundState::Pending,
        "failure" => RefundState::Failed,
        "canceled" | "cancelled" => RefundState::Cancelled,
        // preview, created, and any word BitPay adds later: not final.
        _ => RefundState::Requested,
    };
    ServerRefund {
        id: refund.id,
        invoice_id: refund.invoice,
        words: refund.status,
        state,
        amount: refund.amount,
        currency: refund.currency,
        key: (!refund.guid.is_empty()).then_some(refund.guid),
        claim_link: None,
    }
}

fn classify(error: BitPayError) -> ServerError {
    if error.is_temporary() {
        ServerError::Temporary(error.into())
    } else if error.is_authorization() {
        ServerError::Authorization(error.into())
    } else if error.is_not_found() {
        ServerError::NotFound(error.into())
    } else {
        ServerError::Refused {
            words: error.message().to_string(),
            cause: error.into(),
        }
    }
}

/// Why BitPay will not take a token of ours, and what the admin does about it.
#[derive(Debug, thiserror::Error)]
pub enum TokenRefused {
    #[error("the BitPay {facade} token is disabled (not approved yet, or revoked): approve it at {url}, or pair again with `splynx-bitpay pair CODE`")]
    Disabled { facade: String, url: String },
    #[error("BitPay does not accept this add-on's identity (SIN {sin}) for the stored {facade} token: the token was revoked or belongs to another key or environment. Pair again with `splynx-bitpay pair CODE`")]
    UnknownIdentity { facade: String, sin: String },
    #[error("BitPay refused the {facade} token: {message}. Check `splynx-bitpay status`, then pair again if needed")]
    Other { facade: String, message: String },
    #[error("{needed_for} needs a merchant token at BitPay; this add-on is paired with a {facade} token. Run `splynx-bitpay pair --request --facade merchant` (or \"Request a pairing code\" with the merchant facade on the admin page) and approve the code in the BitPay dashboard")]
    NoMerchantToken {
        facade: String,
        /// What needed it: "listing invoices (--since)", "a refund".
        needed_for: &'static str,
    },
}

/// BitPay, through a signed client, with this installation's tokens.
pub struct BitPayServer {
    client: BitPayClient,
    /// Approved tokens, the merchant one first.
    tokens: Vec<Credential>,
    /// The token new invoices are made with (`pairing::invoice_token`), when one is needed.
    invoice_token: Option<Credential>,
    sin: String,
    notification_url: String,
    /// Where the merchant approves tokens, for advice.
    dashboard_tokens_url: String,
}

impl BitPayServer {
    pub fn new(
        client: BitPayClient,
        tokens: Vec<Credential>,
        invoice_token: Option<Credential>,
        sin: String,
        notification_url: String,
    ) -> BitPayServer {
        let dashboard_tokens_url = format!("{}/dashboard/merchant/api-tokens", client.base_url());
        BitPayServer {
            client,
            tokens,
            invoice_token,
            sin,
            notification_url,
            dashboard_tokens_url,
        }
    }

    /// BitPay's error; a refused token says what the admin must do.
    /// The merchant token, or why `needed_for` cannot be done with what is paired.
    fn merchant(&self, needed_for: &'static str) -> ServerResult<&Credential> {
        self.tokens
            .iter()
            .find(|t| t.label == "merchant")
            .ok_or_else(|| {
                let facade = self
                    .invoice_token
                    .as_ref()
                    .map_or("no", |t| t.label.as_str());
                ServerError::Authorization(
                    TokenRefused::NoMerchantToken {
                        facade: facade.to_string(),
                        needed_for,
                    }
                    .into(),
                )
            })
    }

    fn failure(&self, facade: &str, error: BitPayError) -> ServerError {
        if !error.is_authorization() {
            return classify(error);
        }
        let message = error.message().to_ascii_lowercase();
        let facade = facade.to_string();
        let advice = if message.contains("disabled") {
            TokenRefused::Disabled {
                facade,
                url: self.dashboard_tokens_url.clone(),
            }
        } else if message.contains("unauthorized sin") {
            TokenRefused::UnknownIdentity {
                facade,
                sin: self.sin.clone(),
            }
        } else {
            TokenRefused::Other {
                facade,
                message: error.message().to_string(),
            }
        };
        ServerError::Authorization(anyhow::Error::new(error).context(advice))
    }
}

impl PaymentServer for BitPayServer {
    fn webhooks(&self) -> &dyn WebhookFormat {
        &BitPayWebhooks
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            listing: self.tokens.iter().any(|t| t.label == "merchant"),
            lists_changes: false,
            refunds: true,
            cancels_refunds: true,
            idempotent_create: true,
        }
    }

    fn credential(&self) -> ServerResult<Credential> {
        self.invoice_token.clone().ok_or_else(|| {
            ServerError::Authorization(anyhow!("no BitPay token was chosen to create invoices"))
        })
    }

    fn create(
        &self,
        order: &NewInvoice,
        details: &CreateDetails<'_>,
    ) -> ServerResult<ServerInvoice> {
        let buyer = match &details.payer {
            Some(payer) => Buyer {
                name: payer.name,
                email: payer.email,
                notify: true,
            },
            None => Buyer {
                name: "",
                email: None,
                notify: false,
            },
        };
        let request = InvoiceRequest {
            token: order.token.expose(),
            price: json_number(order.price),
            currency: &order.currency,
            order_id: &order.order_id,
            item_desc: details.description,
            pos_data: details.metadata.to_string(),
            notification_url: &self.notification_url,
            redirect_url: details.redirect_url.to_string(),
            transaction_speed: details.speed,
            full_notifications: true,
            extended_notifications: true,
            guid: &order.guid,
            buyer,
        };
        self.client
            .create_invoice(&request)
            .map(normalise)
            .map_err(|e| self.failure(&order.facade, e))
    }

    fn fetch(&self, id: &str, order: &NewInvoice) -> ServerResult<ServerInvoice> {
        self.client
            .invoice(id, order.token.expose())
            .map(normalise)
            .map_err(|e| self.failure(&order.facade, e))
    }

    fn find_created(&self, order: &NewInvoice) -> ServerResult<Option<ServerInvoice>> {
        self.client
            .invoice_by_guid(&order.guid, order.token.expose())
            .map(|found| found.map(normalise))
            .map_err(|e| self.failure(&order.facade, e))
    }

    fn fetch_unknown(&self, id: &str) -> ServerResult<Option<(ServerInvoice, Credential)>> {
        for token in &self.tokens {
            match self.client.invoice(id, token.secret.expose()) {
                Ok(invoice) => return Ok(Some((normalise(invoice), token.clone()))),
                Err(e) if e.is_temporary() => return Err(classify(e)),
                Err(e) => log::info!("BitPay invoice {id} with the {} token: {e}", token.label),
            }
        }
        Ok(None)
    }

    /// BitPay lists whole (UTC) days: from the day of `from_ms` to the day of `until_ms`,
    /// 100 a page (its page size is undocumented), `paging::PAGES_AT_ONCE` requests in
    /// flight after the first, as reconcile's workers ask it several things at once.
    fn for_each_created(
        &self,
        from_ms: i64,
        until_ms: i64,
        each: &mut dyn FnMut(ServerInvoice),
    ) -> ServerResult<()> {
        let merchant = self.merchant("listing invoices")?;
        let start = crate::clock::date_of(from_ms);
        let end = crate::clock::date_of(until_ms);
        crate::paging::read_pages(
            LIST_PAGE,
            |offset| {
                self.client
                    .list_invoices(merchant.secret.expose(), &start, &end, LIST_PAGE, offset)
                    .map_err(|e| self.failure(&merchant.label, e))
            },
            &mut |invoice| each(normalise(invoice)),
        )
    }

    fn request_refund(&self, ask: &RefundAsk<'_>) -> ServerResult<ServerRefund> {
        let merchant = self.merchant("a refund")?;
        let reference: String = format!("splynx-bitpay refund {}", ask.key)
            .chars()
            .take(100)
            .collect();
        let request = model::RefundRequest {
            token: merchant.secret.expose(),
            invoice_id: ask.invoice_id,
            amount: json_number(ask.amount),
            currency: ask.currency,
            preview: false,
            immediate: false,
            buyer_pays_refund_fee: false,
            reference: &reference,
            guid: ask.key,
        };
        self.client
            .create_refund(&request)
            .map(refund_of)
            .map_err(|e| self.failure(&merchant.label, e))
    }

    fn find_refund(&self, ask: &RefundAsk<'_>) -> ServerResult<Option<ServerRefund>> {
        let merchant = self.merchant("a refund")?;
        self.client
            .refund_by_guid(ask.key, merchant.secret.expose())
            .map(|found| found.map(refund_of))
            .map_err(|e| self.failure(&merchant.label, e))
    }

    fn refunds_of(&self, invoice_id: &str) -> ServerResult<Vec<ServerRefund>> {
        let merchant = self.merchant("a refund")?;
        self.client
            .refunds_of_invoice(invoice_id, merchant.secret.expose())
            .map(|all| all.into_iter().map(refund_of).collect())
            .map_err(|e| self.failure(&merchant.label, e))
    }

    fn fetch_refund(&self, id: &str) -> ServerResult<ServerRefund> {
        let merchant = self.merchant("a refund")?;
        self.client
            .refund(id, merchant.secret.expose())
            .map(refund_of)
            .map_err(|e| self.failure(&merchant.label, e))
    }

    fn cancel_refund(&self, id: &str) -> ServerResult<ServerRefund> {
        let merchant = self.merchant("cancelling a refund")?;
        self.client
            .cancel_refund(id, merchant.secret.expose())
            .map(refund_of)
            .map_err(|e| self.failure(&merchant.label, e))
    }
}

/// BitPay's webhooks: both formats, signed with the invoice's token.
pub struct BitPayWebhooks;

impl WebhookFormat for BitPayWebhooks {
    fn name(&self) -> &'static str {
        crate::config::ServerKind::BitPay.name()
    }

    fn signature<'h>(&self, headers: &'h WebhookHeaders) -> Option<&'h str> {
        headers.x_signature.as_deref()
    }

    fn parse_webhook(&self, body: &[u8]) -> Result<WebhookNotice, WebhookError> {
        let webhook = model::parse_webhook(body)?;
        Ok(WebhookNotice {
            invoice_id: webhook.invoice_id,
            event: webhook
                .event
                .as_deref()
                .map(|e| webhook::event_words(e).to_string()),
            claimed: webhook.claimed_status.map(|status| StatusWords {
                status,
                exception: webhook.claimed_exception,
            }),
            refund_id: webhook.refund_id,
        })
    }

    fn check_signature(
        &self,
        body: &[u8],
        header: Option<&str>,
        order: Option<&NewInvoice>,
    ) -> SignatureCheck {
        webhook::check(body, header, order.map(|o| o.token.expose()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_normalise_with_their_exceptions() {
        let cases = [
            ("new", None, InvoiceStatus::Open),
            ("new", Some("paidPartial"), InvoiceStatus::Open),
            ("paid", None, InvoiceStatus::PaidUnconfirmed),
            ("confirmed", Some("paidOver"), InvoiceStatus::PaidConfirmed),
            ("complete", None, InvoiceStatus::Final),
            ("expired", None, InvoiceStatus::Expired),
            ("expired", Some("paidPartial"), InvoiceStatus::Expired),
            ("expired", Some("paidLate"), InvoiceStatus::ExpiredPaidLate),
            ("invalid", None, InvoiceStatus::Invalid),
            ("declined", None, InvoiceStatus::Reversed),
            ("settled", None, InvoiceStatus::Unknown),
        ];
        for (status, exception, expected) in cases {
            assert_eq!(
                status_of(status, exception),
                expected,
                "{status} {exception:?}"
            );
        }
    }

    #[test]
    fn an_invoice_keeps_bitpays_words() {
        let invoice: model::Invoice = serde_json::from_str(
            r#"{"id":"X","status":"confirmed","exceptionStatus":"paidPartial","price":"10","currency":"USD",
                "refundInfo":[{"supportRequest":"R"}],"displayAmountPaid":"0.0001","transactionCurrency":"BTC",
                "transactions":[{"txid":"t1"},{"txid":"t2"}]}"#,
        )
        .unwrap();
        let normal = normalise(invoice);
        assert_eq!(normal.status, InvoiceStatus::PaidConfirmed);
        assert!(normal.underpaid && normal.refunded);
        assert_eq!(normal.words.to_string(), "confirmed (paidPartial)");
        assert_eq!(normal.paid_text().as_deref(), Some("0.0001 BTC"));
        assert_eq!(normal.transaction_ids, "t1,t2");
    }
}
