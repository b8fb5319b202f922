//! The service fee: shown before the customer pays, charged at BitPay as part of the total,
//! booked in Splynx as one debit transaction (exactly once, like the payment), per partner.

use serde_json::Value;

use crate::util::Env;

/// 2 % fee with 20 % VAT on it, for everyone.
fn with_fee(env: &Env) {
    env.write_config(&format!(
        "{}\n[fee]\npercent = \"2\"\nvat_percent = \"20\"\nmessage = \"Crypto fee\"\ncategory = 1\n",
        env.default_config()
    ));
}

fn paired_with_fee() -> Env {
    let env = Env::new();
    env.pair();
    with_fee(&env);
    env
}

fn fee_transactions(env: &Env, id: &str) -> Vec<Value> {
    env.splynx
        .transactions()
        .into_iter()
        .filter(|t| t["comment"] == format!("BitPay invoice {id}"))
        .collect()
}

#[test]
fn the_window_shows_amount_fee_and_total_before_paying() {
    let env = paired_with_fee();
    let run = env.create_invoice(&["--customer", "42", "--invoice", "101", "--check"]);
    run.assert_code(0);
    let json = run.json();
    assert_eq!(json["amount"], "51.61");
    assert_eq!(json["price"], "52.85");
    assert_eq!(json["fee"]["label"], "Crypto fee");
    assert_eq!(json["fee"]["percent"], "2");
    assert_eq!(json["fee"]["fee"], "1.03");
    assert_eq!(json["fee"]["vat_percent"], "20");
    assert_eq!(json["fee"]["vat"], "0.21");
    let human = env.run(&[
        "create-invoice",
        "--customer",
        "42",
        "--invoice",
        "101",
        "--check",
    ]);
    assert_eq!(
        human.stdout.trim(),
        "Invoice #202401000001: 52.85 USD (51.61 + Crypto fee 2% 1.03 + VAT 20% 0.21)"
    );
    // Without a fee: no fee in the answer, the total is the document's.
    let env = Env::new();
    let json = env
        .create_invoice(&["--customer", "42", "--invoice", "101", "--check"])
        .json();
    assert_eq!(
        (json["price"].clone(), json["fee"].clone()),
        ("51.61".into(), Value::Null)
    );
}

#[test]
fn the_fee_is_paid_at_bitpay_and_charged_in_splynx_once() {
    let env = paired_with_fee();
    let id = env.create_invoice_101();
    let invoice = env.bitpay.invoice(&id).unwrap();
    assert_eq!(invoice["price"].to_string(), "52.85");
    assert_eq!(invoice["itemDesc"], "Invoice #202401000001 + Crypto fee");
    env.bitpay.set_status(&id, "confirmed", None);
    env.deliver_webhook(&id, true).assert_code(0);

    // One payment for the total, linked to the invoice, which is paid.
    let payments = env.payments_with_receipt(&id);
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0]["amount"], "52.8500");
    assert_eq!(payments[0]["invoice_id"], 101);
    assert_eq!(env.splynx.invoice(101).unwrap()["status"], "paid");
    // The fee with its VAT as one debit transaction in the fee category.
    let fees = fee_transactions(&env, &id);
    assert_eq!(fees.len(), 1, "{fees:?}");
    let fee = &fees[0];
    assert_eq!(fee["type"], "debit");
    assert_eq!(fee["customer_id"], 42);
    assert_eq!(fee["price"], "1.0300");
    assert_eq!(fee["tax_percent"], "20");
    assert_eq!(fee["quantity"], "1");
    assert_eq!(fee["category"], 1);
    assert_eq!(fee["description"], "Crypto fee (2%), invoice #202401000001");
    assert_eq!(env.booking_state(&id, "fee"), "done");
    // The statement record carries what BitPay received.
    let records = env.splynx.statement_records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["amount"], "52.8500");

    // Duplicate webhooks and reconcile charge nothing more.
    env.deliver_webhook(&id, true).assert_code(0);
    env.deliver_webhook(&id, false).assert_code(0);
    env.run(&["reconcile"]).assert_code(0);
    assert_eq!(fee_transactions(&env, &id).len(), 1);
    assert_eq!(env.payments_with_receipt(&id).len(), 1);
    let shown = env.run(&["show", &id]).stdout;
    for line in [
        "service fee 1.03 + VAT 0.21 USD charged as transaction",
        "  fee:        51.61 + fee 2 % 1.03 + VAT 20 % 0.21",
        "  booked:     fee transaction 1: done",
        "  booked:     payment statement record 1: done",
    ] {
        assert!(shown.contains(line), "{line}: {shown}");
    }
}

