<?php
/**
 * A confirmation step for a pairing change or a refund.
 * @var string $csrf @var string $action @var string $sash @var string $heading @var string $text
 * @var string $do @var array $fields @var array $inputs (name => [label, value, maxlength])
 * @var string $button @var string $button_class
 */
use SplynxBitpay\View;
?>
<div class="container narrow">
<div class="panel">
<div class="panel-heading"><?= View::e($heading) ?></div>
<div class="panel-body">
<p><?= View::e($text) ?></p>
<form method="post" action="<?= View::e($action) ?>" class="actions">
<input type="hidden" name="_csrf" value="<?= View::e($csrf) ?>">
<input type="hidden" name="sash" value="<?= View::e($sash) ?>">
<input type="hidden" name="action" value="<?= View::e($do) ?>">
<input type="hidden" name="confirm" value="yes">
<?php foreach ($fields as $name => $value) : ?>
<input type="hidden" name="<?= View::e($name) ?>" value="<?= View::e($value) ?>">
<?php endforeach; ?>
<?php foreach (isset($inputs) ? $inputs : [] as $name => $input) : ?>
<div class="form-group"><label for="<?= View::e($name) ?>"><?= View::e($input[0]) ?></label>
<input class="form-control" id="<?= View::e($name) ?>" name="<?= View::e($name) ?>" value="<?= View::e($input[1]) ?>" maxlength="<?= View::e($input[2]) ?>" style="width:280px"></div>
<?php endforeach; ?>
<button type="submit" class="btn btn-danger <?= View::e($button_class) ?>"><?= View::e($button) ?></button>
<a class="btn" href="<?= View::e($action) ?>">Cancel</a>
</form>
</div>
</div>
</div>
