//! The store against real SQLite files: migrations, locking, queries and their indexes.

use super::*;
use crate::server::{InvoiceStatus, ServerInvoice};
use rust_decimal::Decimal;
use std::str::FromStr;

#[test]
fn migrate_twice_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len() as i64);
    drop(store);
    let again = Store::open(dir.path()).unwrap();
    assert_eq!(again.schema_version().unwrap(), MIGRATIONS.len() as i64);
    assert_eq!(again.integrity_check().unwrap(), "ok");
}

#[test]
fn refuses_a_newer_schema_and_a_foreign_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.conn.pragma_update(None, "user_version", 999).unwrap();
    drop(store);
    let err = Store::open(dir.path()).err().unwrap().to_string();
    assert!(err.contains("newer than this program knows"), "{err}");

    let other = tempfile::tempdir().unwrap();
    fs::write(
        other.path().join("state.db"),
        b"this is not sqlite at all, just text....",
    )
    .unwrap();
    let err = Store::open(other.path()).err().unwrap().to_string();
    assert!(err.contains("state.db"), "{err}");
}

#[test]
fn nonces_only_increase() {
    let store = Store::open_in_memory().unwrap();
    assert_eq!(store.next_nonce("k", 100).unwrap(), 100);
    assert_eq!(store.next_nonce("k", 100).unwrap(), 101);
    assert_eq!(
        store.next_nonce("k", 50).unwrap(),
        102,
        "clock went backwards"
    );
    assert_eq!(store.next_nonce("k", 500).unwrap(), 500);
    assert_eq!(store.next_nonce("other", 7).unwrap(), 7);
}

fn new_invoice(guid: &str) -> NewInvoice {
    NewInvoice {
        guid: guid.into(),
        environment: "test".into(),
        facade: "pos".into(),
        token: Secret::new("t"),
        doc_kind: DocKind::Invoice,
        doc_id: Some(1),
        doc_number: Some("N1".into()),
        customer_id: 5,
        price: Decimal::from_str("51.61").unwrap(),
        currency: "USD".into(),
        order_id: format!("o-{guid}"),
        partner_id: Some(2),
        fee: None,
        origin: None,
        terms: None,
    }
}

#[test]
fn a_hold_is_recorded_as_a_finding_once() {
    let store = Store::open_in_memory().unwrap();
    let record = store.insert_invoice(&new_invoice("g1"), 1).unwrap();
    store
        .mark_credited(record.id, 9, "paid", Some(100), 2)
        .unwrap();
    let record = store.invoice(record.id).unwrap().unwrap();
    assert!(store
        .hold(&record, HoldKind::Reversed, "invalid", &[], 3)
        .unwrap());
    assert!(!store
        .hold(&record, HoldKind::Reversed, "invalid again", &[], 4)
        .unwrap());
    let held = store.invoice(record.id).unwrap().unwrap();
    assert_eq!(held.settlement, Settlement::Reversed);
    assert_eq!(held.splynx_payment_id, Some(9), "the payment id stays");
    assert_eq!(held.watch_until, None);
    let first = store.unreported_findings().unwrap();
    assert_eq!(first.len(), 1);
    store.mark_findings_reported(&first, 5).unwrap();
    // Duplicates on another record: the ids are kept.
    let other = store.insert_invoice(&new_invoice("g2"), 5).unwrap();
    assert!(store
        .hold(&other, HoldKind::Duplicate, "two", &[7, 8], 6)
        .unwrap());
    let other = store.invoice(other.id).unwrap().unwrap();
    assert_eq!(other.duplicate_payment_ids, vec![7, 8]);
    assert_eq!(store.duplicate_count().unwrap(), 1);
    let findings = store.unreported_findings().unwrap();
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].kind, "duplicate");
    // Resolved: never held again, never moved by automation.
    assert!(store.resolve(other.id, "done", 7).unwrap());
    assert!(!store.hold(&other, HoldKind::Review, "x", &[], 8).unwrap());
    assert!(!store
        .set_settlement(other.id, Settlement::Expired, None, 9)
        .unwrap());
    assert!(!store.resolve(other.id, "again", 10).unwrap());
}

#[test]
fn migration_5_keeps_rows_and_watches_recent_credits() {
    let mut conn = Connection::open_in_memory().unwrap();
    let tx = conn.transaction().unwrap();
    for sql in &MIGRATIONS[..4] {
        tx.execute_batch(sql).unwrap();
    }
    tx.pragma_update(None, "user_version", 4).unwrap();
    tx.commit().unwrap();
    for (id, settlement, status) in [
        (1, "credited", "confirmed"),
        (2, "credited", "complete"),
        (3, "open", "new"),
    ] {
        conn.execute(
            "INSERT INTO invoices (id, guid, bitpay_id, environment, facade, token, doc_kind,
                 customer_id, price, currency, order_id, bitpay_status, settlement,
                 splynx_payment_id, created_at, updated_at)
             VALUES (?1, 'g' || ?1, 'B' || ?1, 'test', 'pos', 't', 'invoice', 5, '1.00',
                 'USD', 'o' || ?1, ?3, ?2, 9, 1000, 2000)",
            params![id, settlement, status],
        )
        .unwrap();
    }
    migrate(&mut conn, "test").unwrap();
    let store = Store {
        conn,
        locks_dir: None,
    };
    let watched = store.invoice(1).unwrap().unwrap();
    assert_eq!(watched.settlement, Settlement::Credited);
    assert_eq!(watched.watch_until, Some(2000 + 7 * 86_400_000));
    assert_eq!(watched.credited_at, Some(2000));
    assert_eq!(store.invoice(2).unwrap().unwrap().watch_until, None);
    assert_eq!(
        store.invoice(3).unwrap().unwrap().settlement,
        Settlement::Open
    );
    assert_eq!(store.watched_invoices(3000).unwrap().len(), 1);
    assert_eq!(store.integrity_check().unwrap(), "ok");
}

