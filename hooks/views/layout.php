<?php
/** @var string $title @var string $content @var bool $modal @var bool $standalone (a modal opened as a whole page) */
use SplynxBitpay\View;
?><!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<?php if (!empty($refresh)) : ?><meta http-equiv="refresh" content="10"><?php endif; ?>
<title><?= View::e($title) ?> · Splynx BitPay add-on</title>
<style><?= file_get_contents(__DIR__ . '/style.css') ?></style>
</head>
<body class="<?= $modal ? 'modal-page' : 'full-page' ?>">
<?php if ($modal) : ?>
<div class="modal-body">
<?= $content ?>
</div>
<?php else : ?>
<div class="topbar"><?= View::partial('icon', []) ?><span class="brand">Splynx BitPay add-on</span></div>
<?php if (!empty($standalone)) : ?>
<div class="container narrow standalone"><div class="panel"><div class="panel-body">
<?= $content ?>
</div></div><p><a href="/portal/">Back to the customer portal</a></p></div>
<?php else : ?>
<?= $content ?>
<?php endif; ?>
<?php endif; ?>
</body>
</html>
