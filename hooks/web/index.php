<?php
/**
 * Front controller of the splynx-bitpay add-on: everything under https://<splynx>/bitpay/
 * arrives here (nginx `try_files ... /bitpay/index.php?$args`, see nginx/).
 */
require dirname(__DIR__) . '/lib/bitpay.php';

SplynxBitpay\App::run();
