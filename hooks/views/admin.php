<?php
/**
 * @var array|null $flash @var array|null $status @var string|null $status_error @var array|null $oldest
 * @var string $lookup @var array|null $found @var string|null $lookup_error @var string $csrf @var string $action
 * @var string $config_path @var array|null $effective (`config --json`) @var string|null $effective_error
 * @var string $sash @var array|null $checks (`doctor --json`, when asked for)
 */
use SplynxBitpay\View;

$environment = $status !== null ? (string) $status['environment'] : '';
$paired = $status !== null && !empty($status['paired']);
// The binary decides who may change the pairing (admin.pairing_roles); this only renders it.
$mayPair = $status !== null && !empty($status['administrator']['may_pair']);
// Refunds: admin.refund_roles, decided by the binary too; this only hides what it would refuse.
$mayRefund = $status !== null && !empty($status['administrator']['may_refund']);
$sashField = '<input type="hidden" name="sash" value="' . View::e($sash) . '">';
// A one-button form posting `action` with hidden `fields`.
$actionForm = static function (string $do, array $fields, string $label, string $class) use ($action, $csrf, $sashField): string {
    $hidden = '';
    foreach ($fields as $name => $value) {
        $hidden .= '<input type="hidden" name="' . View::e($name) . '" value="' . View::e($value) . '">';
    }
    return '<form method="post" action="' . View::e($action) . '" class="inline-form">'
        . '<input type="hidden" name="_csrf" value="' . View::e($csrf) . '">' . $sashField
        . '<input type="hidden" name="action" value="' . View::e($do) . '">' . $hidden
        . '<button type="submit" class="btn ' . View::e($class) . '">' . View::e($label) . '</button></form>';
};
// Unpairing from BitPay and disconnecting from BTCPay Server are one action (`unpair`).
$unpairForm = static function (string $label) use ($action, $csrf, $sashField): string {
    return '<form method="post" action="' . View::e($action) . '" class="inline-form" style="margin-top:14px">'
        . '<input type="hidden" name="_csrf" value="' . View::e($csrf) . '">' . $sashField
        . '<input type="hidden" name="action" value="unpair">'
        . '<button type="submit" class="btn btn-danger unpair">' . View::e($label) . '</button></form>';
};
$journal = static function (array $entries): string {
    if (!$entries) {
        return '<p class="muted">No journal entries.</p>';
    }
    $rows = '';
    foreach ($entries as $entry) {
        $rows .= '<tr><td class="mono">' . View::e($entry['at']) . '</td><td>' . View::e($entry['kind']) . '</td><td>' . View::e($entry['summary']) . '</td></tr>';
    }
    return '<div class="table-wrap"><table class="table journal"><tr><th>When</th><th>What</th><th>Summary</th></tr>' . $rows . '</table></div>';
};
// "Invoice #2026-0042", "Proforma invoice #P-17", "Balance top-up": the number customers see, never an internal id.
$documentName = static function (array $invoice): string {
    $names = ['invoice' => 'Invoice', 'proforma' => 'Proforma invoice', 'refill' => 'Balance top-up'];
    $name = isset($names[$invoice['document']]) ? $names[$invoice['document']] : (string) $invoice['document'];
    if ($invoice['document'] === 'refill') {
        return $name;
    }
    return $name . ($invoice['document_number'] !== null ? ' #' . (string) $invoice['document_number'] : '');
};
// "12 minutes ago" for a Unix time in seconds.
$ago = static function (int $at): string {
    $s = max(0, time() - $at);
    if ($s < 120) {
        return $s . ' seconds ago';
    }
    if ($s < 7200) {
        return intdiv($s, 60) . ' minutes ago';
    }
    if ($s < 172800) {
        return intdiv($s, 3600) . ' hours ago';
    }
    return intdiv($s, 86400) . ' days ago';
};
$checksUrl = $action . (strpos($action, '?') === false ? '?' : '&') . 'checks=1#health';
$invoiceBlock = static function (array $invoice) use ($journal, $documentName): string {
    $doc = $documentName($invoice);
    return '<dl class="dl-horizontal">'
        . '<dt>' . View::e(isset($invoice['server']) ? $invoice['server'] : 'BitPay') . ' invoice</dt><dd><span class="mono">' . View::e($invoice['bitpay_invoice_id']) . '</span></dd>'
        . '<dt>Document</dt><dd>' . View::e($doc) . ' of customer ' . View::e($invoice['customer_id']) . '</dd>'
        . '<dt>Amount</dt><dd>' . View::e($invoice['price']) . ' ' . View::e($invoice['currency']) . '</dd>'
        . '<dt>Server status</dt><dd>' . View::e($invoice['bitpay_status']) . ($invoice['exception_status'] ? ' (' . View::e($invoice['exception_status']) . ')' : '') . '</dd>'
        . '<dt>Settlement</dt><dd>' . View::e($invoice['settlement']) . ($invoice['note'] ? ' — ' . View::e($invoice['note']) : '') . '</dd>'
        . '<dt>Splynx payment</dt><dd>' . View::e($invoice['splynx_payment_id'] !== null ? $invoice['splynx_payment_id'] : 'none') . '</dd>'
        . '<dt>Created</dt><dd>' . View::e($invoice['created_at']) . '</dd>'
        . '</dl><h4 style="margin-top:14px;font-size:14px">Journal</h4>' . $journal(isset($invoice['journal']) ? $invoice['journal'] : []);
};
?>
<div class="container">
<h3>Config &rarr; Integrations &rarr; Bitpay</h3>
<?php if ($flash !== null) : ?>
<div class="alert alert-<?= View::e($flash[0]) ?> flash" role="alert"><?= View::e($flash[1]) ?><?php if (!empty($flash[2]) && $mayRefund) : ?> <?= $actionForm('refund_record', ['bitpay_invoice_id' => (string) $flash[2]], 'Record the refund', 'record-refund') ?><?php endif; ?></div>
<?php endif; ?>
<?php if ($effective !== null && !empty($effective['problems'])) : ?>
<div class="alert alert-danger config-problems" role="alert"><b>Settings to fix.</b> Customers cannot start a payment until these are corrected; payments already received are still credited.
<ul><?php foreach ($effective['problems'] as $p) : ?><li><?= View::e($p['message']) ?></li><?php endforeach; ?></ul></div>
<?php endif; ?>
<?php if ($status === null) : ?>
<div class="alert alert-danger status-error" role="alert">The add-on cannot read its state: <?= View::e($status_error) ?></div>
<?php else : ?>

