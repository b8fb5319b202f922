<?php
/**
 * /bitpay/result?order=...: where BitPay or BTCPay Server sends the customer back. Shows the stored state
 * of that order ("Paid", "Waiting for confirmations", "Not paid / expired"), only to the
 * customer who owns it.
 */

namespace SplynxBitpay;

return static function (string $route): void {
    $customer = Caller::customerOrLogin();
    if ($customer === null) {
        return;
    }
    session_write_close();
    $order = Http::query('order');
    $notFound = static function (): void {
        View::message('Payment not found', 'We could not find this payment for your account.', 'warning', 404, false, '/portal/finance/invoices');
    };
    if (!preg_match('/^[A-Za-z0-9_-]{1,100}$/', $order)) {
        $notFound();
        return;
    }
    // The binary keeps other customers' payments out and decides what this one is told.
    $shown = Binary::run(['show', $order, '--customer', (string) $customer]);
    if (!$shown->ok() || empty($shown->json['invoices'][0]['customer_view'])) {
        if ($shown->code === EXIT_BAD_INPUT) {
            $notFound();
        } else {
            View::message('Payment status', unavailable(), 'danger', 503, false, '/portal/finance/invoices');
        }
        return;
    }
    $invoice = $shown->json['invoices'][0];
    $view = $invoice['customer_view'];
    $backs = [
        'invoice' => ['/portal/finance/invoices', 'Back to your invoices'],
        'proforma' => ['/portal/finance/requests', 'Back to your proforma invoices'],
        'refill' => ['/portal/finance/payments', 'Back to your payments'],
    ];
    $document = (string) $invoice['document'];
    $back = isset($backs[$document]) ? $backs[$document] : $backs['invoice'];
    View::page('result', [
        'title' => (string) $view['title'],
        'state' => [(string) $view['title'], (string) $view['tone'], (string) $view['text']],
        'what' => (string) $view['what'],
        'price' => (string) $invoice['price'],
        'currency' => (string) $invoice['currency'],
        'bitpay_id' => (string) $invoice['bitpay_invoice_id'],
        'server' => isset($invoice['server']) ? (string) $invoice['server'] : 'BitPay',
        'back' => $back,
        'refresh' => !empty($view['refresh']),
    ]);
};
