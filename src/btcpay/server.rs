//! BTCPay Server as a `PaymentServer`: Greenfield statuses normalised (`Settled`/`Marked`
//! is an admin's word, `Expired`/`PaidLate` never settles), no idempotent create (a lost
//! answer is found by order id), a 403 for an unknown invoice told apart from a revoked key,
//! and webhooks signed with the store webhook's secret.
//! Longer than 500 lines because its unit tests (canned BTCPay answers) live beside the
//! code; the code itself is about 420 lines.

use super::client::{BtcpayClient, BtcpayError, PAGE};
pub use super::model::MARKER;
use super::model::{self, Invoice, PullPayment};
use super::refund::{key_of, refund_label, refund_state, RefundPermission};
use super::webhook;
use crate::domain::NewInvoice;
use crate::secret::Secret;
use crate::server::{is_invoice_id, webhook_json};
use crate::server::{
    Capabilities, CreateDetails, Credential, InvoiceStatus, PaymentServer, RefundAsk, ServerError,
    ServerInvoice, ServerRefund, ServerResult, SignatureCheck, StatusWords, WebhookError,
    WebhookFormat, WebhookHeaders, WebhookNotice,
};

/// Greenfield's `status` and `additionalStatus`, normalised.
pub fn status_of(status: &str, additional: &str) -> InvoiceStatus {
    match (status, additional) {
        ("New", _) => InvoiceStatus::Open,
        ("Processing", _) => InvoiceStatus::PaidUnconfirmed,
        ("Settled", "Marked") => InvoiceStatus::MarkedFinal,
        ("Settled", _) => InvoiceStatus::Final,
        ("Expired", "PaidLate") => InvoiceStatus::ExpiredPaidLate,
        ("Expired", _) => InvoiceStatus::Expired,
        ("Invalid", _) => InvoiceStatus::Invalid,
        _ => InvoiceStatus::Unknown,
    }
}

/// BTCPay's invoice in the seam's terms. Times become milliseconds, as the store keeps them.
pub fn normalise(invoice: Invoice) -> ServerInvoice {
    let exception = match invoice.additional_status.as_str() {
        "" | "None" => None,
        other => Some(other.to_string()),
    };
    let metadata = match &invoice.metadata["posData"] {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    ServerInvoice {
        status: status_of(&invoice.status, &invoice.additional_status),
        underpaid: invoice.additional_status == "PaidPartial",
        // A BTCPay refund is a pull payment; the invoice's status does not change.
        refunded: false,
        order_id: invoice.order_id(),
        words: StatusWords {
            status: invoice.status,
            exception,
        },
        id: invoice.id,
        url: invoice.checkout_link,
        guid: String::new(),
        price: invoice.amount,
        expires_at: invoice.expiration_time.map(|s| s * 1000),
        created_at: invoice.created_time.map(|s| s * 1000),
        amount_paid: invoice
            .paid_amount
            .map(|p| p.to_string())
            .unwrap_or_default(),
        // What BTCPay reports paid is in the invoice's currency.
        coin: invoice.currency.clone(),
        currency: invoice.currency,
        transaction_ids: String::new(),
        metadata,
    }
}

/// Our `transaction_speed` as BTCPay's speed policy.
pub fn speed_policy(speed: &str) -> &'static str {
    match speed {
        "high" => "HighSpeed",
        "low-medium" => "LowMediumSpeed",
        "low" => "LowSpeed",
        _ => "MediumSpeed",
    }
}

fn classify(error: BtcpayError) -> ServerError {
    match &error {
        _ if error.is_temporary() => ServerError::Temporary(error.into()),
        BtcpayError::Unauthorized { .. } | BtcpayError::Forbidden { .. } => {
            ServerError::Authorization(error.into())
        }
        _ => ServerError::Refused {
            words: error.message().to_string(),
            cause: error.into(),
        },
    }
}

/// BTCPay Server, through one store's API key.
pub struct BtcpayServer {
    client: BtcpayClient,
    webhooks: BtcpayWebhooks,
}

impl BtcpayServer {
    pub fn new(client: BtcpayClient, webhook_secret: Option<Secret>) -> BtcpayServer {
        BtcpayServer {
            client,
            webhooks: BtcpayWebhooks {
                secret: webhook_secret,
            },
        }
    }