<?php if (!empty($status['held'])) : ?>
<div class="panel held">
<div class="panel-heading">Needs your attention</div>
<div class="panel-body">
<p>These payments are held: nothing is done with them automatically, and nothing is deleted. Check each one (the note says what happened), act in Splynx under Finance &rarr; Payments, then mark it resolved here.</p>
<div class="table-wrap"><table class="table held-table"><tr><th>Invoice id</th><th>Document</th><th>Customer</th><th>Amount</th><th>State</th><th>Splynx payment</th></tr>
<?php foreach ($status['held'] as $row) : ?>
<tr><td class="id"><?= View::e($row['bitpay_invoice_id']) ?></td><td><?= View::e($documentName($row)) ?></td><td><?= View::e($row['customer_id']) ?></td><td><?= View::e($row['price'] . ' ' . $row['currency']) ?></td><td><span class="label label-warning"><?= View::e($row['settlement_text']) ?></span></td><td><?= View::e($row['splynx_payment_id'] !== null ? $row['splynx_payment_id'] : 'none') ?><?= !empty($row['duplicate_payment_ids']) ? '<br>duplicates: ' . View::e(implode(', ', $row['duplicate_payment_ids'])) : '' ?></td></tr>
<tr class="note-row"><td class="note" colspan="6"><?= View::e($row['note'] !== null ? $row['note'] : '') ?>
<?php if ($mayPair) : ?>
<form method="post" action="<?= View::e($action) ?>" class="inline-form resolve-form">
<input type="hidden" name="_csrf" value="<?= View::e($csrf) ?>">
<?= $sashField ?>
<input type="hidden" name="action" value="resolve">
<input type="hidden" name="bitpay_invoice_id" value="<?= View::e($row['bitpay_invoice_id']) ?>">
<input class="form-control" name="note" maxlength="500" placeholder="What you did in Splynx" style="width:280px">
<button type="submit" class="btn resolve">Mark resolved</button>
</form>
<?php endif; ?>
<?php if ($mayRefund && $row['settlement'] === 'reversed') : ?>
<?= $actionForm('refund_record', ['bitpay_invoice_id' => (string) $row['bitpay_invoice_id']], 'Record the refund in Splynx', 'record-refund') ?>
<?php endif; ?></td></tr>
<?php endforeach; ?>
</table></div>
</div>
</div>
<?php endif; ?>
<?php $health = isset($status['health']) ? $status['health'] : null; ?>
<?php if ($health !== null) : ?>
<?php
// The add-on's health in an admin's words: what the metrics say, each line a fact and what to do.
$server = $environment === 'btcpay' ? 'BTCPay Server' : 'BitPay';
$lines = [];
$lines[] = $health['credentials_valid']
    ? ['ok', 'The ' . $server . ' credential is stored and was accepted at the last reconcile.']
    : ['bad', 'The ' . $server . ' credential is missing or was refused at the last reconcile: ' . ($environment === 'btcpay' ? 'connect again' : 'pair again') . ' under Pairing below. Customers cannot pay until then.'];
