//! Who may change the pairing from the admin page: the administrator behind the page's
//! session hash (`sash`), as Splynx names them, with a role in `admin.pairing_roles`.

use crate::util::Env;

const SUPER: &str = "sash-super-0123456789";
const SUPPORT: &str = "sash-support-987654321";

fn env_with_admins() -> Env {
    let env = Env::new();
    env.splynx
        .add_admin_session(SUPER, 1, "super-administrator");
    env.splynx.add_admin_session(SUPPORT, 7, "administrator");
    env
}

fn as_admin<'a>(sash: &'a str, id: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut all = args.to_vec();
    all.extend(["--sash", sash, "--session-admin", id]);
    all
}

#[test]
fn only_allowed_roles_change_the_pairing_from_the_web() {
    let env = env_with_admins();
    // A support administrator may not pair, request a code or unpair.
    let code = env.bitpay.create_pairing_code();
    env.run(&as_admin(SUPPORT, "7", &["pair", &code]))
        .assert_code(65)
        .assert_stderr_contains("Only administrators with the role \"super-administrator\"")
        .assert_stderr_contains(
            "signed in as admin7 (Administrator 7) with the role \"administrator\"",
        );
    env.run(&as_admin(SUPPORT, "7", &["pair", "--request"]))
        .assert_code(65);
    assert_eq!(env.bitpay.invoice_count(), 0);
    let status = env.run(&["--json", "status"]).json();
    assert!(
        status["tokens"].as_array().unwrap().is_empty(),
        "nothing paired"
    );

    // The super administrator pairs; the journal and status say who, by the login Splynx
    // has for them (#20 item 16).
    env.splynx.set_admin_name(1, "ada", "Ada Lovelace");
    env.run(&as_admin(SUPER, "1", &["pair", &code]))
        .assert_code(0);
    let changes = env.run(&["--json", "status"]).json()["pairing_changes"].clone();
    assert!(
        changes[0]["summary"]
            .as_str()
            .unwrap()
            .contains("by Splynx administrator ada (Ada Lovelace) (id 1, super-administrator)"),
        "{changes}"
    );
    env.run(&as_admin(SUPPORT, "7", &["unpair"]))
        .assert_code(65);
    assert_eq!(
        env.run(&["--json", "status"]).json()["paired"],
        serde_json::json!(["pos"])
    );

    // Replacing an active token from the web needs the explicit confirmation.
    let second = env.bitpay.create_pairing_code();
    env.run(&as_admin(SUPER, "1", &["pair", &second]))
        .assert_code(65)
        .assert_stderr_contains("Confirm to replace it");
    env.run(&as_admin(SUPER, "1", &["pair", &second, "--replace"]))
        .assert_code(0);
    let changes = env.run(&["--json", "status"]).json()["pairing_changes"].clone();
    assert!(
        changes[0]["summary"]
            .as_str()
            .unwrap()
            .contains("replaced the active token"),
        "{changes}"
    );
    // The command line on the server is not limited, and says so in the journal.
    let third = env.bitpay.create_pairing_code();
    env.run(&["pair", &third]).assert_code(0);
    let status = env.run(&["status"]);
    assert!(status.stdout.contains("by the command line"), "{status:?}");
}

#[test]
fn pending_codes_are_shown_only_to_allowed_admins() {
    let env = env_with_admins();
    env.run(&as_admin(
        SUPER,
        "1",
        &["pair", "--request", "--facade", "merchant"],
    ))
    .assert_code(0);
    let allowed = env.run(&as_admin(SUPER, "1", &["--json", "status"])).json();
    assert!(allowed["pending_approvals"][0]["pairing_code"].is_string());
    assert_eq!(allowed["administrator"]["may_pair"], true);
    assert!(allowed["pairing_refusal"].is_null());

    let refused = env
        .run(&as_admin(SUPPORT, "7", &["--json", "status"]))
        .json();
    assert!(
        refused["pending_approvals"][0]["pairing_code"].is_null(),
        "{refused}"
    );
    assert_eq!(refused["administrator"]["may_pair"], false);
    assert_eq!(refused["administrator"]["role"], "administrator");
    assert!(refused["pairing_refusal"]
        .as_str()
        .unwrap()
        .contains("ask a super administrator"));
    let human = env.run(&as_admin(SUPPORT, "7", &["status"]));
    assert!(human.stdout.contains("(hidden)"), "{human:?}");
}

#[test]
fn a_forged_or_foreign_session_hash_is_refused() {
    let env = env_with_admins();
    let code = env.bitpay.create_pairing_code();
    env.run(&as_admin("sash-made-up", "1", &["pair", &code]))
        .assert_code(65)
        .assert_stderr_contains("administrator session");
    // The support administrator's page with the super administrator's sash in it.
    env.run(&as_admin(SUPER, "7", &["pair", &code]))
        .assert_code(65)
        .assert_stderr_contains("belongs to administrator 1, not to the one logged in (7)");
    env.run(&["--json", "status", "--sash", "bad sash"])
        .assert_code(65);
    // Other roles can be allowed by the admin who edits the config.
    env.write_config(&format!(
        "{}\n[admin]\npairing_roles = [\"super-administrator\", \"administrator\"]\n",
        env.default_config()
    ));
    env.run(&as_admin(SUPPORT, "7", &["pair", &code]))
        .assert_code(0);
    env.write_config(&format!(
        "{}\n[admin]\npairing_roles = []\n",
        env.default_config()
    ));
    env.run(&["settings"])
        .assert_code(78)
        .assert_stderr_contains("admin.pairing_roles");
}

/// #20 item 9: the admin page opened without a session hash gets the read-only view;
/// the terminal (no --from-page) still sees the codes.
#[test]
fn the_page_without_a_session_hash_shows_no_pending_codes() {
    let env = env_with_admins();
    env.run(&as_admin(
        SUPER,
        "1",
        &["pair", "--request", "--facade", "merchant"],
    ))
    .assert_code(0);
    let page = env.run(&["--json", "status", "--from-page"]).json();
    assert!(
        page["pending_approvals"][0]["pairing_code"].is_null(),
        "{page}"
    );
    assert!(page["pending_approvals"][0].is_object(), "{page}");
    let terminal = env.run(&["--json", "status"]).json();
    assert!(terminal["pending_approvals"][0]["pairing_code"].is_string());
}

/// #20 item 11: roles match Splynx's identifier exactly: a custom role that looks like
/// the super administrator's is another role.
#[test]
fn a_look_alike_role_may_not_pair() {
    let env = env_with_admins();
    env.splynx
        .add_admin_session("sash-lookalike-55555555", 9, "super_administrator");
    let code = env.bitpay.create_pairing_code();
    env.run(&as_admin("sash-lookalike-55555555", "9", &["pair", &code]))
        .assert_code(65)
        .assert_stderr_contains("with the role \"super_administrator\"");
    // Without the permission to read administrators, the page names them by id.
    env.splynx
        .deny("admin/administration/administrators", "GET");
    env.run(&as_admin(SUPPORT, "7", &["pair", &code]))
        .assert_code(65)
        .assert_stderr_contains("signed in as administrator 7 with the role");
    // A role written as a label, not an identifier, is named as wrong.
    env.write_config(&format!(
        "{}\n[admin]\npairing_roles = [\"Super administrator\"]\n",
        env.default_config()
    ));
    env.run(&["settings"])
        .assert_code(78)
        .assert_stderr_contains("not a Splynx role identifier");
}