    /// A 403 for an invoice: BTCPay's answer for an id it does not have (or another
    /// store's), and for a key that lost its permission. The key's own record tells them
    /// apart.
    /// Refunds need `REFUND_PERMISSIONS`: refused, naming the one missing, before anything
    /// is recorded or sent.
    fn refunds_allowed(&self) -> ServerResult<()> {
        let store = self.client.store_id();
        let key = self.client.current_key().map_err(classify)?;
        match model::REFUND_PERMISSIONS
            .iter()
            .find(|p| !key.grants(p, store))
        {
            None => Ok(()),
            Some(missing) => Err(ServerError::Authorization(
                RefundPermission {
                    missing,
                    store: store.to_string(),
                }
                .into(),
            )),
        }
    }

    /// The refund `pull` stands for, read with its payouts.
    /// The refunds of these invoices among the store's pull payments, by their names: ours
    /// ("Refund of invoice ID") and the dashboard's ("Refund ID").
    fn refunds_named(&self, invoice_ids: &[&str]) -> ServerResult<Vec<ServerRefund>> {
        self.refunds_allowed()?;
        let mut named = std::collections::HashMap::new();
        for &id in invoice_ids {
            named.insert(format!("Refund {id}"), id);
            named.insert(format!("Refund of invoice {id}"), id);
        }
        self.client
            .pull_payments()
            .map_err(classify)?
            .into_iter()
            .filter_map(|p| named.get(&p.name).map(|&id| (p, id)))
            .map(|(p, id)| self.refund_of(p, id))
            .collect()
    }

    fn refund_of(&self, pull: PullPayment, invoice_id: &str) -> ServerResult<ServerRefund> {
        let payouts = self.client.payouts(&pull.id).map_err(classify)?;
        let (state, words) = refund_state(&pull, &payouts);
        let key = key_of(&pull.description);
        Ok(ServerRefund {
            id: pull.id,
            invoice_id: invoice_id.to_string(),
            words,
            state,
            amount: pull.amount,
            currency: pull.currency,
            key,
            claim_link: (!pull.view_link.is_empty()).then_some(pull.view_link),
        })
    }

    fn forbidden(&self, error: BtcpayError) -> ServerError {
        match self.client.current_key() {
            Ok(key) if key.grants(model::PERMISSIONS[0], self.client.store_id()) => {
                ServerError::NotFound(error.into())
            }
            Ok(_) => classify(error),
            Err(checking) => classify(checking),
        }
    }
}

