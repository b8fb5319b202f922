fn d(text: &str) -> Decimal {
    text.parse().unwrap()
}

use super::*;

fn period() -> Period {
    Period {
        from: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        to: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
    }
}

fn invoice(id: &str, status: InvoiceStatus, customer: i64, doc: Document) -> AuditInvoice {
    AuditInvoice {
        id: id.to_string(),
        price: Some(d("25.00")),
        currency: "USD".into(),
        status,
        words: StatusWords {
            status: status.as_str().into(),
            exception: None,
        },
        owner: Some(Owner {
            customer_id: Some(customer),
            document: doc,
        }),
        in_period: true,
        ..AuditInvoice::default()
    }
}

fn payment(id: i64, receipt: &str, customer: i64, amount: Decimal, doc: Document) -> Booked {
    Booked {
        id,
        customer_id: customer,
        receipt: receipt.to_string(),
        amount: Some(amount),
        date: "2026-11-15".into(),
        document: doc,
        in_period: true,
    }
}

fn refund(id: &str, invoice: &str, state: RefundState) -> ServerRefund {
    ServerRefund {
        id: id.into(),
        invoice_id: invoice.into(),
        words: state.as_str().into(),
        state,
        amount: Some(d("10.00")),
        currency: "USD".into(),
        key: None,
        claim_link: None,
    }
}

fn facts(invoices: Vec<AuditInvoice>, payments: Vec<Booked>, refunds: Vec<ServerRefund>) -> Facts {
    Facts {
        period: period(),
        invoices,
        payments,
        refunds,
        refunds_unread: None,
    }
}

fn kinds(audit: &Audit) -> Vec<(Kind, String)> {
    audit
        .differences
        .iter()
        .map(|d| (d.kind, d.invoice_id.clone()))
        .collect()
}

const INV: Document = Document::Invoice(101);

#[test]
fn a_clean_period_has_no_difference_and_counts_both_sides() {
    let audit = compare(&facts(
        vec![
            invoice("A", InvoiceStatus::Final, 42, INV),
            invoice("B", InvoiceStatus::PaidConfirmed, 43, Document::Refill),
        ],
        vec![
            payment(1, "A", 42, d("25.00"), INV),
            payment(2, "B", 43, d("25"), Document::Refill),
        ],
        vec![],
    ));
    assert!(audit.differences.is_empty(), "{:?}", audit.differences);
    assert_eq!(audit.totals.matched, 2);
    assert_eq!(audit.totals.paid_at_server, 2);
    assert_eq!(audit.totals.splynx_payments, 2);
    assert_eq!(audit.totals.paid_amounts["USD"], d("50.00"));
}

#[test]
fn each_kind_of_difference_is_found_once() {
    let mut foreign = invoice("F", InvoiceStatus::Final, 9, INV);
    foreign.owner = None;
    let audit = compare(&facts(
        vec![
            invoice("MISSING", InvoiceStatus::Final, 42, INV),
            invoice("AMOUNT", InvoiceStatus::Final, 42, INV),
            invoice("DUP", InvoiceStatus::Final, 42, INV),
            invoice("WHO", InvoiceStatus::Final, 42, INV),
            invoice("DOC", InvoiceStatus::Final, 42, INV),
            invoice("EXPIRED", InvoiceStatus::Expired, 42, INV),
            invoice("REFUNDED", InvoiceStatus::Final, 42, INV),
            foreign,
        ],
        vec![
            payment(1, "AMOUNT", 42, d("20.00"), INV),
            payment(2, "DUP", 42, d("25.00"), INV),
            payment(3, "DUP", 42, d("25.00"), INV),
            payment(4, "WHO", 7, d("25.00"), INV),
            payment(5, "DOC", 42, d("25.00"), Document::Proforma(5)),
            payment(6, "EXPIRED", 42, d("25.00"), INV),
            payment(7, "NOWHERE", 42, d("25.00"), INV),
            payment(8, "REFUNDED", 42, d("25.00"), INV),
            payment(9, "R-STRAY", 42, d("-5.00"), Document::Refill),
        ],
        vec![refund("R1", "REFUNDED", RefundState::PaidOut)],
    ));
    assert_eq!(
        kinds(&audit),
        [
            (Kind::MissingInSplynx, "MISSING".to_string()),
            (Kind::NotPaidAtServer, "EXPIRED".to_string()),
            (Kind::NotPaidAtServer, "NOWHERE".to_string()),
            (Kind::AmountDiffers, "AMOUNT".to_string()),
            (Kind::CustomerDiffers, "WHO".to_string()),
            (Kind::DocumentDiffers, "DOC".to_string()),
            (Kind::Duplicate, "DUP".to_string()),
            (Kind::RefundNotBooked, "REFUNDED".to_string()),
            (Kind::RefundNotAtServer, String::new()),
        ]
    );
    assert_eq!(audit.totals.foreign, 1);
    let stray = audit.differences.last().unwrap();
    assert_eq!(stray.refund_id.as_deref(), Some("R-STRAY"));
    assert_eq!(stray.splynx_payment_ids, [9]);
}

