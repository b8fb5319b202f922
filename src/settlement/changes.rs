//! Which records a sweep must fetch when the server lists its invoices cheaply (BTCPay):
//! one paged listing of recent invoices instead of one request per open invoice. The
//! listing is only a trigger, like a webhook: a record is skipped only when the listing
//! shows it exactly as we last saw it and that state leaves nothing to do; everything
//! else (changed, missing from the listing, older than the window) is fetched fresh and
//! decided as always.

use crate::domain::{InvoiceRecord, InvoiceStatus};
use crate::server::ServerInvoice;
use crate::store::Settlement;

/// Server and local clocks may differ, and a create is stored just before it is sent.
pub(super) const OVERLAP_MS: i64 = 3_600_000;
/// The listing never reaches further back: older records are fetched one by one.
pub(super) const MAX_WINDOW_MS: i64 = 7 * 86_400_000;

/// Where the listing starts: at the oldest record to check, or at the last listing (to
/// find invoices whose create answer was lost since), less the overlap, but no further
/// back than `MAX_WINDOW_MS`.
pub(super) fn window_start(records: &[InvoiceRecord], last_listed: Option<i64>, now: i64) -> i64 {
    let oldest = records.iter().map(|r| r.created_at).min();
    let from = match (oldest, last_listed) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => now,
    };
    (from - OVERLAP_MS).max(now - MAX_WINDOW_MS)
}

/// Records split by what the listing showed.
#[derive(Debug, Default)]
pub(super) struct Selection {
    /// Fetched and decided.
    pub(super) fetch: Vec<InvoiceRecord>,
    /// Listed exactly as last seen, with nothing to do: open and unpaid, or credited and
    /// not taken back.
    pub(super) unchanged: Vec<InvoiceRecord>,
}

pub(super) fn select(records: Vec<InvoiceRecord>, listed: &[ServerInvoice]) -> Selection {
    let by_id: std::collections::HashMap<&str, &ServerInvoice> =
        listed.iter().map(|i| (i.id.as_str(), i)).collect();
    let mut selection = Selection::default();
    for record in records {
        let seen = record
            .bitpay_id
            .as_ref()
            .and_then(|id| by_id.get(id.as_str()));
        let idle = match record.settlement {
            Settlement::Credited => true,
            Settlement::Open => record.status == InvoiceStatus::Open,
            _ => false,
        };
        match seen {
            Some(now) if idle && now.status == record.status && now.words == record.words => {
                selection.unchanged.push(record)
            }
            _ => selection.fetch.push(record),
        }
    }
    selection
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{InvoiceId, StatusWords};

    fn record(
        id: &str,
        settlement: Settlement,
        status: InvoiceStatus,
        words: &str,
    ) -> InvoiceRecord {
        let mut record = InvoiceRecord::example(1, settlement, words);
        record.bitpay_id = Some(InvoiceId::from(id.to_string()));
        record.status = status;
        record
    }

    fn listed(id: &str, status: InvoiceStatus, words: &str) -> ServerInvoice {
        ServerInvoice {
            id: id.into(),
            status,
            words: StatusWords {
                status: words.into(),
                exception: None,
            },
            ..ServerInvoice::default()
        }
    }

    fn ids(records: &[InvoiceRecord]) -> Vec<&str> {
        records
            .iter()
            .map(|r| r.bitpay_id.as_ref().unwrap().as_str())
            .collect()
    }

    #[test]
    fn only_what_is_listed_as_last_seen_and_idle_is_skipped() {
        use InvoiceStatus::*;
        let records = vec![
            record("open", Settlement::Open, Open, "New"),
            record("paid", Settlement::Open, Open, "New"),
            record("gone", Settlement::Open, Open, "New"),
            record(
                "processing",
                Settlement::Open,
                PaidUnconfirmed,
                "Processing",
            ),
            record("settled-unbooked", Settlement::Open, Final, "Settled"),
            record("credited", Settlement::Credited, Final, "Settled"),
            record("taken-back", Settlement::Credited, Final, "Settled"),
            record("held", Settlement::Review, MarkedFinal, "Settled"),
        ];
        let listing = vec![
            listed("open", Open, "New"),
            listed("paid", Final, "Settled"),
            listed("processing", PaidUnconfirmed, "Processing"),
            listed("settled-unbooked", Final, "Settled"),
            listed("credited", Final, "Settled"),
            listed("taken-back", Invalid, "Invalid"),
            listed("held", MarkedFinal, "Settled"),
        ];
        let selection = select(records, &listing);
        assert_eq!(ids(&selection.unchanged), ["open", "credited"]);
        assert_eq!(
            ids(&selection.fetch),
            [
                "paid",
                "gone",
                "processing",
                "settled-unbooked",
                "taken-back",
                "held"
            ]
        );
    }

    #[test]
    fn the_same_status_in_other_words_is_a_change() {
        let records = vec![record("a", Settlement::Open, InvoiceStatus::Open, "New")];
        let mut partly = listed("a", InvoiceStatus::Open, "New");
        partly.words.exception = Some("PaidPartial".into());
        assert_eq!(select(records, &[partly]).fetch.len(), 1);
    }

    #[test]
    fn the_window_covers_the_oldest_record_and_the_last_listing_within_a_week() {
        let now = 100 * 86_400_000;
        let mut young = record("a", Settlement::Open, InvoiceStatus::Open, "New");
        young.created_at = now - 86_400_000;
        let records = vec![young];
        assert_eq!(
            window_start(&records, None, now),
            now - 86_400_000 - OVERLAP_MS
        );
        assert_eq!(
            window_start(&records, Some(now - 2 * 86_400_000), now),
            now - 2 * 86_400_000 - OVERLAP_MS
        );
        assert_eq!(
            window_start(&records, Some(now - 30 * 86_400_000), now),
            now - MAX_WINDOW_MS
        );
        assert_eq!(window_start(&[], None, now), now - OVERLAP_MS);
    }
}
