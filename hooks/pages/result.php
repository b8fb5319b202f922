<?php
/**
 * /bitpay/result?order=...: where BitPay sends the customer back. Shows the stored state
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
    $shown = Binary::run(['show', $order]);
    if (!$shown->ok()) {
        if ($shown->code === EXIT_BAD_INPUT) {
            $notFound();
        } else {
            View::message('Payment status', UNAVAILABLE, 'danger', 503, false, '/portal/finance/invoices');
        }
        return;
    }
    $invoice = null;
    foreach (isset($shown->json['invoices']) ? $shown->json['invoices'] : [] as $candidate) {
        if (isset($candidate['order_id'], $candidate['customer_id']) && $candidate['order_id'] === $order
            && (int) $candidate['customer_id'] === $customer) {
            $invoice = $candidate;
        }
    }
    if ($invoice === null) {
        $notFound();
        return;
    }
    $settlement = (string) $invoice['settlement'];
    $bitpay = (string) $invoice['bitpay_status'];
    if ($settlement === 'credited') {
        $state = ['Paid', 'success', 'Thank you! Your payment was received and credited to your account.'];
    } elseif ($settlement === 'review') {
        $state = ['Under review', 'warning', 'BitPay reported a problem with this payment (for example a partial payment). Your provider will review it; BitPay refunds amounts that are not credited.'];
    } elseif (in_array($bitpay, ['paid', 'confirmed', 'complete'], true) || $settlement === 'crediting') {
        $state = ['Waiting for confirmations', 'info', 'Your payment was received by BitPay and is waiting for confirmations on the blockchain. It will be credited automatically; you can close this page.'];
    } elseif ($settlement === 'expired' || in_array($bitpay, ['expired', 'invalid', 'declined'], true)) {
        $state = ['Not paid / expired', 'danger', 'This BitPay invoice was not paid in time and has expired. You can start a new payment from your portal.'];
    } else {
        $state = ['Not paid yet', 'warning', 'BitPay has not reported a payment for this invoice yet. If you have just paid, this page updates by itself in a few seconds.'];
    }
    $document = (string) $invoice['document'];
    $backs = [
        'invoice' => ['/portal/finance/invoices', 'Back to your invoices'],
        'proforma' => ['/portal/finance/requests', 'Back to your proforma invoices'],
        'refill' => ['/portal/finance/payments', 'Back to your payments'],
    ];
    $back = isset($backs[$document]) ? $backs[$document] : $backs['invoice'];
    if ($document === 'refill') {
        $what = 'Balance top-up';
    } else {
        $what = ($document === 'proforma' ? 'Proforma invoice #' : 'Invoice #') . (string) $invoice['document_number'];
    }
    View::page('result', [
        'title' => $state[0],
        'state' => $state,
        'what' => $what,
        'price' => (string) $invoice['price'],
        'currency' => (string) $invoice['currency'],
        'bitpay_id' => (string) $invoice['bitpay_invoice_id'],
        'back' => $back,
        'refresh' => in_array($state[0], ['Waiting for confirmations', 'Not paid yet'], true),
    ]);
};