impl PaymentServer for BtcpayServer {
    fn webhooks(&self) -> &dyn WebhookFormat {
        &self.webhooks
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            listing: true,
            lists_changes: true,
            refunds: true,
            cancels_refunds: false,
            idempotent_create: false,
        }
    }

    /// Invoices are read with the store's key, never one stored per invoice.
    fn credential(&self) -> ServerResult<Credential> {
        Ok(Credential {
            label: "btcpay".into(),
            secret: Secret::new(""),
        })
    }

    fn create(
        &self,
        order: &NewInvoice,
        details: &CreateDetails<'_>,
    ) -> ServerResult<ServerInvoice> {
        let pos_data: serde_json::Value = serde_json::from_str(details.metadata)
            .unwrap_or_else(|_| serde_json::Value::String(details.metadata.to_string()));
        let mut metadata = serde_json::json!({
            "orderId": order.order_id,
            "integration": MARKER,
            "itemDesc": details.description,
            "posData": pos_data,
        });
        if let Some(payer) = &details.payer {
            metadata["buyerName"] = payer.name.into();
            if let Some(email) = payer.email {
                metadata["buyerEmail"] = email.into();
            }
        }
        let body = serde_json::json!({
            // Exact, as a string: absent would make a top-up invoice that any payment settles.
            "amount": order.price.to_string(),
            "currency": order.currency,
            "metadata": metadata,
            "checkout": {
                "speedPolicy": speed_policy(details.speed),
                // Never the store's tolerance: `Settled` must mean paid in full.
                "paymentTolerance": 0,
                "redirectURL": details.redirect_url,
            },
        });
        self.client
            .create_invoice(&body)
            .map(normalise)
            .map_err(classify)
    }

    fn fetch(&self, id: &str, _order: &NewInvoice) -> ServerResult<ServerInvoice> {
        match self.client.invoice(id) {
            Ok(invoice) => Ok(normalise(invoice)),
            Err(e @ BtcpayError::Forbidden { .. }) => Err(self.forbidden(e)),
            Err(e) => Err(classify(e)),
        }
    }

    /// BTCPay has no idempotency key: a create whose answer was lost is found by our
    /// per-attempt order id.
    fn find_created(&self, order: &NewInvoice) -> ServerResult<Option<ServerInvoice>> {
        let found = self
            .client
            .invoices_by_order_id(&order.order_id)
            .map_err(classify)?;
        Ok(found
            .into_iter()
            .find(|i| i.order_id() == order.order_id)
            .map(normalise))
    }

    fn fetch_unknown(&self, id: &str) -> ServerResult<Option<(ServerInvoice, Credential)>> {
        match self.client.invoice(id) {
            Ok(invoice) => Ok(Some((normalise(invoice), self.credential()?))),
            Err(e @ BtcpayError::Forbidden { .. }) => match self.forbidden(e) {
                ServerError::NotFound(_) => Ok(None),
                other => Err(other),
            },
            Err(e) => Err(classify(e)),
        }
    }

    /// Every page of the period (newest first; an invoice that moves between pages while
    /// new ones arrive is listed once), `paging::PAGES_AT_ONCE` requests in flight after the first.
    fn for_each_created(
        &self,
        from_ms: i64,
        until_ms: i64,
        each: &mut dyn FnMut(ServerInvoice),
    ) -> ServerResult<()> {
        let (start, end) = (from_ms.div_euclid(1000), until_ms.div_euclid(1000));
        let mut seen = std::collections::BTreeSet::new();
        crate::paging::read_pages(
            PAGE,
            |skip| {
                self.client
                    .invoices_created(start, end, skip)
                    .map_err(classify)
            },
            &mut |invoice: Invoice| {
                if seen.insert(invoice.id.clone()) {
                    each(normalise(invoice));
                }
            },
        )
    }

    /// A pull payment of exactly the amount asked, in the invoice's currency (`Custom`: a
    /// partial refund works, and what is booked is what was asked). Its claims wait for the
    /// admin's approval in BTCPay (the key may only create non-approved pull payments).
    /// Sent after `refunds_of` checked the key's refund permissions (a key that lost one
    /// since gets BTCPay's 403, which names it).
    fn request_refund(&self, ask: &RefundAsk<'_>) -> ServerResult<ServerRefund> {
        let reason = ask.reason.map(|r| format!(": {r}")).unwrap_or_default();
        let body = serde_json::json!({
            "refundVariant": "Custom",
            "customAmount": crate::money::format_amount(ask.amount, ask.currency),
            "customCurrency": ask.currency,
            "name": format!("Refund of invoice {}", ask.invoice_id),
            "description": format!("{}{reason}", refund_label(ask.key)).chars().take(500).collect::<String>(),
        });
        let pull = self
            .client
            .refund_invoice(ask.invoice_id, &body)
            .map_err(classify)?;
        let mut refund = self.refund_of(pull, ask.invoice_id)?;
        refund.words = "created".into();
        Ok(refund)
    }

    /// The store's pull payment carrying the request's key, if BTCPay made one.
    fn find_refund(&self, ask: &RefundAsk<'_>) -> ServerResult<Option<ServerRefund>> {
        self.refunds_allowed()?;
        let label = refund_label(ask.key);
        let found = self
            .client
            .pull_payments()
            .map_err(classify)?
            .into_iter()
            .find(|p| p.description.starts_with(&label));
        found.map(|p| self.refund_of(p, ask.invoice_id)).transpose()
    }

    /// The store's pull payments refunding the invoice: ours, and BTCPay's own (its
    /// invoice page and API name them "Refund {invoice id}").
    fn refunds_of(&self, invoice_id: &str) -> ServerResult<Vec<ServerRefund>> {
        self.refunds_named(&[invoice_id])
    }

    /// A BTCPay invoice does not say it was refunded: one listing of the store's pull
    /// payments finds the refunds of every invoice asked about.
    fn refunds_among(&self, invoices: &[(&str, bool)]) -> ServerResult<Vec<ServerRefund>> {
        let ids: Vec<&str> = invoices.iter().map(|(id, _)| *id).collect();
        self.refunds_named(&ids)
    }

    fn fetch_refund(&self, id: &str) -> ServerResult<ServerRefund> {
        let pull = self.client.pull_payment(id).map_err(classify)?;
        self.refund_of(pull, "")
    }
}

