//! What a customer is told about their payment on the result page: decided here from the
//! stored state, so the PHP page only renders it.

use serde::Serialize;

use crate::domain::{DocKind, InvoiceRecord, InvoiceStatus, Settlement};

/// The result page's headline, tone, explanation and whether it refreshes by itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomerView {
    pub title: &'static str,
    /// Bootstrap alert kind: success, info, warning, danger.
    pub tone: &'static str,
    pub text: String,
    pub refresh: bool,
    /// "Invoice #202401000001", "Proforma invoice #…", "Balance top-up".
    pub what: String,
}

/// `server` names the payment server the customer paid through ("BitPay").
pub fn customer_view(record: &InvoiceRecord, server: &str) -> CustomerView {
    let status = record.status;
    let (title, tone, text, refresh) = match record.settlement {
        Settlement::Credited => ("Paid", "success", "Thank you! Your payment was received and credited to your account.", false),
        Settlement::Review | Settlement::Reversed => ("Under review", "warning", "BitPay reported a problem with this payment (for example a partial or late payment). Your provider will review it; amounts that are not credited are refunded.", false),
        Settlement::Resolved => ("Reviewed", "info", "Your provider has reviewed this payment. Please contact them if you have questions about it.", false),
        Settlement::Crediting | Settlement::Sent => ("Waiting for confirmations", "info", "Your payment was received by BitPay and is being credited to your account; you can close this page.", true),
        _ if matches!(status, InvoiceStatus::PaidUnconfirmed | InvoiceStatus::PaidConfirmed | InvoiceStatus::Final) => ("Waiting for confirmations", "info", "Your payment was received by BitPay and is waiting for confirmations on the blockchain. It will be credited automatically; you can close this page.", true),
        Settlement::Expired => ("Not paid / expired", "danger", "This BitPay invoice was not paid in time and has expired. You can start a new payment from your portal.", false),
        _ if status.is_over() || status == InvoiceStatus::ExpiredPaidLate => ("Not paid / expired", "danger", "This BitPay invoice was not paid in time and has expired. You can start a new payment from your portal.", false),
        _ => ("Not paid yet", "warning", "BitPay has not reported a payment for this invoice yet. If you have just paid, this page updates by itself in a few seconds.", true),
    };
    let number = record.order.doc_number.as_deref().unwrap_or("");
    let what = match record.order.doc_kind {
        DocKind::Refill => "Balance top-up".to_string(),
        DocKind::Invoice => format!("Invoice #{number}"),
        DocKind::Proforma => format!("Proforma invoice #{number}"),
    };
    CustomerView {
        title,
        tone,
        text: text.replace("BitPay", server),
        refresh,
        what,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(settlement: Settlement, bitpay: &str, kind: DocKind) -> InvoiceRecord {
        let mut record = InvoiceRecord::example(1, settlement, bitpay);
        record.order.doc_kind = kind;
        record
    }

    #[test]
    fn every_state_reads_as_a_customer_expects() {
        use DocKind::{Invoice, Proforma, Refill};
        use Settlement::*;
        let cases = [
            (Credited, "confirmed", "Paid", false),
            (Review, "complete", "Under review", false),
            (Reversed, "invalid", "Under review", false),
            (Resolved, "declined", "Reviewed", false),
            (Crediting, "confirmed", "Waiting for confirmations", true),
            (Sent, "confirmed", "Waiting for confirmations", true),
            (Open, "paid", "Waiting for confirmations", true),
            (Open, "invalid", "Not paid / expired", false),
            (Expired, "expired", "Not paid / expired", false),
            (Open, "new", "Not paid yet", true),
            (Creating, "unknown", "Not paid yet", true),
        ];
        for (settlement, bitpay, title, refresh) in cases {
            let view = customer_view(&record(settlement, bitpay, Invoice), "BitPay");
            assert_eq!(
                (view.title, view.refresh),
                (title, refresh),
                "{settlement:?} {bitpay}"
            );
        }
        assert_eq!(
            customer_view(&record(Open, "new", Invoice), "BitPay").what,
            "Invoice #202401000001"
        );
        assert_eq!(
            customer_view(&record(Open, "new", Proforma), "BitPay").what,
            "Proforma invoice #202401000001"
        );
        assert_eq!(
            customer_view(&record(Open, "new", Refill), "BitPay").what,
            "Balance top-up"
        );
    }
}