if ($health['last_webhook_timestamp'] !== null) {
    $lines[] = ['ok', 'Last webhook from ' . $server . ' ' . $ago((int) $health['last_webhook_timestamp']) . '.'];
} else {
    $lines[] = ['warn', 'No webhook from ' . $server . ' has arrived yet: payments are still credited by the reconcile every 10 minutes; run the checks below to test the notification URL.'];
}
if ($health['reconcile_last_success_timestamp'] !== null) {
    $late = time() - (int) $health['reconcile_last_success_timestamp'] > 3600;
    $lines[] = [$late ? 'bad' : 'ok', 'Last successful reconcile ' . $ago((int) $health['reconcile_last_success_timestamp']) . ($late ? ': it runs every 10 minutes from cron, so it has stopped or is failing.' : '.')];
} else {
    $lines[] = ['warn', 'No reconcile has finished yet: cron runs it every 10 minutes (/etc/cron.d/splynx-bitpay).'];
}
if ($health['reconcile_exit_status'] !== null && ((int) $health['reconcile_exit_status'] !== 0 || (int) $health['reconcile_errors'] > 0)) {
    $lines[] = ['bad', 'The last reconcile ended with ' . (int) $health['reconcile_errors'] . ' error(s) (exit status ' . (int) $health['reconcile_exit_status'] . '): cron mails its errors to the server\'s administrator, and Run all checks below tells what is wrong with the setup.'];
}
$heldTotal = array_sum(array_map('intval', (array) $health['held_records']));
if ($heldTotal > 0) {
    $lines[] = ['bad', $heldTotal . ' payment(s) wait for you under Needs your attention.'];
}
if ($health['audit_differences'] !== null && (int) $health['audit_differences'] > 0) {
    $lines[] = ['bad', 'The last audit found ' . (int) $health['audit_differences'] . ' difference(s) between ' . $server . ' and Splynx (Books, below).'];
}
$labels = ['ok' => 'success', 'warn' => 'warning', 'bad' => 'danger'];
?>
<div class="panel health" id="health">
<div class="panel-heading">Health</div>
<div class="panel-body">
<ul class="health-lines">
<?php foreach ($lines as $line) : ?>
<li class="health-<?= View::e($line[0]) ?>"><span class="label label-<?= View::e($labels[$line[0]]) ?>"><?= $line[0] === 'ok' ? 'ok' : ($line[0] === 'warn' ? 'note' : 'act') ?></span> <?= View::e($line[1]) ?></li>
<?php endforeach; ?>
</ul>
<?php if ($checks === null) : ?>
<a class="btn run-checks" href="<?= View::e($checksUrl) ?>">Run all checks</a> <span class="muted">(settings, files, Splynx, <?= View::e($server) ?> and the webhook address; takes a few seconds)</span>
<?php elseif (isset($checks['error'])) : ?>
<div class="alert alert-danger">The checks did not run: <?= View::e($checks['error']) ?></div>
<?php else : ?>
<p class="checks-summary"><?= View::e((int) $checks['summary']['ok']) ?> checks passed, <?= View::e((int) $checks['summary']['warn']) ?> warnings, <?= View::e((int) $checks['summary']['fail']) ?> failed.</p>
<div class="table-wrap"><table class="table doctor-checks"><tr><th>Check</th><th>Result</th><th>What to do</th></tr>
<?php foreach ($checks['checks'] as $c) : ?>
<?php if ($c['status'] === 'skip') { continue; } ?>
<tr class="check-<?= View::e($c['status']) ?>"><td><span class="label label-<?= View::e(['ok' => 'success', 'warn' => 'warning', 'fail' => 'danger'][$c['status']]) ?>"><?= View::e($c['status']) ?></span></td><td><?= View::e($c['message']) ?></td><td><?= View::e($c['fix'] !== null ? $c['fix'] : '') ?></td></tr>
<?php endforeach; ?>
</table></div>
<?php endif; ?>
</div>
</div>
<?php endif; ?>
<?php $audit = isset($status['last_audit']) ? $status['last_audit'] : null; ?>
<div class="panel books" id="books">
<div class="panel-heading">Books: <?= View::e($environment === 'btcpay' ? 'BTCPay Server' : 'BitPay') ?> against Splynx</div>
<div class="panel-body">
<?php if ($audit === null) : ?>
<p class="muted no-audit">No audit recorded yet. An audit lists every difference between what the payment server received and the payments in Splynx for a month; cron records last month's on the 2nd.</p>
<?php else : ?>
<p class="audit-summary">Last audit: <b><?= View::e($audit['from']) ?> to <?= View::e($audit['to']) ?></b>, run <?= View::e($ago(intdiv((int) $audit['at_ms'], 1000))) ?>: <?= View::e((int) $audit['paid_at_server']) ?> invoice(s) paid at <?= View::e($audit['server']) ?>, <?= View::e((int) $audit['splynx_payments']) ?> payment(s) in Splynx, <?= View::e((int) $audit['matched']) ?> matched —
<?= (int) $audit['differences'] === 0 ? '<span class="label label-success">no differences</span>' : '<span class="label label-danger">' . View::e((int) $audit['differences']) . ' difference(s)</span>' ?></p>
<?php if (!empty($audit['shown'])) : ?>
<div class="table-wrap"><table class="table audit-differences"><tr><th>Difference</th><th>Invoice id</th><th>Splynx payment</th><th>Detail</th></tr>
<?php foreach ($audit['shown'] as $d) : ?>
<tr><td><?= View::e($d['description']) ?></td><td class="id"><?= View::e($d['invoice_id'] !== '' ? $d['invoice_id'] : (string) $d['refund_id']) ?></td><td><?= View::e($d['splynx_payment_ids'] ? implode(', ', $d['splynx_payment_ids']) : '-') ?></td><td class="detail"><?= View::e($d['detail']) ?></td></tr>
<?php endforeach; ?>
</table></div>
<?php if ((int) $audit['differences'] > count($audit['shown'])) : ?><p class="muted">The first <?= count($audit['shown']) ?> are shown; the audit's CSV export on the server lists them all.</p><?php endif; ?>
<?php endif; ?>
<?php foreach ((array) $audit['notes'] as $note) : ?><p class="muted"><?= View::e($note) ?></p><?php endforeach; ?>
<?php endif; ?>
<?php if ($mayRefund) : ?>
<?= $actionForm('audit', [], 'Audit last month', 'run-audit') ?> <span class="muted">Reads both books and changes nothing; takes longer for busy months.</span>
<?php elseif (!empty($status['refund_refusal'])) : ?>
<p class="muted audit-refusal">Administrators with a refund role (admin.refund_roles in the add-on's config) may run the audit here.</p>
<?php endif; ?>
</div>
</div>
<?php if (!empty($status['bookings_waiting']['count'])) : ?>
<div class="alert alert-warning bookings-waiting" role="alert"><?= View::e($status['bookings_waiting']['count']) ?> credited payment(s) wait for their payment statement record or fee transaction. The payments are in Splynx; <code>splynx-bitpay reconcile</code> books what waits. <?= View::e((string) $status['bookings_waiting']['oldest_note']) ?></div>
<?php endif; ?>
<div class="panel">
<div class="panel-heading">Pairing</div>
<div class="panel-body">
<?php if ($environment === 'btcpay') : ?>
<?php if ($paired) : ?>
<div class="alert alert-success pairing-state">Connected to BTCPay Server <?= View::e($status['api_url']) ?>: customers can pay, and its webhook reaches this add-on.</div>
<?php else : ?>
<div class="alert alert-warning pairing-state">Not connected to BTCPay Server <?= View::e($status['api_url']) ?> yet.</div>
<?php endif; ?>
<?php if ($mayPair) : ?>
<p class="pair-howto">Connecting opens your BTCPay Server: sign in, choose the store (the one in <code>[btcpay] store_id</code>) and authorize the add-on. BTCPay then sends you back here with a key for that store; the add-on registers its webhook itself.</p>
<form method="post" action="<?= View::e($action) ?>" class="inline-form connect-form">
<input type="hidden" name="_csrf" value="<?= View::e($csrf) ?>">
<?= $sashField ?>
<input type="hidden" name="action" value="connect_btcpay">
<button type="submit" class="btn btn-primary connect"><?= $paired ? 'Connect again' : 'Connect to BTCPay Server' ?></button>
</form>
<?php if ($paired) : ?>
<?= $unpairForm('Disconnect') ?>
<?php endif; ?>
<?php elseif ($status['administrator'] === null) : ?>
<div class="alert alert-info read-only">Open this page from the Splynx admin panel (Config &rarr; Integrations &rarr; Bitpay) to connect: Splynx then tells the add-on who you are.</div>
<?php else : ?>
<div class="alert alert-info read-only"><?= View::e($status['pairing_refusal']) ?></div>
<?php endif; ?>
<?php else : ?>
<?php if ($paired) : ?>
<div class="alert alert-success pairing-state">Paired with the BitPay <?= View::e($environment) ?> environment: the <?= View::e(implode(', ', $status['paired'])) ?> token is active, and customers can pay.</div>
<?php else : ?>
<div class="alert alert-warning pairing-state">Access token is not set for <?= View::e($environment) ?> environment.</div>
<?php if ($mayPair) : ?>
<p class="pair-howto">Log in to your BitPay dashboard &rarr; <b>Payment Tools</b> &rarr; <b>Manage API Tokens</b> &rarr; <b>Add New Token</b> (with "Require Authentication" enabled), copy the <b>pairing code</b> (it looks like <code>u7m0VSR</code>), paste it below and click <b>Pair</b>.</p>
<?php endif; ?>
<?php endif; ?>
<dl class="dl-horizontal" style="margin-bottom:14px">
<dt>Mode</dt><dd><?= View::e($environment === 'production' ? 'Production' : 'Test') ?></dd>
<dt>BitPay API</dt><dd><?= View::e($status['api_url']) ?></dd>
<dt>Client id (SIN)</dt><dd><?php if (!empty($status['sin'])) : ?><span class="mono"><?= View::e($status['sin']) ?></span><?php else : ?><span class="muted">created at the first pairing</span><?php endif; ?></dd>
</dl>
<?php if (!empty($status['tokens'])) : ?>
<div class="table-wrap"><table class="table tokens"><tr><th>Facade</th><th>State</th><th>Paired</th></tr>
<?php foreach ($status['tokens'] as $t) : ?>
<tr><td><?= View::e($t['facade']) ?></td><td><?= !empty($t['approved']) ? '<span class="label label-success">active</span>' : '<span class="label label-warning">waiting for approval</span>' ?></td><td><?= View::e($t['paired_at'] !== null ? $t['paired_at'] : '-') ?></td></tr>
<?php endforeach; ?>
</table></div>
<?php endif; ?>
<?php if (!empty($status['pending_approvals'])) : ?>
<div class="alert alert-info pending">
<?php foreach ($status['pending_approvals'] as $p) : ?>
<?php if ($p['pairing_code'] !== null) : ?>Pairing code <code class="pending-code"><?= View::e($p['pairing_code']) ?></code><?php else : ?>A pairing code<?php endif; ?> (<?= View::e($p['facade']) ?>) waits for approval until <?= View::e($p['pairing_expires_at']) ?>: <a href="<?= View::e($p['approve_url']) ?>" target="_blank" rel="noopener noreferrer">approve it in the BitPay dashboard</a>.<br>
<?php endforeach; ?>
</div>
<?php endif; ?>
<?php if ($mayPair) : ?>
<form method="post" action="<?= View::e($action) ?>" class="inline-form pair-form">
<input type="hidden" name="_csrf" value="<?= View::e($csrf) ?>">
<?= $sashField ?>
<input type="hidden" name="action" value="pair">
<div class="form-group"><label for="pairing_code"><?= $paired ? 'New pairing code (replaces the active token)' : 'Pairing code' ?></label>
<input class="form-control" id="pairing_code" name="pairing_code" required maxlength="7" pattern="[A-Za-z0-9]{7}"<?= $paired ? '' : ' placeholder="u7m0VSR"' ?> style="width:180px" autocomplete="off"></div>
<button type="submit" class="btn btn-primary pair"><?= $paired ? 'Pair again' : 'Pair' ?></button>
</form>
<p class="muted" style="margin-top:12px">No dashboard code? Request one here and approve it in BitPay:</p>
<form method="post" action="<?= View::e($action) ?>" class="inline-form request-form">
<input type="hidden" name="_csrf" value="<?= View::e($csrf) ?>">
<?= $sashField ?>
<input type="hidden" name="action" value="request">
<div class="form-group"><label for="facade">Facade</label>
<select class="form-control" id="facade" name="facade" style="width:180px"><option value="merchant">merchant</option><option value="pos">pos</option></select></div>
<button type="submit" class="btn request">Request a pairing code</button>
</form>
<?php if (!empty($status['tokens'])) : ?>
<?= $unpairForm('Unpair') ?>
<?php endif; ?>
<?php elseif ($status['administrator'] === null) : ?>
<div class="alert alert-info read-only">Open this page from the Splynx admin panel (Config &rarr; Integrations &rarr; Bitpay) to change the pairing: Splynx then tells the add-on who you are.</div>
<?php else : ?>
<div class="alert alert-info read-only"><?= View::e($status['pairing_refusal']) ?></div>
<?php endif; ?>
<?php endif; ?>
<?php if (!empty($status['pairing_changes'])) : ?>
<h4 style="margin-top:16px;font-size:14px">Pairing changes</h4>
<div class="table-wrap"><table class="table pairing-changes"><tr><th>When</th><th>What, and by whom</th></tr>
<?php foreach ($status['pairing_changes'] as $change) : ?>
<tr><td><?= View::e($change['at']) ?></td><td class="summary"><?= View::e($change['summary']) ?></td></tr>
<?php endforeach; ?>
</table></div>
<?php endif; ?>
</div>
</div>

<div class="panel">
<div class="panel-heading">Payments</div>
<div class="panel-body">
<dl class="dl-horizontal">
<dt>Invoices</dt><dd class="counts"><?php
if (empty($status['invoices'])) {
    echo 'none yet';
} else {
    $parts = [];
    foreach ($status['invoices'] as $state => $count) {
        $parts[] = View::e($state) . ': ' . View::e($count);
    }
    echo implode(', ', $parts);
}
?></dd>
<dt>Last webhook</dt><dd class="last-webhook"><?= View::e($status['last_webhook_at'] !== null ? $status['last_webhook_at'] : 'none received yet') ?></dd>
<dt>Oldest unsettled</dt><dd><?= $oldest === null ? 'none' : 'since ' . View::e($oldest['created_at']) . ' (below)' ?></dd>
</dl>
<?php if (!empty($status['recent_payments'])) : ?>
<h4 style="margin-top:16px;font-size:15px">Recent payments</h4>
<div class="table-wrap"><table class="table recent-payments"><tr><th>Credited</th><th>Document</th><th>Customer</th><th>Amount</th><th>Splynx payment</th><th>Invoice id</th><th>Now</th><?= $mayRefund ? '<th>Refund</th>' : '' ?></tr>
<?php foreach ($status['recent_payments'] as $row) : ?>
<?php $left = isset($status['refundable'][$row['bitpay_invoice_id']]) ? (string) $status['refundable'][$row['bitpay_invoice_id']] : null; ?>
<tr><td><?= View::e($row['credited_at']) ?></td><td><?= View::e($documentName($row)) ?></td><td><?= View::e($row['customer_id']) ?></td><td><?= View::e($row['price'] . ' ' . $row['currency']) ?></td><td><?= View::e($row['splynx_payment_id'] !== null ? $row['splynx_payment_id'] : '-') ?></td><td class="id"><?= View::e($row['bitpay_invoice_id']) ?></td><td><?= View::e($row['settlement_text']) ?></td><?php if ($mayRefund) : ?><td class="refund-cell"><?= $left !== null ? $actionForm('refund', ['bitpay_invoice_id' => (string) $row['bitpay_invoice_id']], 'Refund', 'refund') . ' <span class="muted">up to ' . View::e($left . ' ' . $row['currency']) . '</span>' : '<span class="muted">-</span>' ?></td><?php endif; ?></tr>
<?php endforeach; ?>
</table></div>
<?php endif; ?>
<?php if ($mayRefund && $environment !== 'btcpay' && !empty($status['recent_payments']) && !in_array('merchant', (array) $status['paired'], true)) : ?>
<div class="alert alert-info merchant-needed">Refunds through BitPay need a <b>merchant</b> token, and only a <?= View::e(implode(', ', (array) $status['paired'])) ?> token is paired: request a pairing code with the facade <b>merchant</b> above (or <code>splynx-bitpay pair --request --facade merchant</code>) and approve it in the BitPay dashboard.</div>
<?php endif; ?>
<?php if (!empty($status['refund_refusal']) && !empty($status['recent_payments'])) : ?>
<p class="muted refund-refusal"><?= View::e($status['refund_refusal']) ?></p>
<?php endif; ?>
<?php if (!empty($status['recent_refunds'])) : ?>
<h4 style="margin-top:16px;font-size:15px">Refunds</h4>
<div class="table-wrap"><table class="table refunds"><tr><th>Refund</th><th>Invoice id</th><th>Amount</th><th>State</th><th>Asked by</th><th>When</th><th>Splynx</th></tr>
<?php foreach ($status['recent_refunds'] as $r) : ?>
<?php $open = in_array($r['state'], ['sending', 'requested', 'pending'], true); ?>
<tr><td class="id"><?= View::e($r['id']) ?></td><td class="id"><?= View::e($r['invoice_id']) ?></td><td><?= View::e($r['amount'] . ' ' . $r['currency']) ?></td><td><span class="label refund-state label-<?= $r['state'] === 'paid-out' ? 'success' : ($open ? 'info' : 'warning') ?>"><?= View::e($r['state_text']) ?></span><?= $r['server_status'] !== null ? ' <span class="muted">(' . View::e($r['server_status']) . ')</span>' : '' ?></td><td><?= View::e($r['requested_by']) ?><?= $r['reason'] !== null ? '<br><span class="muted">' . View::e($r['reason']) . '</span>' : '' ?></td><td><?= View::e($r['requested_at']) ?></td><td><?= $r['splynx_payment_id'] !== null ? 'payment ' . View::e($r['splynx_payment_id']) : 'not booked' ?></td></tr>
<?php if (($open && $r['claim_link'] !== null) || ($open && $mayRefund && $environment !== 'btcpay' && $r['state'] !== 'sending') || $r['note'] !== null) : ?>
<tr class="note-row"><td class="note" colspan="7"><?php if ($open && $r['claim_link'] !== null) : ?>Claim link for the customer: <a class="claim-link" href="<?= View::e($r['claim_link']) ?>" target="_blank" rel="noopener noreferrer"><?= View::e($r['claim_link']) ?></a> <?php endif; ?><?= $r['note'] !== null ? View::e($r['note']) . ' ' : '' ?><?= $open && $mayRefund && $environment !== 'btcpay' && $r['state'] !== 'sending' ? $actionForm('refund_cancel', ['refund_id' => (string) $r['id']], 'Cancel refund', 'cancel-refund') : '' ?></td></tr>
<?php endif; ?>
<?php endforeach; ?>
</table></div>
<?php endif; ?>
<?php if (!empty($status['recent_webhooks'])) : ?>
<h4 style="margin-top:16px;font-size:15px">Last webhooks</h4>
<div class="table-wrap"><table class="table recent-webhooks"><tr><th>#</th><th>When</th><th>Invoice id</th><th>What happened</th></tr>
<?php foreach ($status['recent_webhooks'] as $hook) : ?>
<tr><td class="mono" title="splynx-bitpay replay --webhook <?= View::e($hook['id']) ?>"><?= View::e($hook['id']) ?></td><td><?= View::e($hook['at']) ?></td><td class="id"><?= View::e($hook['bitpay_invoice_id'] !== null ? $hook['bitpay_invoice_id'] : '-') ?></td><td class="summary"><?= View::e($hook['summary']) ?></td></tr>
<?php endforeach; ?>
</table></div>
<?php endif; ?>
<?php if (!empty($status['unsettled'])) : ?>
<h4 style="margin-top:16px;font-size:15px">Unsettled invoices</h4>
<div class="table-wrap"><table class="table unsettled"><tr><th>Invoice id</th><th>Document</th><th>Customer</th><th>Amount</th><th>Server status</th><th>State</th><th>Since</th></tr>
<?php foreach ($status['unsettled'] as $row) : ?>
<tr><td class="id"><?= View::e($row['bitpay_invoice_id'] !== null ? $row['bitpay_invoice_id'] : '(being created)') ?></td><td><?= View::e($documentName($row)) ?></td><td><?= View::e($row['customer_id']) ?></td><td><?= View::e($row['price'] . ' ' . $row['currency']) ?></td><td><?= View::e($row['bitpay_status']) ?></td><td><?= View::e($row['settlement']) ?></td><td><?= View::e($row['created_at']) ?></td></tr>
<?php endforeach; ?>
</table></div>
<?php endif; ?>
<?php if ($oldest !== null) : ?>
<h4 style="margin-top:16px;font-size:15px">Oldest unsettled invoice</h4>
<div class="oldest"><?= $invoiceBlock($oldest) ?></div>
<?php endif; ?>
</div>
</div>
<?php endif; ?>

<div class="panel" id="lookup">
<div class="panel-heading">Look up a payment</div>
<div class="panel-body">
<form method="get" action="<?= View::e($action) ?>#lookup" class="inline-form">
<?= $sashField ?>
<div class="form-group"><label for="show">Invoice id (BitPay or BTCPay Server), order id or document number</label>
<input class="form-control" id="show" name="show" value="<?= View::e($lookup) ?>" style="width:340px"></div>
<button type="submit" class="btn">Show</button>
</form>
<?php if ($lookup_error !== null) : ?><div class="alert alert-warning" style="margin-top:12px"><?= View::e($lookup_error) ?></div><?php endif; ?>
<?php if ($found !== null) : ?>
<div class="lookup" style="margin-top:14px">
<?php foreach ($found['invoices'] as $invoice) : ?><?= $invoiceBlock($invoice) ?><?php endforeach; ?>
<?php if (empty($found['invoices'])) : ?><?= $journal($found['journal']) ?><?php endif; ?>
</div>
<?php endif; ?>
</div>
</div>

<div class="panel">
<div class="panel-heading">Settings</div>
<div class="panel-body">
<dl class="dl-horizontal">
<dt>Configuration file</dt><dd><code><?= View::e($config_path) ?></code></dd>
<?php if ($effective !== null && $effective['modules_list_file'] !== null) : ?><dt>Modules list</dt><dd><code><?= View::e($effective['modules_list_file']) ?></code></dd><?php endif; ?>
</dl>
<?php if ($effective !== null) : ?>
<div class="table-wrap"><table class="table effective-settings"><tr><th>Setting</th><th>Value</th><th>Set in</th></tr>
<?php foreach ($effective['settings'] as $s) : ?>
<tr><td class="mono"><?= View::e($s['key']) ?></td><td><?= View::e($s['value']) ?></td><td><?= View::e($s['source_text']) ?></td></tr>
<?php endforeach; ?>
</table></div>
<?php if (!empty($effective['partners'])) : ?>
<h4 style="margin-top:16px;font-size:15px">Partners settings</h4>
<p class="muted">A partner's customers get these instead of the values above.</p>
<div class="table-wrap"><table class="table partner-settings"><tr><th>Partner</th><th>Setting</th><th>Value</th></tr>
<?php foreach ($effective['partners'] as $partner) : ?>
<?php foreach ($partner['settings'] as $s) : ?>
<tr><td><?= View::e($partner['partner']) ?></td><td class="mono"><?= View::e($s['key']) ?></td><td><?= View::e($s['value']) ?></td></tr>
<?php endforeach; ?>
<?php endforeach; ?>
</table></div>
<?php endif; ?>
<?php else : ?>
<div class="alert alert-danger">The settings cannot be read: <?= View::e((string) $effective_error) ?></div>
<?php endif; ?>
<p class="muted" style="margin-top:10px">Change them in Config &rarr; Integrations &rarr; Modules list &rarr; splynx_bitpay_addon (a value there wins over the file; Partners settings apply to a partner's customers). The table shows where each value comes from, and wrong ones are listed at the top of this page. Secrets are never shown here.</p>
</div>
</div>
</div>
