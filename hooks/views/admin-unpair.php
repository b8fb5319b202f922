<?php
/** @var string $csrf @var string $action */
use SplynxBitpay\View;
?>
<div class="container narrow">
<div class="panel">
<div class="panel-heading">Unpair from BitPay</div>
<div class="panel-body">
<p>This forgets the BitPay tokens of this server. Customers cannot pay with BitPay until you pair again. Invoices already created keep being settled.</p>
<form method="post" action="<?= View::e($action) ?>" class="actions">
<input type="hidden" name="_csrf" value="<?= View::e($csrf) ?>">
<input type="hidden" name="action" value="unpair">
<input type="hidden" name="confirm" value="yes">
<button type="submit" class="btn btn-danger confirm-unpair">Yes, unpair</button>
<a class="btn" href="<?= View::e($action) ?>">Cancel</a>
</form>
</div>
</div>
</div>
