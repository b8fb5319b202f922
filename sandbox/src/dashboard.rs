//! The BitPay fake's merchant dashboard page, just the part the user guide walks through:
//! "Payment Tools → Manage API Tokens" (`/dashboard/merchant/api-tokens`, the link the
//! add-on shows): add a token (a pairing code to enter in Splynx), and approve a code the
//! add-on requested. Pure rendering; the state changes live in `bitpay.rs`.

use crate::checkout::card_page;
use crate::util::html_escape;

/// The page's path, as on BitPay.
pub(crate) const PATH: &str = "/dashboard/merchant/api-tokens";

/// A token as the dashboard lists it (never its value).
pub(crate) struct TokenRow {
    pub facade: String,
    pub sin: String,
    pub active: bool,
    /// Client-initiated pairing: the code waiting for approval, if not expired.
    pub pending_code: Option<String>,
}

/// A pairing code made here ("Add New Token") that no client has used yet.
pub(crate) struct UnusedCode {
    pub code: String,
    pub expires: String,
}

/// What the last action did, shown at the top.
pub(crate) enum Notice {
    Added(String),
    Approved(String),
    NotApproved(String),
}

pub(crate) fn render(tokens: &[TokenRow], unused: &[UnusedCode], notice: Option<Notice>) -> String {
    let notice = match notice {
        Some(Notice::Added(code)) => format!(
            "<div class=\"code-box new-code\">Pairing code: <b class=\"pairing-code\">{}</b><br>Enter it in Splynx under Config → Integrations → Bitpay within 24 hours. It can be used once.</div>\n",
            html_escape(&code)
        ),
        Some(Notice::Approved(code)) => format!(
            "<div class=\"code-box approved\">Approved pairing code <b>{}</b>: the token is active. The add-on's page shows it at its next look.</div>\n",
            html_escape(&code)
        ),
        Some(Notice::NotApproved(code)) => format!(
            "<div class=\"error\">Pairing code {} is unknown, expired or already approved.</div>\n",
            html_escape(&code)
        ),
        None => String::new(),
    };
    let mut rows = String::new();
    for t in tokens {
        let state = match (&t.pending_code, t.active) {
            (_, true) => "Active".to_string(),
            (Some(code), false) => format!(
                "Waiting for approval, pairing code <span class=\"mono\">{code}</span> <form class=\"inline\" method=\"post\" action=\"{PATH}\"><input type=\"hidden\" name=\"action\" value=\"approve\"><input type=\"hidden\" name=\"code\" value=\"{code}\"><button class=\"btn small approve\" type=\"submit\">Approve</button></form>",
                code = html_escape(code)
            ),
            (None, false) => "Expired request".to_string(),
        };
        rows.push_str(&format!(
            "<tr><td>{}</td><td class=\"mono\">{}</td><td class=\"state\">{state}</td></tr>\n",
            html_escape(&t.facade),
            html_escape(&t.sin)
        ));
    }
    for c in unused {
        rows.push_str(&format!(
            "<tr><td>pos</td><td>(not used yet)</td><td class=\"state\">Pairing code <span class=\"mono\">{}</span>, valid until {}</td></tr>\n",
            html_escape(&c.code),
            html_escape(&c.expires)
        ));
    }
    if rows.is_empty() {
        rows.push_str("<tr><td colspan=\"3\">No API tokens yet.</td></tr>\n");
    }
    card_page(
        "Manage API Tokens · BitPay",
        "card wide",
        &format!(
            "<div class=\"crumb\">Payment Tools → Manage API Tokens</div>\n<div class=\"body\">\n<h2>API Tokens</h2>\n{notice}<table class=\"tokens\"><tr><th>Facade</th><th>Client (SIN)</th><th>Status</th></tr>\n{rows}</table>\n<form method=\"post\" action=\"{PATH}\"><input type=\"hidden\" name=\"action\" value=\"add\"><button class=\"btn add-token\" type=\"submit\">Add New Token</button></form>\n<p style=\"color:#5b6785;font-size:13px\">A new token's pairing code pairs the add-on from Splynx. A code the add-on requested appears above; approve it to activate the add-on's token.</p>\n</div>"
        ),
        "Loopback sandbox of BitPay's merchant dashboard: no real account.",
    )
}
