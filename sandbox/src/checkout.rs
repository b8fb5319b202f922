//! The BitPay fake's hosted checkout pages (`GET /invoice?id=`): choose a currency,
//! confirm the payment, see the receipt with "Return to splynx". Pure rendering from the
//! invoice JSON; the state changes live in `bitpay.rs`.

use serde_json::Value;

use crate::util::html_escape;

const STYLE: &str = "
*{box-sizing:border-box}
body{margin:0;background:#eef1f6;font:15px/1.45 -apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;color:#1f2a44}
.card{max-width:440px;margin:40px auto;background:#fff;border-radius:10px;box-shadow:0 2px 14px rgba(20,40,90,.12);overflow:hidden}
.top{background:#1a3b8b;color:#fff;padding:16px 22px;display:flex;justify-content:space-between;align-items:center}
.logo{font-weight:800;font-size:22px;letter-spacing:-.5px}
.env{font-size:11px;text-transform:uppercase;background:rgba(255,255,255,.18);padding:2px 8px;border-radius:10px}
.merchant{padding:18px 22px 6px;color:#5b6785;font-size:13px}
.merchant b{display:block;color:#1f2a44;font-size:17px}
.amount{padding:4px 22px 16px;font-size:30px;font-weight:700}
.amount small{font-size:15px;color:#5b6785;font-weight:400}
.body{padding:0 22px 22px}
h2{font-size:16px;margin:8px 0 12px}
.coins{list-style:none;margin:0;padding:0}
.coins li a{display:flex;justify-content:space-between;padding:12px 14px;margin-bottom:8px;border:1px solid #d8deea;border-radius:8px;color:#1f2a44;text-decoration:none}
.coins li a:hover{border-color:#1a3b8b;background:#f5f8ff}
.coins .code{font-weight:700}
.coins .due{color:#5b6785}
.row{display:flex;justify-content:space-between;padding:7px 0;border-bottom:1px solid #eef1f6;font-size:14px}
.row span:first-child{color:#5b6785}
.mono{font-family:Menlo,Consolas,monospace;font-size:12px;word-break:break-all}
.btn{display:block;width:100%;margin-top:16px;padding:12px;border:0;border-radius:8px;background:#1a3b8b;color:#fff;font-size:16px;font-weight:600;text-align:center;text-decoration:none;cursor:pointer}
.btn.light{background:#fff;color:#1a3b8b;border:1px solid #1a3b8b}
.ok{width:54px;height:54px;border-radius:50%;background:#21a86b;color:#fff;font-size:30px;line-height:54px;text-align:center;margin:6px auto 10px}
.bad{background:#c0392b}
.center{text-align:center}
.error{background:#fdecea;color:#8a1f11;border-radius:6px;padding:10px 12px;margin-bottom:12px;font-size:14px}
.card.wide{max-width:760px}
table{width:100%;border-collapse:collapse;font-size:14px}
th,td{text-align:left;padding:7px 6px;border-bottom:1px solid #eef1f6;vertical-align:top}
th{color:#5b6785;font-weight:600}
.code-box{background:#eaf7f0;color:#155d3b;border-radius:6px;padding:12px 14px;margin-bottom:12px}
.code-box b{font-family:Menlo,Consolas,monospace;font-size:20px;letter-spacing:1px}
.crumb{color:#5b6785;font-size:13px;padding:16px 22px 0}
form.inline{display:inline}
.btn.small{display:inline-block;width:auto;margin:0;padding:6px 14px;font-size:14px}
.foot{padding:10px 22px;background:#f7f9fc;color:#8a94ad;font-size:12px;text-align:center}
";

fn text(invoice: &Value, key: &str) -> String {
    match invoice.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

fn page(title: &str, body: &str) -> String {
    card_page(
        title,
        "card",
        body,
        "Loopback sandbox of BitPay's checkout: no real money moves.",
    )
}

/// A page with BitPay's header on one card (the checkout's, or the dashboard's wider one).
pub(crate) fn card_page(title: &str, card_class: &str, body: &str, foot: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{title}</title><style>{STYLE}</style></head><body>\n<div class=\"{card_class}\">\n<div class=\"top\"><span class=\"logo\">bitpay</span><span class=\"env\">sandbox</span></div>\n{body}\n<div class=\"foot\">{foot}</div>\n</div>\n</body></html>\n",
        title = html_escape(title),
        foot = html_escape(foot)
    )
}

/// Merchant, item and amount: the head of every invoice page.
fn head(invoice: &Value) -> String {
    format!(
        "<div class=\"merchant\">Pay <b class=\"merchant-name\">{merchant}</b><span class=\"item\">{item}</span></div>\n<div class=\"amount\"><span class=\"price\">{price}</span> <small class=\"currency\">{currency}</small></div>\n",
        merchant = html_escape(&text(invoice, "merchantName")),
        item = html_escape(&text(invoice, "itemDesc")),
        price = html_escape(&text(invoice, "price")),
        currency = html_escape(&text(invoice, "currency")),
    )
}

fn coin_due(invoice: &Value, coin: &str) -> String {
    invoice
        .get("paymentDisplayTotals")
        .and_then(|t| t.get(coin))
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .unwrap_or_default()
}

fn return_button(invoice: &Value, class: &str) -> String {
    let redirect = text(invoice, "redirectURL");
    if redirect.is_empty() {
        return String::new();
    }
    format!(
        "<a class=\"btn {class} return\" href=\"{}\">Return to splynx</a>\n",
        html_escape(&redirect)
    )
}

pub(crate) fn not_found() -> String {
    page(
        "BitPay checkout",
        "<div class=\"body\"><h2>Invoice not found</h2><p>This invoice does not exist.</p></div>",
    )
}

/// Step 1: the buyer picks the coin to pay with.
pub(crate) fn choose_currency(invoice: &Value, coins: &[&str]) -> String {
    let id = text(invoice, "id");
    let mut list = String::from("<ul class=\"coins\">\n");
    for coin in coins {
        list.push_str(&format!(
            "<li><a class=\"coin\" data-currency=\"{coin}\" href=\"/invoice?id={id}&amp;currency={coin}\"><span class=\"code\">{coin}</span><span class=\"due\">{due} {coin}</span></a></li>\n",
            id = html_escape(&id),
            due = html_escape(&coin_due(invoice, coin)),
        ));
    }
    list.push_str("</ul>\n");
    page(
        "BitPay checkout",
        &format!(
            "{}<div class=\"body\"><h2>Select a currency</h2>\n{list}</div>",
            head(invoice)
        ),
    )
}

/// Step 2: what to send, and "Confirm payment".
pub(crate) fn confirm(invoice: &Value, coin: &str, error: Option<&str>) -> String {
    let id = text(invoice, "id");
    let error = error
        .map(|e| format!("<div class=\"error\">{}</div>\n", html_escape(e)))
        .unwrap_or_default();
    page(
        "BitPay checkout",
        &format!(
            "{head}<div class=\"body\">{error}<h2>Pay with {coin}</h2>\n\
<div class=\"row\"><span>Amount due</span><span class=\"coin-due\">{due} {coin}</span></div>\n\
<div class=\"row\"><span>Send to</span><span class=\"mono\">sandbox:{id}</span></div>\n\
<div class=\"row\"><span>Invoice</span><span class=\"mono invoice-id\">{id}</span></div>\n\
<form method=\"post\" action=\"/invoice\">\n<input type=\"hidden\" name=\"id\" value=\"{id}\">\n<input type=\"hidden\" name=\"currency\" value=\"{coin}\">\n<button class=\"btn confirm\" type=\"submit\">Confirm payment</button>\n</form>\n\
<a class=\"btn light\" href=\"/invoice?id={id}\">Choose another currency</a>\n</div>",
            head = head(invoice),
            coin = html_escape(coin),
            due = html_escape(&coin_due(invoice, coin)),
            id = html_escape(&id),
        ),
    )
}

/// After payment: "Payment from bitpay" and the way back to the merchant.
pub(crate) fn receipt(invoice: &Value) -> String {
    let coin = text(invoice, "transactionCurrency");
    let paid = text(invoice, "displayAmountPaid");
    let txid = invoice
        .pointer("/transactions/0/txid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    page(
        "BitPay receipt",
        &format!(
            "{head}<div class=\"body center\"><div class=\"ok\">&#10003;</div><h2 class=\"receipt\">Payment from bitpay</h2>\n\
<p>Your payment was received. {merchant} has been notified.</p>\n\
<div class=\"row\"><span>Paid</span><span class=\"paid\">{paid} {coin}</span></div>\n\
<div class=\"row\"><span>Status</span><span class=\"status\">{status}</span></div>\n\
<div class=\"row\"><span>Transaction</span><span class=\"mono\">{txid}</span></div>\n\
{ret}</div>",
            head = head(invoice),
            merchant = html_escape(&text(invoice, "merchantName")),
            paid = html_escape(&paid),
            coin = html_escape(&coin),
            status = html_escape(&text(invoice, "status")),
            txid = html_escape(&txid[..txid.len().min(16)]),
            ret = return_button(invoice, ""),
        ),
    )
}

pub(crate) fn expired(invoice: &Value) -> String {
    page(
        "BitPay checkout",
        &format!(
            "{}<div class=\"body center\"><div class=\"ok bad\">!</div><h2 class=\"expired\">Invoice expired</h2><p>This invoice can no longer be paid. Go back and start a new payment.</p>\n{}</div>",
            head(invoice),
            return_button(invoice, "")
        ),
    )
}

/// Invalid or declined invoices.
pub(crate) fn closed(invoice: &Value) -> String {
    page(
        "BitPay checkout",
        &format!(
            "{}<div class=\"body center\"><h2>Invoice {}</h2>\n{}</div>",
            head(invoice),
            html_escape(&text(invoice, "status")),
            return_button(invoice, "")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pages_escape_what_they_show() {
        let invoice = json!({"id": "abc", "merchantName": "<ISP>", "itemDesc": "Invoice #1",
            "price": 51.61, "currency": "USD", "redirectURL": "http://x/r?order=a&b=1",
            "paymentDisplayTotals": {"BTC": "0.000902"}});
        let choose = choose_currency(&invoice, &["BTC"]);
        assert!(choose.contains("&lt;ISP&gt;") && !choose.contains("<ISP>"));
        assert!(choose.contains("href=\"/invoice?id=abc&amp;currency=BTC\""));
        assert!(choose.contains("0.000902 BTC"));
        let confirm = confirm(&invoice, "BTC", Some("<boom>"));
        assert!(confirm.contains("Confirm payment") && confirm.contains("&lt;boom&gt;"));
        let receipt = receipt(&invoice);
        assert!(receipt.contains("Payment from bitpay"));
        assert!(receipt.contains("href=\"http://x/r?order=a&amp;b=1\">Return to splynx"));
    }
}
