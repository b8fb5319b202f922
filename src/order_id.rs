//! The BitPay `orderId` of our invoices, written and read in one place.
//!
//! `splynx-invoice-101-3f9a2c1d-9c0e41d27a3b5f60`: the document (`invoice` or `proforma`
//! and its Splynx id, or `refill-c<customer>`), eight characters that keep it unique per
//! attempt, and a MAC over all of that keyed from this installation's private key. An
//! invoice found at BitPay with no local record is adopted only when its MAC verifies:
//! another integration on the same BitPay account, or an invoice crafted to look like
//! ours, is never credited. Order ids written before the MAC existed (no last part) still
//! settle when we hold their local record; they are never adopted.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::bitpay::Identity;
use crate::domain::DocKind;

/// Hex characters of the MAC: 64 bits, far beyond guessing through a webhook URL.
const MAC_HEX: usize = 16;
const UNIQUE_HEX: usize = 8;

/// The document an order id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderRef {
    pub kind: DocKind,
    /// The Splynx invoice or proforma id (None for a refill).
    pub doc_id: Option<i64>,
    /// The customer of a refill (None for documents: Splynx says whose they are).
    pub refill_customer: Option<i64>,
}

/// The MAC key, derived from the add-on's private key.
pub struct OrderKey([u8; 32]);

impl OrderKey {
    pub fn of(identity: &Identity) -> OrderKey {
        OrderKey(identity.derive_key("splynx-bitpay order id v1"))
    }

    fn mac(&self, text: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(text.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..MAC_HEX / 2])
    }
}

/// A new order id for `document`; `guid` makes it unique per attempt.
pub fn write(document: OrderRef, customer_id: i64, guid: &str, key: &OrderKey) -> String {
    let unique: String = guid
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(UNIQUE_HEX)
        .collect();
    let body = match document.kind {
        DocKind::Refill => format!("splynx-refill-c{customer_id}-{unique}"),
        kind => format!(
            "splynx-{}-{}-{unique}",
            kind.as_str(),
            document.doc_id.unwrap_or_default()
        ),
    };
    let mac = key.mac(&body);
    format!("{body}-{mac}")
}

/// The document a MAC-verified order id names; `None` for anything this installation did
/// not write (another format, an old id without a MAC, a wrong MAC).
pub fn verify(order_id: &str, key: &OrderKey) -> Option<OrderRef> {
    let (body, mac) = order_id.rsplit_once('-')?;
    if mac.len() != MAC_HEX || !is_lower_hex(mac) {
        return None;
    }
    let expected = key.mac(body);
    // Constant time: the comparison must not tell a forger how much of a guess was right.
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        expected.as_bytes(),
        mac.as_bytes(),
    )) {
        return None;
    }
    parse_body(body)
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `splynx-<kind>-<target>-<8 hex>`.
fn parse_body(body: &str) -> Option<OrderRef> {
    let rest = body.strip_prefix("splynx-")?;
    let (kind, rest) = rest.split_once('-')?;
    let (target, unique) = rest.rsplit_once('-')?;
    if unique.len() != UNIQUE_HEX || !unique.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let positive = |text: &str| text.parse().ok().filter(|i: &i64| *i > 0);
    match kind {
        "invoice" | "proforma" => Some(OrderRef {
            kind: kind.parse().ok()?,
            doc_id: Some(positive(target)?),
            refill_customer: None,
        }),
        "refill" => Some(OrderRef {
            kind: DocKind::Refill,
            doc_id: None,
            refill_customer: Some(positive(target.strip_prefix('c')?)?),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(byte: u8) -> OrderKey {
        OrderKey::of(&Identity::from_secret_bytes(&[byte; 32]).unwrap())
    }

    const GUID: &str = "3f9a2c1d-0000-4000-8000-000000000000";

    #[test]
    fn order_ids_name_the_document_and_carry_a_mac() {
        let k = key(7);
        let invoice = OrderRef {
            kind: DocKind::Invoice,
            doc_id: Some(101),
            refill_customer: None,
        };
        let id = write(invoice, 42, GUID, &k);
        assert!(id.starts_with("splynx-invoice-101-3f9a2c1d-"), "{id}");
        assert_eq!(id.len(), "splynx-invoice-101-3f9a2c1d-".len() + MAC_HEX);
        assert_eq!(verify(&id, &k), Some(invoice));
        let refill = OrderRef {
            kind: DocKind::Refill,
            doc_id: None,
            refill_customer: Some(42),
        };
        let id = write(refill, 42, GUID, &k);
        assert!(id.starts_with("splynx-refill-c42-3f9a2c1d-"), "{id}");
        assert_eq!(verify(&id, &k), Some(refill));
    }

    #[test]
    fn foreign_forged_and_old_ids_are_not_verified() {
        let ours = key(7);
        let theirs = key(8);
        let document = OrderRef {
            kind: DocKind::Proforma,
            doc_id: Some(7),
            refill_customer: None,
        };
        let id = write(document, 42, GUID, &theirs);
        assert_eq!(verify(&id, &ours), None, "another installation's id");
        // Another document, same MAC: the MAC covers the document.
        let moved = id.replace("proforma-7-", "proforma-8-");
        assert_eq!(verify(&moved, &theirs), None);
        for bad in [
            "splynx-invoice-101-3f9a2c1d",
            "splynx-invoice-101-3f9a2c1d-0000000000000000",
            "splynx-invoice-101-3f9a2c1d-ZZZZ",
            "order-1001",
            "",
        ] {
            assert_eq!(verify(bad, &ours), None, "{bad}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// What is written parses back to the same document, and only with its own key.
        #[test]
        fn what_is_written_verifies_back(
            kind in prop_oneof![Just(DocKind::Invoice), Just(DocKind::Proforma), Just(DocKind::Refill)],
            target in 1i64..=i64::MAX,
            guid in "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}",
            byte in 1u8..=200,
        ) {
            let document = match kind {
                DocKind::Refill => OrderRef { kind, doc_id: None, refill_customer: Some(target) },
                _ => OrderRef { kind, doc_id: Some(target), refill_customer: None },
            };
            let k = key(byte);
            let id = write(document, target, &guid, &k);
            prop_assert_eq!(verify(&id, &k), Some(document));
            prop_assert_eq!(verify(&id, &key(byte.wrapping_add(1).max(1))), None);
        }
    }
}
