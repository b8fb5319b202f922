//! BTCPay's webhooks: `BTCPay-Sig: sha256=<hex HMAC-SHA256(secret, raw body)>`, checked
//! before anything else, and the event types in an admin's words.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::server::SignatureCheck;

/// The check of the `BTCPay-Sig` `header` over the exact `body` with the webhook's secret
/// (constant time, `Mac::verify_slice`). Without a secret nothing can be checked.
pub fn check(body: &[u8], header: Option<&str>, secret: Option<&str>) -> SignatureCheck {
    let Some(header) = header else {
        return SignatureCheck::Absent;
    };
    let Some(secret) = secret else {
        return SignatureCheck::NotChecked;
    };
    let claimed = header
        .trim()
        .strip_prefix("sha256=")
        .and_then(|hex_text| hex::decode(hex_text).ok());
    let Some(claimed) = claimed else {
        return SignatureCheck::Invalid;
    };
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    match mac.verify_slice(&claimed) {
        Ok(()) => SignatureCheck::Valid,
        Err(_) => SignatureCheck::Invalid,
    }
}

/// BTCPay's event type in an admin's words (the raw body keeps its name).
pub fn event_words(kind: &str) -> &str {
    match kind {
        "InvoiceCreated" => "created",
        "InvoiceReceivedPayment" => "payment received",
        "InvoicePaymentSettled" => "payment settled",
        "InvoiceProcessing" => "paid, waiting for confirmations",
        "InvoiceExpired" => "expired",
        "InvoiceSettled" => "settled",
        "InvoiceInvalid" => "invalid",
        "InvoicePaidAfterExpiration" => "paid after it expired",
        "InvoiceExpiredPaidPartial" => "expired, partly paid",
        "InvoiceRefund" => "refund created",
        "PayoutCreated" => "refund claimed (payout created)",
        "PayoutApproved" => "refund payout approved",
        "PayoutUpdated" => "refund payout updated",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference's vector: 415 bytes, LF, no trailing newline.
    const BODY: &str = "{\n  \"deliveryId\": \"LJMTFbSEobW7mpmAbfVzJv\",\n  \"webhookId\": \"V9YybsYgDaguxf98N54SJr\",\n  \"originalDeliveryId\": \"LJMTFbSEobW7mpmAbfVzJv\",\n  \"isRedelivery\": false,\n  \"type\": \"InvoiceSettled\",\n  \"timestamp\": 1700562873,\n  \"manuallyMarked\": false,\n  \"overPaid\": false,\n  \"storeId\": \"HUZAUrnnsHztegnRKHhe9LQMcykQVq1Uaj8UyEbkgcWS\",\n  \"invoiceId\": \"4cLstvvUwbmTRpdQ3nAPCG\",\n  \"metadata\": {\n    \"orderId\": \"splynx-5001\"\n  }\n}";
    const SIG: &str = "sha256=92c017af7fc208be5f5854d954a486c5c1ac20654627aa02ae8da2fdef80fb8a";
    const SECRET: &str = "3pXkR8mWq2vTzY7hN4bLcF";

    #[test]
    fn the_reference_vector_verifies_and_nothing_else_does() {
        assert_eq!(BODY.len(), 415);
        let body = BODY.as_bytes();
        assert_eq!(check(body, Some(SIG), Some(SECRET)), SignatureCheck::Valid);
        let with_newline = format!("{BODY}\n");
        assert_eq!(
            check(with_newline.as_bytes(), Some(SIG), Some(SECRET)),
            SignatureCheck::Invalid
        );
        assert_eq!(
            check(body, Some(SIG), Some("other")),
            SignatureCheck::Invalid
        );
        let bare_hex = SIG.trim_start_matches("sha256=");
        assert_eq!(
            check(body, Some(bare_hex), Some(SECRET)),
            SignatureCheck::Invalid
        );
        assert_eq!(
            check(body, Some("sha256=zz"), Some(SECRET)),
            SignatureCheck::Invalid
        );
        assert_eq!(check(body, None, Some(SECRET)), SignatureCheck::Absent);
        assert_eq!(check(body, Some(SIG), None), SignatureCheck::NotChecked);
    }
}
