<?php
/**
 * /bitpay/pay-invoice?item_id=... and /bitpay/pay-request?item_id=...: the portal modal
 * ("Pay invoice #N / Invoice total / Checkout Now") for an invoice or a proforma invoice.
 *
 * Splynx opens it in an iframe with `module`, `model` and `item_id`; `item_id` may be the
 * document number or its id (both are tried, number first). "Checkout Now" posts with
 * target="_parent", so the whole portal window goes on to BitPay's checkout.
 */

namespace SplynxBitpay;

/**
 * Describes the document without creating anything (`create-invoice --check`).
 *
 * @param array<string, string> $kind
 */
$checkDocument = static function (int $customer, string $itemId, array $kind): Result {
    $byNumber = Binary::run(['create-invoice', '--check', '--customer', (string) $customer, $kind['by_number'], $itemId]);
    if ($byNumber->code === EXIT_BAD_INPUT && ctype_digit($itemId) && strlen($itemId) < 19) {
        $byId = Binary::run(['create-invoice', '--check', '--customer', (string) $customer, $kind['by_id'], $itemId]);
        // The id names the document when the number did not: its answer (payable, or
        // e.g. "already paid") is the one that counts.
        if ($byId->ok() || $byId->kind() !== 'not_found') {
            return $byId;
        }
    }
    return $byNumber;
};

return static function (string $route) use ($checkDocument): void {
    $kind = $route === '/pay-request'
        ? [
            'heading' => 'Pay proforma invoice',
            'total' => 'Proforma invoice total',
            'amount' => 'Proforma invoice amount',
            'by_number' => '--proforma-number',
            'by_id' => '--proforma',
            'back' => '/portal/finance/requests',
            'back_label' => 'Back to your proforma invoices',
        ]
        : [
            'heading' => 'Pay invoice',
            'total' => 'Invoice total',
            'amount' => 'Invoice amount',
            'by_number' => '--invoice-number',
            'by_id' => '--invoice',
            'back' => '/portal/finance/invoices',
            'back_label' => 'Back to your invoices',
        ];
    $customer = Caller::customerOrLogin();
    if ($customer === null) {
        return;
    }
    $post = Http::method() === 'POST';
    $itemId = $post ? Http::post('item_id') : Http::query('item_id');
    if ($itemId === '' || strlen($itemId) > 64 || !preg_match('/^[\x21-\x7e]+$/', $itemId)) {
        View::message('Nothing to pay', 'This document was not found for your account.', 'warning', 404, !$post, $kind['back']);
        return;
    }

    if (!$post) {
        $token = Csrf::token();
        session_write_close();
        $check = $checkDocument($customer, $itemId, $kind);
        if (!$check->ok()) {
            View::message($kind['heading'], $check->customerMessage(), $check->code === EXIT_BAD_INPUT ? 'warning' : 'danger', 200, true, null);
            return;
        }
        View::page('pay-document', [
            'title' => $kind['heading'],
            'modal' => true,
            'kind' => $kind,
            'document' => $check->json,
            'item_id' => $itemId,
            'action' => URL_PREFIX . $route,
            'csrf' => $token,
        ]);
        return;
    }

    // "Checkout Now": this answer is shown in the parent window (target="_parent").
    if (!Csrf::valid()) {
        session_write_close();
        View::message('Please try again', 'This form has expired or did not come from your portal session. Open the invoice again and click Checkout Now.', 'warning', 403, false, $kind['back']);
        return;
    }
    session_write_close();
    $documentId = Http::post('document_id');
    if ($documentId !== '' && ctype_digit($documentId) && strlen($documentId) < 19) {
        $args = ['create-invoice', '--customer', (string) $customer, $kind['by_id'], $documentId];
    } else {
        $check = $checkDocument($customer, $itemId, $kind);
        if (!$check->ok() || !isset($check->json['document_id'])) {
            View::message($kind['heading'], $check->customerMessage(), 'warning', 200, false, $kind['back']);
            return;
        }
        $args = ['create-invoice', '--customer', (string) $customer, $kind['by_id'], (string) $check->json['document_id']];
    }
    // Charged exactly the total the page showed, or asked to review it.
    $created = Binary::run(array_merge($args, Http::shownTotal()));
    $url = $created->ok() && isset($created->json['url']) ? (string) $created->json['url'] : '';
    if ($url === '' || !preg_match('#^https?://#i', $url)) {
        if ($created->ok()) {
            Log::error('create-invoice returned no usable checkout URL');
        }
        View::message($kind['heading'], $created->ok() ? unavailable() : $created->customerMessage(), 'warning', 200, false, $kind['back']);
        return;
    }
    Http::redirect($url, 303);
};
