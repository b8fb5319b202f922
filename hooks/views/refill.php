<?php
/** @var string $amount @var string $min @var string $max @var string $currency @var string $step @var string $fee_note @var string|null $error @var string $csrf @var string $action */
use SplynxBitpay\Settings;
use SplynxBitpay\View;
?>
<div class="container narrow">
<div class="panel">
<div class="panel-heading">Refill your balance with <?= View::e(Settings::server()) ?></div>
<div class="panel-body">
<?php if ($error !== null) : ?>
<div class="alert alert-danger refill-error" role="alert"><?= View::e($error) ?></div>
<?php endif; ?>
<form method="post" action="<?= View::e($action) ?>" class="refill-form">
<input type="hidden" name="_csrf" value="<?= View::e($csrf) ?>">
<div class="form-group">
<label for="amount">Amount</label>
<div class="input-group">
<input class="form-control" id="amount" name="amount" type="number" inputmode="decimal" required
 min="<?= View::e($min) ?>" max="<?= View::e($max) ?>" step="<?= View::e($step) ?>" value="<?= View::e($amount) ?>" placeholder="Amount" autofocus>
<span class="input-group-addon"><?= View::e($currency) ?></span>
</div>
<p class="help-block bounds">Between <?= View::e(View::money($min)) ?> and <?= View::e(View::money($max)) ?> <?= View::e($currency) ?>.</p>
<?php if ($fee_note !== '') : ?>
<p class="help-block fee-note"><?= View::e($fee_note) ?></p>
<?php endif; ?>
</div>
<button type="submit" class="btn btn-primary btn-lg btn-block pay"><?= View::partial('icon', []) ?> Pay</button>
</form>
<p class="footer-note">You will pay on <?= View::e(Settings::server()) ?>'s secure page; your balance is credited once the payment is confirmed.</p>
</div>
</div>
<p class="right"><a href="/portal/" target="_top">&larr; Back to the portal</a></p>
</div>
