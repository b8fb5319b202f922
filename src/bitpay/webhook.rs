//! BitPay's webhooks, as BitPay signs and names them: the `x-signature` check and the
//! events in an admin's words. The body is only a trigger; what settles is a fresh fetch.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::server::SignatureCheck;

/// The check of the `x-signature` `header` over `body` with the invoice's token (when we
/// hold it).
pub fn check(body: &[u8], header: Option<&str>, token: Option<&str>) -> SignatureCheck {
    match (header, token) {
        (None, _) => SignatureCheck::Absent,
        (Some(_), None) => SignatureCheck::NotChecked,
        (Some(header), Some(token)) if signature_matches(body, token, header) => {
            SignatureCheck::Valid
        }
        (Some(_), Some(_)) => SignatureCheck::Invalid,
    }
}

/// `base64(HMAC-SHA256(key = token, msg = raw body))`, verified in constant time
/// (`Mac::verify_slice`).
pub fn signature_matches(body: &[u8], token: &str, header: &str) -> bool {
    let Ok(claimed) = base64::engine::general_purpose::STANDARD.decode(header.trim()) else {
        return false;
    };
    let mut mac =
        Hmac::<Sha256>::new_from_slice(token.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    mac.verify_slice(&claimed).is_ok()
}

/// BitPay's webhook event in an admin's words (the raw body keeps its name).
pub fn event_words(name: &str) -> &str {
    match name {
        "invoice_created" => "created",
        "invoice_receivedPayment" => "payment received",
        "invoice_paidInFull" => "paid in full",
        "invoice_expired" => "expired",
        "invoice_confirmed" => "confirmed",
        "invoice_completed" => "complete",
        "invoice_manuallyNotified" => "sent again on request",
        "invoice_failedToConfirm" => "failed to confirm",
        "invoice_refundComplete" => "refund complete",
        "invoice_declined" => "declined",
        "invoice_markedInvalid" => "marked invalid",
        "invoice_paidAfterExpiration" => "paid after it expired",
        "refund_created" => "refund requested",
        "refund_pending" => "refund pending",
        "refund_success" => "refund paid out",
        "refund_failure" => "refund failed",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_checks_say_what_they_found() {
        let body = b"{}";
        assert_eq!(check(body, None, Some("t")), SignatureCheck::Absent);
        assert_eq!(check(body, Some("x"), None), SignatureCheck::NotChecked);
        assert_eq!(
            check(body, Some("not base64!"), Some("t")),
            SignatureCheck::Invalid
        );
    }

    #[test]
    fn webhook_hmac_vector() {
        // The official WooCommerce plugin's fixture: 1306 bytes, LF, no trailing newline.
        let body = include_str!("../../tests/data/bitpay_paid_ipn_webhook.json");
        assert_eq!(body.len(), 1306);
        assert!(signature_matches(
            body.as_bytes(),
            "my_secret_key",
            "G3AN1yIRVFPahcmKXK0qg9UksH9WlK3Llvvs7APZOzc="
        ));
        let with_newline = format!("{body}\n");
        assert!(signature_matches(
            with_newline.as_bytes(),
            "my_secret_key",
            "zH/aVTJ4mEzYuMlzNwsuNM6mnh/xfHgY9Hzizv5ENpY="
        ));
        assert!(!signature_matches(
            body.as_bytes(),
            "other_key",
            "G3AN1yIRVFPahcmKXK0qg9UksH9WlK3Llvvs7APZOzc="
        ));
        assert!(!signature_matches(body.as_bytes(), "my_secret_key", ""));
    }
}
