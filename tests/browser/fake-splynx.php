<?php
/**
 * TEST ONLY: a tiny stand-in for the Splynx portal and admin login (tests/browser).
 * Customers and documents come from the Splynx sandbox's control routes.
 */

$path = (string) parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
$splynx = getenv('SPLYNX_SANDBOX_URL');
$customers = ['ada' => 42, 'grace' => 43];

function h($s)
{
    return htmlspecialchars((string) $s, ENT_QUOTES, 'UTF-8');
}

function sandbox_get($url)
{
    $text = @file_get_contents($url);
    return $text === false ? null : json_decode($text, true);
}

function sandbox_post($url, $body)
{
    $context = stream_context_create(['http' => [
        'method' => 'POST',
        'header' => "Content-Type: application/json\r\n",
        'content' => json_encode($body),
    ]]);
    return @file_get_contents($url, false, $context) !== false;
}

function local_return($value, $default)
{
    return is_string($value) && preg_match('#^/(?!/)#', $value) ? $value : $default;
}

function portal_page($title, $body, $customer)
{
    header('Content-Type: text/html; charset=utf-8');
    echo '<!DOCTYPE html><html><head><meta charset="utf-8"><title>' . h($title) . ' · Splynx portal</title><style>
body{margin:0;font:14px/1.5 "Helvetica Neue",Arial,"DejaVu Sans",sans-serif;background:#eef1f5;color:#333}
.nav{background:#1f2d3d;color:#fff;padding:12px 20px;display:flex;gap:18px;align-items:center}
.nav a{color:#cfd8e3;text-decoration:none}.nav b{color:#fff;margin-right:20px}
.main{max-width:980px;margin:20px auto;padding:0 16px}
.panel{background:#fff;border:1px solid #dde3ea;border-radius:4px;margin-bottom:16px}
.panel-heading{padding:10px 14px;border-bottom:1px solid #e6ebf0;font-weight:600;background:#fafbfc}
.panel-body{padding:14px}
table{width:100%;border-collapse:collapse}th,td{padding:7px 9px;border-top:1px solid #e6ebf0;text-align:left}
.btn{padding:3px 10px;border:1px solid #33924f;background:#3aa55b;color:#fff;border-radius:3px;cursor:pointer}
.icon{display:inline-block;width:22px;height:22px;border-radius:50%;background:#f7931a;color:#fff;text-align:center;font-weight:700;line-height:22px;text-decoration:none}
.badge{padding:1px 8px;border-radius:9px;color:#fff;font-size:12px}.paid{background:#3aa55b}.not_paid{background:#d9534f}
#overlay{position:fixed;inset:0;background:rgba(0,0,0,.45);display:none;align-items:flex-start;justify-content:center;padding-top:60px}
#dialog{background:#fff;border-radius:5px;width:520px;box-shadow:0 10px 40px rgba(0,0,0,.3)}
#dialog .head{padding:12px 16px;border-bottom:1px solid #e6ebf0;font-weight:600;display:flex;justify-content:space-between}
#dialog iframe{border:0;width:100%;height:300px;display:block}
</style></head><body><div class="nav"><b>Splynx portal (test stand-in)</b><a href="/portal/">Dashboard</a><a href="/portal/finance/invoices">Invoices</a><a href="/portal/finance/requests">Proforma invoices</a><a href="/bitpay/">Refill with BitPay</a>'
        . ($customer ? '<span style="margin-left:auto">customer #' . h($customer) . '</span>' : '') . '</div><div class="main">' . $body . '</div>
<div id="overlay"><div id="dialog"><div class="head"><span>Splynx BitPay add-on</span><a href="#" onclick="document.getElementById(\'overlay\').style.display=\'none\';return false">&times;</a></div><iframe id="addon-frame" name="addon-frame"></iframe></div></div>
<script>
function open_addon_modal(url){document.getElementById("addon-frame").src=url;document.getElementById("overlay").style.display="flex";}
// What Splynx does for an action-link entry point: the add-on URL with module, model, item_id.
function open_portal_dialog(q){var p=new URLSearchParams(q.split("?")[1]);var name=p.get("name");
 var url=(name==="bitpay_pay_request_point"?"/bitpay/pay-request":"/bitpay/pay-invoice")+"?module="+p.get("module")+"&model="+(name==="bitpay_pay_request_point"?"Requests":"Invoices")+"&item_id="+encodeURIComponent(p.get("id"));open_addon_modal(url);}
</script></body></html>';
}

function documents($splynx, $kind, $ids, $customer)
{
    $rows = [];
    foreach ($ids as $id) {
        $doc = sandbox_get("$splynx/_sandbox/$kind/$id");
        if (is_array($doc) && (int) $doc['customer_id'] === (int) $customer) {
            $rows[] = $doc;
        }
    }
    return $rows;
}

if ($path === '/portal/login/' || $path === '/admin/login/') {
    $admin = $path === '/admin/login/';
    session_start();
    if ($_SERVER['REQUEST_METHOD'] === 'POST') {
        $login = isset($_POST['login']) ? $_POST['login'] : '';
        session_regenerate_id(true);
        // Two administrators: the super administrator, and a support administrator.
        $admins = ['admin' => [1, 'super-administrator', 'Ada Admin'], 'support' => [7, 'administrator', 'Sam Support']];
        if ($admin && isset($admins[$login])) {
            $_SESSION['splynx_admin_id'] = $admins[$login][0];
            // Splynx opens add-on admin pages with the administrator's session hash
            // (`sash`), which the API accepts as that administrator.
            $sash = bin2hex(random_bytes(16));
            sandbox_post("$splynx/_sandbox/admin-sessions", ['sash' => $sash, 'id' => $admins[$login][0], 'role' => $admins[$login][1], 'login' => $login, 'name' => $admins[$login][2]]);
            $target = local_return(isset($_POST['return']) ? $_POST['return'] : null, '/bitpay/admin');
            header('Location: ' . $target . (strpos($target, '?') === false ? '?' : '&') . 'sash=' . $sash, true, 302);
            return;
        } elseif (!$admin && isset($customers[$login])) {
            $_SESSION['splynx_customer_id'] = $customers[$login];
        } else {
            http_response_code(403);
            echo 'bad login';
            return;
        }
        header('Location: ' . local_return(isset($_POST['return']) ? $_POST['return'] : null, $admin ? '/bitpay/admin' : '/portal/'), true, 302);
        return;
    }
    $return = local_return(isset($_GET['return']) ? $_GET['return'] : null, '');
    portal_page('Login', '<div class="panel" style="max-width:360px;margin:40px auto"><div class="panel-heading">' . ($admin ? 'Administrator login' : 'Customer portal login') . '</div><div class="panel-body">
<form method="post" action="' . h($path) . '"><input type="hidden" name="return" value="' . h($return) . '">
<p><label>Login <input name="login" id="login"></label></p><p><label>Password <input name="password" id="password" type="password"></label></p>
<button class="btn" id="sign-in" type="submit">Sign in</button></form></div></div>', null);
    return;
}

if ($path === '/portal/logout') {
    session_start();
    $_SESSION = [];
    session_destroy();
    header('Location: /portal/login/', true, 302);
    return;
}

if (strpos($path, '/portal') === 0) {
    session_start();
    $customer = isset($_SESSION['splynx_customer_id']) ? $_SESSION['splynx_customer_id'] : null;
    session_write_close();
    if ($customer === null) {
        header('Location: /portal/login/?return=' . rawurlencode($_SERVER['REQUEST_URI']), true, 302);
        return;
    }
    $invoices = documents($splynx, 'invoices', [101, 102, 103], $customer);
    $requests = documents($splynx, 'proformas', [201], $customer);
    if ($path === '/portal/finance/invoices' || $path === '/portal/finance/requests') {
        $isRequests = $path === '/portal/finance/requests';
        $rows = '';
        foreach ($isRequests ? $requests : $invoices as $doc) {
            $url = ($isRequests ? '/bitpay/pay-request?module=splynx_bitpay_addon&model=Requests' : '/bitpay/pay-invoice?module=splynx_bitpay_addon&model=Invoices') . '&item_id=' . rawurlencode($doc['number']);
            $rows .= '<tr data-number="' . h($doc['number']) . '"><td>' . h($doc['number']) . '</td><td>' . h(number_format((float) $doc['total'], 2)) . '</td><td><span class="badge ' . h($doc['status']) . ' status">' . h($doc['status'] === 'paid' ? 'Paid' : 'Unpaid') . '</span></td><td>'
                . ($doc['status'] === 'not_paid' ? '<a href="#" class="icon bitpay-action" title="Pay by BitPay" onclick="open_addon_modal(\'' . h($url) . '\');return false">B</a>' : '') . '</td></tr>';
        }
        portal_page($isRequests ? 'Proforma invoices' : 'Invoices', '<div class="panel"><div class="panel-heading">' . ($isRequests ? 'Proforma invoices' : 'Invoices') . '</div><div class="panel-body"><table><tr><th>Number</th><th>Total</th><th>Status</th><th>Operations</th></tr>' . $rows . '</table></div></div>', $customer);
        return;
    }
    // Dashboard: the "Pay your invoices by BitPay" widget as Splynx renders views/dashboard.twig.
    $rows = '';
    foreach ($invoices as $doc) {
        if ($doc['status'] === 'not_paid') {
            $rows .= '<tr><td>' . h($doc['number']) . '</td><td>' . h(number_format((float) $doc['total'], 2)) . '</td><td><button type="button" class="btn bitpay-pay-invoice" data-number="' . h($doc['number']) . '">Pay</button></td></tr>';
        }
    }
    foreach ($requests as $doc) {
        if ($doc['status'] === 'not_paid') {
            $rows .= '<tr><td>' . h($doc['number']) . ' <small>(proforma)</small></td><td>' . h($doc['total']) . '</td><td><button type="button" class="btn bitpay-pay-request" data-number="' . h($doc['number']) . '">Pay</button></td></tr>';
        }
    }
    portal_page('Dashboard', '<div class="panel" style="max-width:420px"><div class="panel-heading">Pay your invoices by <strong>BitPay</strong></div><div class="panel-body"><table><tr><th>Number</th><th>Total</th><th>Pay</th></tr>' . $rows . '</table></div></div>
<script>
document.querySelectorAll(".bitpay-pay-invoice").forEach(function(b){b.onclick=function(){open_portal_dialog("add-on--action-link-modal?module=splynx_bitpay_addon&name=bitpay_pay_invoice_point&id="+encodeURIComponent(b.dataset.number));};});
document.querySelectorAll(".bitpay-pay-request").forEach(function(b){b.onclick=function(){open_portal_dialog("add-on--action-link-modal?module=splynx_bitpay_addon&name=bitpay_pay_request_point&id="+encodeURIComponent(b.dataset.number));};});
</script>', $customer);
    return;
}

http_response_code(404);
echo 'not found (test router)';
