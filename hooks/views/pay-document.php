<?php
/** @var array $kind @var array $document @var string $item_id @var string $action @var string $csrf */
use SplynxBitpay\Settings;
use SplynxBitpay\View;
?>
<h4 class="pay-heading"><?= View::e($kind['heading']) ?> #<?= View::e($document['number']) ?></h4>
<?php $currency = ' ' . (string) $document['currency']; ?>
<?php if (empty($document['fee'])) : ?>
<ul class="list-unstyled">
<li class="total"><?= View::e($kind['total']) ?>: <strong class="amount"><?= View::e(View::money((string) $document['price']) . $currency) ?></strong></li>
</ul>
<?php else : $fee = $document['fee']; ?>
<table class="table fee-table">
<tr class="document-amount"><td><?= View::e($kind['amount']) ?></td><td class="num"><?= View::e(View::money((string) $document['amount']) . $currency) ?></td></tr>
<tr class="fee"><td><?= View::e($fee['label'] . ' (' . $fee['percent'] . ' %)') ?></td><td class="num"><?= View::e(View::money((string) $fee['fee']) . $currency) ?></td></tr>
<?php if ((string) $fee['vat_percent'] !== '0') : ?>
<tr class="fee-vat"><td><?= View::e('VAT on the fee (' . $fee['vat_percent'] . ' %)') ?></td><td class="num"><?= View::e(View::money((string) $fee['vat']) . $currency) ?></td></tr>
<?php endif; ?>
<tr class="total"><th>Total to pay</th><th class="num amount"><?= View::e(View::money((string) $document['price']) . $currency) ?></th></tr>
</table>
<?php endif; ?>
<form method="post" action="<?= View::e($action) ?>" target="_parent" class="checkout-form">
<?php if ($csrf !== '') : ?>
<input type="hidden" name="_csrf" value="<?= View::e($csrf) ?>">
<?php endif; ?>
<input type="hidden" name="item_id" value="<?= View::e($item_id) ?>">
<input type="hidden" name="document_id" value="<?= View::e((string) $document['document_id']) ?>">
<input type="hidden" name="total" value="<?= View::e((string) $document['price']) ?>">
<button type="submit" class="btn btn-success btn-lg checkout"><?= View::partial('icon', []) ?> Checkout Now</button>
</form>
<p class="help-block" style="margin-top:12px">You will pay on <?= View::e(Settings::server()) ?>'s secure page with Bitcoin or another supported cryptocurrency. The invoice is marked paid once the payment is confirmed.</p>