#[test]
fn a_kill_after_splynx_charged_the_fee_is_finished_by_look_up_not_charged_again() {
    let env = paired_with_fee();
    let id = env.create_invoice_101();
    env.bitpay.set_status(&id, "confirmed", None);
    env.kill_webhook_once_splynx_has("admin/finance/transactions", &id, || {
        env.splynx.transactions().len()
    });
    assert_eq!(env.payments_with_receipt(&id).len(), 1);
    assert_eq!(env.booking_state(&id, "fee"), "sent");
    env.run(&["reconcile"]).assert_code(0);
    env.deliver_webhook(&id, true).assert_code(0);
    assert_eq!(fee_transactions(&env, &id).len(), 1);
    assert_eq!(env.booking_state(&id, "fee"), "done");
}

#[test]
fn without_the_permission_the_payment_lands_and_the_fee_waits() {
    let env = paired_with_fee();
    env.splynx.deny("admin/finance/transactions", "*");
    let id = env.create_invoice_101();
    env.bitpay.set_status(&id, "confirmed", None);
    env.deliver_webhook(&id, true).assert_code(0);
    assert_eq!(env.payments_with_receipt(&id).len(), 1);
    assert_eq!(env.booking_state(&id, "fee"), "pending");
    let doctor = env.run(&["doctor"]);
    assert!(
        doctor.stdout.contains("splynx.fee") && doctor.stdout.contains("Finance → Transactions"),
        "{doctor:#?}"
    );
    env.splynx.allow_all();
    env.db()
        .execute("UPDATE bookings SET next_try_at = 0", [])
        .unwrap();
    env.run(&["reconcile"]).assert_code(0);
    assert_eq!(fee_transactions(&env, &id).len(), 1);
}

#[test]
fn a_top_up_with_a_fee_credits_what_the_customer_entered() {
    let env = paired_with_fee();
    let json = env
        .create_invoice(&["--customer", "42", "--refill", "10.00"])
        .json();
    assert_eq!(json["price"], "10.24");
    let id = json["bitpay_invoice_id"].as_str().unwrap().to_string();
    env.bitpay.set_status(&id, "confirmed", None);
    env.deliver_webhook(&id, true).assert_code(0);
    // 10.24 paid in, 0.20 + 0.04 VAT charged: the balance gains the 10.00 entered.
    assert_eq!(env.payments_with_receipt(&id)[0]["amount"], "10.2400");
    let fee = &fee_transactions(&env, &id)[0];
    assert_eq!(
        (fee["price"].as_str(), fee["tax_percent"].as_str()),
        (Some("0.2000"), Some("20"))
    );
}

#[test]
fn a_partners_fee_applies_to_its_customers_only() {
    let env = Env::new();
    env.pair();
    env.add_partner_two_customer();
    env.with_modules_list_ini(
        "; <?php exit(); ?>\n[common]\n[default_partners_settings]\n[2]\nservice_fee = \"3.5\"\nfee_vat = \"\"\nfee_category = \"4\"\n",
    );
    let theirs = env
        .create_invoice(&["--customer", "77", "--invoice", "701", "--check"])
        .json();
    assert_eq!(theirs["price"], "103.50");
    assert_eq!(theirs["fee"]["vat"], "0.00");
    let ours = env
        .create_invoice(&["--customer", "42", "--invoice", "101", "--check"])
        .json();
    assert_eq!(
        (ours["price"].clone(), ours["fee"].clone()),
        ("51.61".into(), Value::Null)
    );
    let id = env
        .create_invoice(&["--customer", "77", "--invoice", "701"])
        .json()["bitpay_invoice_id"]
        .as_str()
        .unwrap()
        .to_string();
    env.bitpay.set_status(&id, "confirmed", None);
    env.deliver_webhook(&id, true).assert_code(0);
    let fee = &fee_transactions(&env, &id)[0];
    assert_eq!(
        (fee["price"].as_str(), fee["category"].as_i64()),
        (Some("3.5000"), Some(4))
    );
}