#[test]
fn refunds_booked_once_for_their_amount_match_and_open_ones_are_not_owed() {
    let booked = payment(9, "R1", 42, d("-10.00"), Document::Refill);
    let audit = compare(&facts(
        vec![invoice("A", InvoiceStatus::Final, 42, INV)],
        vec![payment(1, "A", 42, d("25.00"), INV), booked.clone()],
        vec![
            refund("R1", "A", RefundState::PaidOut),
            refund("R2", "A", RefundState::Requested),
        ],
    ));
    assert!(audit.differences.is_empty(), "{:?}", audit.differences);
    assert_eq!(
        (audit.totals.refunds_paid_out, audit.totals.refunds_booked),
        (1, 1)
    );
    // Booked for a refund the server still has open: the money has not left.
    let audit = compare(&facts(
        vec![invoice("A", InvoiceStatus::Final, 42, INV)],
        vec![payment(1, "A", 42, d("25.00"), INV), {
            let mut b = booked;
            b.receipt = "R2".into();
            b
        }],
        vec![refund("R2", "A", RefundState::Requested)],
    ));
    assert_eq!(kinds(&audit), [(Kind::RefundNotAtServer, "A".to_string())]);
}

#[test]
fn unconfirmed_invoices_wait_and_held_ones_say_why() {
    let mut late = invoice("LATE", InvoiceStatus::ExpiredPaidLate, 42, INV);
    late.held = Some("paid after it expired".into());
    let audit = compare(&facts(
        vec![
            invoice("WAIT", InvoiceStatus::PaidUnconfirmed, 42, INV),
            late,
        ],
        vec![],
        vec![],
    ));
    assert_eq!(audit.totals.awaiting_confirmation, 1);
    assert_eq!(kinds(&audit), [(Kind::MissingInSplynx, "LATE".to_string())]);
    assert!(audit.differences[0]
        .detail
        .contains("paid after it expired"));
}

#[test]
fn items_outside_the_period_are_compared_only_for_what_is_inside() {
    // Created in October, credited on November 1st: November's payment matches it.
    let mut october = invoice("OCT", InvoiceStatus::Final, 42, INV);
    october.in_period = false;
    let mut earlier = invoice("OLD", InvoiceStatus::Final, 42, INV);
    earlier.in_period = false;
    let audit = compare(&facts(
        vec![october, earlier],
        vec![payment(1, "OCT", 42, d("25.00"), INV)],
        vec![],
    ));
    assert!(audit.differences.is_empty(), "{:?}", audit.differences);
    assert_eq!(audit.totals.paid_at_server, 0);
    assert_eq!(audit.totals.matched, 1);
}

#[test]
fn periods_are_local_days_both_included() {
    let p = Period::month_before(NaiveDate::from_ymd_opt(2027, 1, 5).unwrap());
    assert_eq!(
        (p.from.to_string(), p.to.to_string()),
        ("2026-12-01".into(), "2026-12-31".into())
    );
    assert!(p.contains_date("2026-12-31") && p.contains_date("2026-12-01 10:00:00"));
    assert!(!p.contains_date("2027-01-01") && !p.contains_date("garbage"));
    assert!(p.contains_ms(p.start_ms()) && !p.contains_ms(p.end_ms()));
    assert!(p.end_ms() - p.start_ms() >= 31 * 24 * 3600 * 1000 - 3600 * 1000);
}

#[test]
fn the_csv_has_a_header_a_row_per_difference_and_no_formulas() {
    let audit = compare(&facts(
        vec![],
        vec![payment(7, "=HYPERLINK(\"x\")", 42, d("25.00"), INV)],
        vec![],
    ));
    let text = render::csv(&audit);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header[2], "kind");
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(&rows[0][2], "not_paid_at_server");
    assert_eq!(&rows[0][4], "'=HYPERLINK(\"x\")");
    assert_eq!(&rows[0][6], "7");
    assert_eq!(&rows[0][10], "25.00");
}