/// BTCPay's webhooks: one store-wide webhook, signed with the secret BTCPay gave us when it
/// was registered.
pub struct BtcpayWebhooks {
    pub secret: Option<Secret>,
}

impl WebhookFormat for BtcpayWebhooks {
    fn name(&self) -> &'static str {
        crate::config::ServerKind::Btcpay.name()
    }

    fn signature<'h>(&self, headers: &'h WebhookHeaders) -> Option<&'h str> {
        headers.btcpay_sig.as_deref()
    }

    /// Verified before anything else: BTCPay does not retry a 4xx, so a forged delivery
    /// is refused at once and cannot hold back the webhook's queue.
    fn signature_required(&self) -> bool {
        true
    }

    fn parse_webhook(&self, body: &[u8]) -> Result<WebhookNotice, WebhookError> {
        let value = webhook_json(body)?;
        let kind = value["type"].as_str().unwrap_or_default();
        if kind.starts_with("Payout") {
            // A payout names its pull payment (our refund), never an invoice: the refund
            // tells which invoice it is.
            let pull = value["pullPaymentId"].as_str().unwrap_or_default();
            if !is_invoice_id(pull) {
                return Err(WebhookError::RefundWithoutInvoice(
                    value["payoutId"]
                        .as_str()
                        .unwrap_or_default()
                        .chars()
                        .take(80)
                        .collect(),
                ));
            }
            return Ok(WebhookNotice {
                invoice_id: String::new(),
                event: Some(webhook::event_words(kind).to_string()),
                claimed: None,
                refund_id: Some(pull.to_string()),
            });
        }
        let Some(id) = value["invoiceId"].as_str() else {
            return Err(WebhookError::NoInvoiceId);
        };
        if !is_invoice_id(id) {
            return Err(WebhookError::BadInvoiceId(id.chars().take(80).collect()));
        }
        Ok(WebhookNotice {
            invoice_id: id.to_string(),
            event: (!kind.is_empty()).then(|| webhook::event_words(kind).to_string()),
            // A BTCPay event names no status: the fetch says what it is.
            claimed: None,
            refund_id: value["pullPaymentId"].as_str().map(str::to_string),
        })
    }

    fn check_signature(
        &self,
        body: &[u8],
        header: Option<&str>,
        _order: Option<&NewInvoice>,
    ) -> SignatureCheck {
        webhook::check(body, header, self.secret.as_ref().map(Secret::expose))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::canned::Canned;
    use crate::http::Reply;
    use std::sync::Arc;

    #[test]
    fn statuses_normalise_with_their_additional_status() {
        let cases = [
            ("New", "None", InvoiceStatus::Open),
            ("New", "PaidPartial", InvoiceStatus::Open),
            ("Processing", "None", InvoiceStatus::PaidUnconfirmed),
            ("Settled", "None", InvoiceStatus::Final),
            ("Settled", "PaidOver", InvoiceStatus::Final),
            ("Settled", "Marked", InvoiceStatus::MarkedFinal),
            ("Expired", "None", InvoiceStatus::Expired),
            ("Expired", "PaidPartial", InvoiceStatus::Expired),
            ("Expired", "PaidLate", InvoiceStatus::ExpiredPaidLate),
            ("Invalid", "Marked", InvoiceStatus::Invalid),
            ("Complete", "None", InvoiceStatus::Unknown),
        ];
        for (status, additional, expected) in cases {
            assert_eq!(
                status_of(status, additional),
                expected,
                "{status}/{additional}"
            );
        }
    }

    fn server(replies: Vec<Reply>) -> (BtcpayServer, Arc<Canned>) {
        let canned = Canned::new(replies.into_iter().map(Ok).collect());
        let client = BtcpayClient::new(
            "https://btcpay.example",
            Secret::new("k"),
            "Store1",
            canned.clone(),
        );
        (BtcpayServer::new(client, Some(Secret::new("s"))), canned)
    }

    fn order() -> NewInvoice {
        crate::domain::InvoiceRecord::example(1, crate::domain::Settlement::Open, "new").order
    }

    #[test]
    fn a_create_is_exact_and_never_inherits_the_store_tolerance() {
        let (server, canned) = server(vec![Reply::new(
            200,
            r#"{"id":"Inv1","status":"New","additionalStatus":"None","amount":"51.61","currency":"USD",
                "checkoutLink":"https://btcpay.example/i/Inv1","expirationTime":1700563800,
                "metadata":{"orderId":"o1","posData":{"c":42}}}"#,
        )]);
        let created = server
            .create(
                &order(),
                &CreateDetails {
                    description: "Invoice #202401000001",
                    redirect_url: "https://isp.test/bitpay/result?order=o1",
                    metadata: r#"{"c":42}"#,
                    payer: None,
                    speed: "low-medium",
                },
            )
            .unwrap();
        assert_eq!(created.status, InvoiceStatus::Open);
        assert_eq!(created.expires_at, Some(1_700_563_800_000));
        assert_eq!(created.metadata, r#"{"c":42}"#);
        let body: serde_json::Value =
            serde_json::from_slice(canned.requests()[0].body.as_deref().unwrap()).unwrap();
        assert_eq!(body["amount"], "51.61");
        assert_eq!(body["checkout"]["paymentTolerance"], 0);
        assert_eq!(body["checkout"]["speedPolicy"], "LowMediumSpeed");
        assert_eq!(body["metadata"]["orderId"], "o1");
        assert_eq!(body["metadata"]["integration"], MARKER);
        assert!(
            body["metadata"].get("buyerName").is_none(),
            "a direct link names nobody"
        );
    }

    #[test]
    fn a_403_is_an_unknown_invoice_only_while_the_key_still_reads_invoices() {
        let forbidden = || {
            Reply::new(
                403,
                r#"{"code":"missing-permission","message":"Insufficient API Permissions.","missingPermission":"btcpay.store.canviewinvoices"}"#,
            )
        };
        let (server, _) = server(vec![
            forbidden(),
            Reply::new(
                200,
                r#"{"label":"splynx","permissions":["btcpay.store.canviewinvoices:Store1"]}"#,
            ),
            forbidden(),
            Reply::new(200, r#"{"label":"splynx","permissions":[]}"#),
        ]);
        assert!(server.fetch_unknown("Nope1").unwrap().is_none());
        let revoked = server.fetch("Inv1", &order()).unwrap_err();
        assert!(
            matches!(revoked, ServerError::Authorization(_)),
            "{revoked}"
        );
    }

    #[test]
    fn a_lost_create_is_found_by_its_order_id() {
        let (server, canned) = server(vec![Reply::new(
            200,
            r#"[{"id":"Other","metadata":{"orderId":"o1-other"}},{"id":"Inv1","status":"New","metadata":{"orderId":"o1"}}]"#,
        )]);
        let found = server.find_created(&order()).unwrap().unwrap();
        assert_eq!(found.id, "Inv1");
        assert!(canned.requests()[0].url.contains("orderId=o1"));
    }

    #[test]
    fn webhooks_name_the_invoice_and_nothing_else_is_trusted() {
        let format = BtcpayWebhooks { secret: None };
        let notice = format
            .parse_webhook(br#"{"type":"InvoiceSettled","invoiceId":"Inv1","storeId":"S","manuallyMarked":false}"#)
            .unwrap();
        assert_eq!(notice.invoice_id, "Inv1");
        assert_eq!(notice.event.as_deref(), Some("settled"));
        assert_eq!(notice.claimed, None);
        assert_eq!(
            format.parse_webhook(br#"{"type":"InvoiceSettled"}"#),
            Err(WebhookError::NoInvoiceId)
        );
        assert!(matches!(
            format.parse_webhook(br#"{"invoiceId":"../x"}"#),
            Err(WebhookError::BadInvoiceId(_))
        ));
        let payout = format
            .parse_webhook(br#"{"type":"PayoutUpdated","payoutId":"Po1","pullPaymentId":"Pp1","payoutState":"Completed"}"#)
            .unwrap();
        assert_eq!(payout.invoice_id, "", "the refund names its invoice");
        assert_eq!(payout.refund_id.as_deref(), Some("Pp1"));
    }
}
