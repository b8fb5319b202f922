//! Direct pay links for e-mails: off by default; when a partner grants access to
//! unauthorized customers, the document's number and amount only, paid like the portal,
//! and every other document (paid, deleted, unknown, another partner's) refused.

use serde_json::Value;

use crate::util::{Env, Run};

fn direct(env: &Env, args: &[&str]) -> Run {
    let mut all = vec!["--json", "direct-pay"];
    all.extend_from_slice(args);
    env.run(&all)
}

fn enabled() -> Env {
    let env = Env::new();
    env.pair();
    env.write_config(&format!(
        "{}\n[direct_pay]\nenabled = true\n",
        env.default_config()
    ));
    env
}

#[track_caller]
fn refused(run: &Run, code: i32, message: &str) {
    run.assert_code(code);
    let json = run.json();
    assert_eq!(json["error"], message, "{run:#?}");
}

#[test]
fn off_by_default_every_document_reads_as_not_found() {
    let env = Env::new();
    env.pair();
    let run = direct(&env, &["--invoice-number", "202401000001", "--check"]);
    refused(&run, 65, "Invoice #202401000001 was not found");
    assert_eq!(run.json()["kind"], "not_found");
    refused(
        &direct(&env, &["--invoice", "101"]),
        65,
        "Invoice 101 was not found",
    );
    assert_eq!(env.bitpay.invoice_count(), 0);
}

#[test]
fn on_it_shows_number_and_amount_only_and_pays_like_the_portal() {
    let env = enabled();
    let check = direct(&env, &["--invoice-number", "202401000001", "--check"]);
    check.assert_code(0);
    let json = check.json();
    assert_eq!(json["number"], "202401000001");
    assert_eq!(json["price"], "51.61");
    let text = check.stdout.to_lowercase();
    for private in ["ada", "lovelace", "example.com", "\"42\"", "customer"] {
        assert!(!text.contains(private), "{private} in {}", check.stdout);
    }
    let by_id = direct(&env, &["--invoice", "101", "--check"]).json();
    assert_eq!(by_id["number"], "202401000001");

    let created = direct(&env, &["--invoice-number", "202401000001"]);
    created.assert_code(0);
    let id = created.json()["bitpay_invoice_id"]
        .as_str()
        .unwrap()
        .to_string();
    let invoice = env.bitpay.invoice(&id).unwrap();
    // BitPay's page shows nothing about the customer to whoever holds the link, and the
    // payer returns to the link.
    assert_eq!(invoice["buyer"]["name"], "", "{invoice}");
    assert!(
        invoice["buyer"].get("email").is_none_or(Value::is_null),
        "{invoice}"
    );
    assert_eq!(
        invoice["redirectURL"],
        "https://splynx.isp.test/bitpay/direct-pay-invoice?item_id=202401000001"
    );
    // A second click (or the portal) gets the same BitPay invoice.
    let again = direct(&env, &["--invoice", "101"]).json();
    assert_eq!(again["bitpay_invoice_id"], id.as_str());
    assert_eq!(again["reused"], true);

    env.bitpay.set_status(&id, "confirmed", None);
    env.deliver_webhook(&id, true).assert_code(0);
    assert_eq!(env.payments_with_receipt(&id).len(), 1);
    refused(
        &direct(&env, &["--invoice-number", "202401000001", "--check"]),
        65,
        "Invoice #202401000001 is already paid",
    );
}

#[test]
fn paid_deleted_and_unknown_documents_are_refused_like_the_portal() {
    let env = enabled();
    refused(
        &direct(&env, &["--invoice-number", "202401000002", "--check"]),
        65,
        "Invoice #202401000002 is already paid",
    );
    refused(
        &direct(&env, &["--invoice", "104", "--check"]),
        65,
        "Invoice #202401000004 was cancelled and cannot be paid",
    );
    refused(
        &direct(&env, &["--invoice-number", "209999999999", "--check"]),
        65,
        "Invoice #209999999999 was not found",
    );
    refused(
        &direct(&env, &["--proforma", "999", "--check"]),
        65,
        "Proforma invoice 999 was not found",
    );
    let proforma = direct(&env, &["--proforma-number", "2024000001", "--check"]);
    proforma.assert_code(0);
    assert_eq!(proforma.json()["price"], "20.00");
    assert_eq!(env.bitpay.invoice_count(), 0);
}

#[test]
fn a_partner_without_the_grant_reads_as_not_found() {
    let env = Env::new();
    env.pair();
    env.add_partner_two_customer();
    // Granted for everyone in the Modules list, except partner 2.
    env.with_modules_list_ini(
        "; <?php exit(); ?>\n[common]\ndirect_pay_links = \"1\"\n[default_partners_settings]\n[2]\ndirect_pay_links = \"0\"\n",
    );
    direct(&env, &["--invoice", "101", "--check"]).assert_code(0);
    refused(
        &direct(&env, &["--invoice-number", "202402000001", "--check"]),
        65,
        "Invoice #202402000001 was not found",
    );
    refused(
        &direct(&env, &["--invoice", "701"]),
        65,
        "Invoice 701 was not found",
    );
    assert_eq!(env.bitpay.invoice_count(), 0);
}
