<?php
/** @var array $state [title, kind, text] @var string $what @var string $price @var string $currency @var string $bitpay_id @var string $server @var array $back */
use SplynxBitpay\View;
?>
<div class="container narrow">
<div class="panel">
<div class="panel-body">
<div class="state state-<?= View::e($state[1]) ?>">
<div class="badge-big"><?php if ($state[1] === 'success') : ?><svg viewBox="0 0 24 24" aria-hidden="true"><path d="M5 12.5l4.5 4.5L19 7.5" fill="none" stroke="#fff" stroke-width="2.6" stroke-linecap="round" stroke-linejoin="round"/></svg><?php elseif ($state[1] === 'danger') : ?><svg viewBox="0 0 24 24" aria-hidden="true"><path d="M7 7l10 10M17 7L7 17" fill="none" stroke="#fff" stroke-width="2.6" stroke-linecap="round"/></svg><?php else : ?><svg viewBox="0 0 24 24" aria-hidden="true"><circle cx="12" cy="12" r="8" fill="none" stroke="#fff" stroke-width="2.2"/><path d="M12 7.5V12l3 2" fill="none" stroke="#fff" stroke-width="2.2" stroke-linecap="round"/></svg><?php endif; ?></div>
<h3 class="result-state"><?= View::e($state[0]) ?></h3>
<p><?= View::e($state[2]) ?></p>
</div>
<dl class="dl-horizontal">
<dt>Payment for</dt><dd class="result-document"><?= View::e($what) ?></dd>
<dt>Amount</dt><dd><?= View::e(View::money($price)) ?> <?= View::e($currency) ?></dd>
<dt><?= View::e($server) ?> invoice</dt><dd><span class="mono"><?= View::e($bitpay_id) ?></span></dd>
</dl>
<div class="actions" style="margin-top:16px"><a class="btn btn-primary back" href="<?= View::e($back[0]) ?>"><?= View::e($back[1]) ?></a></div>
</div>
</div>
</div>
