<?php
/**
 * TEST ONLY: router for `php -S` (tests/browser/run.sh). Never shipped.
 *
 * Plays nginx and the Splynx portal around the real add-on:
 *  - /bitpay...        → like nginx's `try_files $uri $uri/ /bitpay/index.php?$args` over
 *                        the docroot's `bitpay -> hooks/web` symlink (static files as is);
 *  - /portal/login/, /admin/login/ → a fake Splynx login that puts splynx_customer_id /
 *                        splynx_admin_id into the real PHP session the shims read;
 *  - /portal/...       → a minimal fake customer portal (dashboard widget, invoice list with
 *                        the add-on's action icon opening its modal in an iframe).
 */

$path = (string) parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
$root = $_SERVER['DOCUMENT_ROOT'];

if ($path === '/bitpay' || strpos($path, '/bitpay/') === 0) {
    $file = $root . $path;
    if (is_file($file) && substr($file, -4) !== '.php') {
        return false;
    }
    $_SERVER['SCRIPT_NAME'] = '/bitpay/index.php';
    $_SERVER['SCRIPT_FILENAME'] = $root . '/bitpay/index.php';
    require $root . '/bitpay/index.php';
    return true;
}

require __DIR__ . '/fake-splynx.php';
return true;
