<?php
/** @var string $heading @var string $text @var string $kind @var bool $modal @var string|null $back */
use SplynxBitpay\View;
?>
<?php if (!$modal) : ?><div class="container narrow"><div class="panel"><div class="panel-body"><?php endif; ?>
<h4><?= View::e($heading) ?></h4>
<div class="alert alert-<?= View::e($kind) ?>" role="alert"><?= View::e($text) ?></div>
<?php if ($back !== null) : ?>
<p><a class="btn" href="<?= View::e($back) ?>" target="_top">&larr; Back to the portal</a></p>
<?php endif; ?>
<?php if (!$modal) : ?></div></div></div><?php endif; ?>
