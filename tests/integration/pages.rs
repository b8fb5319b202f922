//! What the PHP pages read from the binary: `--json` error documents with a kind, the
//! settings they show, and the customer's view of one payment — decided here, rendered
//! there.

use crate::util::Env;

fn paired() -> Env {
    let env = Env::new();
    env.pair();
    env
}

#[test]
fn json_errors_come_on_stdout_with_their_kind() {
    let env = paired();
    let cases: &[(&[&str], i32, &str, &str)] = &[
        (
            &[
                "--json",
                "create-invoice",
                "--check",
                "--customer",
                "42",
                "--invoice-number",
                "999",
            ],
            65,
            "not_found",
            "was not found for your account",
        ),
        // A foreign document reads exactly like a missing one.
        (
            &[
                "--json",
                "create-invoice",
                "--check",
                "--customer",
                "42",
                "--invoice",
                "103",
            ],
            65,
            "not_found",
            "was not found for your account",
        ),
        (
            &[
                "--json",
                "create-invoice",
                "--check",
                "--customer",
                "42",
                "--invoice",
                "102",
            ],
            65,
            "bad_input",
            "is already paid",
        ),
        (
            &[
                "--json",
                "create-invoice",
                "--customer",
                "42",
                "--refill",
                "1,00",
            ],
            65,
            "bad_input",
            "Top-up amount",
        ),
        (
            &["--json", "show", "NoSuchThing"],
            65,
            "not_found",
            "is known here",
        ),
    ];
    for (args, code, kind, text) in cases {
        let run = env.run(args);
        run.assert_code(*code);
        let json = run.json();
        assert_eq!(json["kind"], *kind, "{args:?}: {json}");
        assert_eq!(json["exit"], *code);
        assert!(
            json["error"].as_str().unwrap().contains(text),
            "{args:?}: {json}"
        );
        assert!(
            run.stderr.contains(text),
            "stderr keeps the line for logs: {run:?}"
        );
    }
    env.splynx.faults().fail_next(10, 503);
    let down = env.run(&[
        "--json",
        "create-invoice",
        "--check",
        "--customer",
        "42",
        "--invoice",
        "101",
    ]);
    down.assert_code(75);
    assert_eq!(down.json()["kind"], "temporary");
    env.splynx.faults().clear();
    // A failing doctor already printed its report: one JSON document, not two.
    env.write_config(
        &env.default_config()
            .replace("payment_method_id = 7", "payment_method_id = 99"),
    );
    let doctor = env.run(&["--json", "doctor"]);
    assert_ne!(doctor.code, 0);
    assert!(doctor.json()["checks"].is_array(), "{doctor:?}");
}

#[test]
fn settings_are_what_the_pages_show() {
    let env = Env::new();
    env.write_config(
        &env.default_config()
            .replace("currency = \"USD\"", "currency = \"JPY\"")
            .replace("min = \"1.00\"", "min = \"100\"")
            .replace("max = \"5000.00\"", "max = \"250000\""),
    );
    let settings = env.run(&["--json", "settings"]);
    settings.assert_code(0);
    let json = settings.json();
    assert_eq!(json["currency"], "JPY");
    assert_eq!(json["currency_decimals"], 0, "{json}");
    assert_eq!(json["refill"]["min"], "100");
    assert_eq!(json["refill"]["max"], "250000");
    assert_eq!(json["splynx_url"], "https://splynx.isp.test");
    assert!(!settings.stdout.contains(crate::util::API_SECRET));
}

#[test]
fn a_customer_sees_only_their_payment_and_what_it_means() {
    let env = paired();
    let id = env.create_invoice_101();
    let order: String = env
        .db()
        .query_row(
            "SELECT order_id FROM invoices WHERE bitpay_id = ?1",
            [&id],
            |r| r.get(0),
        )
        .unwrap();
    let view = |customer: &str| env.run(&["--json", "show", &order, "--customer", customer]);
    let mine = view("42");
    mine.assert_code(0);
    let shown = &mine.json()["invoices"][0]["customer_view"];
    assert_eq!(shown["title"], "Not paid yet");
    assert_eq!(shown["refresh"], true);
    assert_eq!(shown["what"], "Invoice #202401000001");
    let theirs = view("43");
    theirs.assert_code(65);
    assert_eq!(theirs.json()["kind"], "not_found");
    assert!(
        !theirs.stdout.contains(&id),
        "nothing about another customer's payment"
    );

    env.bitpay.set_status(&id, "confirmed", None);
    env.deliver_webhook(&id, true).assert_code(0);
    assert_eq!(
        view("42").json()["invoices"][0]["customer_view"]["title"],
        "Paid"
    );
    env.bitpay.set_status(&id, "invalid", None);
    env.deliver_webhook(&id, true).assert_code(0);
    assert_eq!(
        view("42").json()["invoices"][0]["customer_view"]["title"],
        "Under review"
    );
}
