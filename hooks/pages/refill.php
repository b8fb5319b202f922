<?php
/**
 * /bitpay/: balance top-up. GET shows the amount form (an `amount` in the query, e.g.
 * from the dashboard widget, only pre-fills it); POST (with the CSRF token) creates the
 * BitPay invoice and sends the customer to BitPay's checkout.
 */

namespace SplynxBitpay;

return static function (string $route): void {
    $customer = Caller::customerOrLogin();
    if ($customer === null) {
        return;
    }
    $currency = Settings::currency($customer);
    list($min, $max) = Settings::refillBounds($customer);
    $post = Http::method() === 'POST';
    $amount = trim($post ? Http::post('amount') : Http::query('amount'));
    // Only a pre-fill from the query must look like an amount; what is posted goes to the
    // binary, which decides (and explains) what it accepts.
    if (!$post && !preg_match('/^\d{1,9}(\.\d{1,8})?$/', $amount)) {
        $amount = '';
    }
    $error = null;
    $status = 200;

    if ($post) {
        if (!Csrf::valid()) {
            $error = 'This form has expired or did not come from your portal session. Please enter the amount again.';
            $status = 403;
        } elseif ($amount === '' || strlen($amount) > 32 || !preg_match('/^[\x20-\x7e]+$/', $amount)) {
            $error = 'Please enter an amount, e.g. 25.00.';
            $status = 422;
        } else {
            session_write_close();
            $created = Binary::run(['create-invoice', '--customer', (string) $customer, '--refill', $amount]);
            $url = $created->ok() && isset($created->json['url']) ? (string) $created->json['url'] : '';
            if ($url !== '' && preg_match('#^https?://#i', $url)) {
                Http::redirect($url, 303);
                return;
            }
            $error = $created->ok() ? unavailable() : $created->customerMessage();
            $status = $created->code === EXIT_BAD_INPUT ? 422 : 503;
        }
    }
    $token = Csrf::token();
    session_write_close();
    View::page('refill', [
        'title' => 'Refill your balance',
        'amount' => $amount,
        'min' => $min,
        'max' => $max,
        'currency' => $currency,
        'step' => Settings::amountStep($customer),
        'fee_note' => Settings::refillFeeNote($customer),
        'error' => $error,
        'csrf' => $token,
        'action' => URL_PREFIX . '/',
    ], $status);
};