#[test]
fn migration_6_scrubs_tokens_from_journal_text() {
    let mut conn = Connection::open_in_memory().unwrap();
    let tx = conn.transaction().unwrap();
    for sql in &MIGRATIONS[..5] {
        tx.execute_batch(sql).unwrap();
    }
    tx.pragma_update(None, "user_version", 5).unwrap();
    tx.commit().unwrap();
    conn.execute(
        "INSERT INTO tokens (environment, facade, token, approved, created_at)
         VALUES ('test', 'pos', 'PosTokenValue12345', 1, 1)",
        [],
    )
    .unwrap();
    for (summary, detail) in [
        (
            "fetch failed: error sending request for url (https://bitpay.com/invoices/X?token=PosTokenValue12345): connection closed",
            None,
        ),
        (
            "fetch failed: error for url (https://bitpay.com/invoices?token=GoneToken999&dateStart=x)",
            Some("PosTokenValue12345 again"),
        ),
        ("received (invoice_confirmed); signature valid", None),
    ] {
        conn.execute(
            "INSERT INTO journal (at, kind, summary, detail) VALUES (1, 'fetch', ?1, ?2)",
            params![summary, detail],
        )
        .unwrap();
    }
    migrate(&mut conn, "test").unwrap();
    let mut stmt = conn
        .prepare("SELECT summary, detail FROM journal ORDER BY id")
        .unwrap();
    let rows: Vec<(String, Option<String>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|row| row.unwrap())
        .collect();
    let all = format!("{rows:?}");
    assert!(!all.contains("PosTokenValue12345"), "{all}");
    assert!(!all.contains("GoneToken999"), "{all}");
    assert!(rows[0].0.contains("token=(redacted)"), "{all}");
    assert!(rows[1].0.contains("token=(redacted)&dateStart=x"), "{all}");
    assert_eq!(rows[2].0, "received (invoice_confirmed); signature valid");
}

#[test]
fn hot_queries_are_served_by_indexes() {
    let store = Store::open_in_memory().unwrap();
    for (name, plan) in store.query_plans().unwrap() {
        let text = plan.join("; ");
        assert!(!text.is_empty(), "{name}: no plan");
        // The oldest entry is the first row in rowid order: a scan that stops at once.
        assert!(
            name == "oldest journal entry" || !text.contains("SCAN journal"),
            "{name} scans the whole journal: {text}"
        );
        // A temporary B-tree sorts what the index found; only fine for a few rows.
        let few_rows = matches!(
            name,
            "oldest unsettled invoices" | "held invoices" | "unsettled invoices"
        );
        assert!(
            few_rows || !text.contains("TEMP B-TREE"),
            "{name} sorts: {text}"
        );
    }
}

#[test]
fn counts_by_state_follow_every_change() {
    let store = Store::open_in_memory().unwrap();
    let a = store.insert_invoice(&new_invoice("a"), 1).unwrap();
    let b = store.insert_invoice(&new_invoice("b"), 1).unwrap();
    store
        .set_settlement(a.id, Settlement::Open, None, 2)
        .unwrap();
    store.mark_credited(a.id, 9, "paid", None, 3).unwrap();
    store
        .set_settlement(b.id, Settlement::Expired, None, 3)
        .unwrap();
    store.insert_invoice(&new_invoice("c"), 4).unwrap();
    store.delete_creating("c").unwrap();
    let counted: Vec<(String, i64)> = store
        .conn
        .prepare(
            "SELECT settlement, count(*) FROM invoices GROUP BY settlement ORDER BY settlement",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(store.settlement_counts().unwrap(), counted);
    assert_eq!(
        counted,
        vec![("credited".to_string(), 1), ("expired".to_string(), 1)]
    );
}

#[test]
fn credited_is_never_undone() {
    let store = Store::open_in_memory().unwrap();
    let record = store.insert_invoice(&new_invoice("g1"), 1).unwrap();
    assert_eq!(record.settlement, Settlement::Creating);
    store
        .mark_created(
            "g1",
            &ServerInvoice {
                id: "B1".into(),
                url: "u".into(),
                status: InvoiceStatus::Open,
                expires_at: Some(10),
                ..Default::default()
            },
            "created",
            2,
        )
        .unwrap();
    store.mark_credited(record.id, 9, "paid", None, 3).unwrap();
    assert!(!store
        .set_settlement(record.id, Settlement::Expired, None, 4)
        .unwrap());
    let stored = store.invoice_by_bitpay_id("B1").unwrap().unwrap();
    assert_eq!(stored.settlement, Settlement::Credited);
    assert_eq!(stored.order.price.to_string(), "51.61");
    assert_eq!(stored.splynx_payment_id, Some(9));
}
