<?php
/**
 * Direct pay links for e-mails, named as Splynx's other payment add-ons name them:
 * /bitpay/direct-pay-invoice?item_id=<number>, /bitpay/direct-pay-invoice-by-id?item_id=<id>,
 * and the same for proforma invoices (direct-pay-proforma[-by-id], or direct-pay-request[-by-id]).
 *
 * No portal login: whoever holds the link sees the document's number and amount (and the
 * fee) and a pay button, nothing about the customer. The binary decides everything: the
 * links work only for customers whose partner grants access to unauthorized customers;
 * any other document reads as not found. Paying is a POST (e-mail link scanners only GET);
 * it has no CSRF token because there is no session to bind one to, and it can only create
 * (or hand out again) the one BitPay invoice of an unpaid document. nginx rate-limits
 * these URLs per address (nginx/splynx-bitpay.addons).
 */

namespace SplynxBitpay;

return static function (string $route): void {
    $proforma = strpos($route, '/direct-pay-invoice') !== 0;
    $byId = substr($route, -6) === '-by-id';
    $kind = $proforma
        ? ['heading' => 'Pay proforma invoice', 'total' => 'Proforma invoice total', 'amount' => 'Proforma invoice amount', 'by_number' => '--proforma-number', 'by_id' => '--proforma']
        : ['heading' => 'Pay invoice', 'total' => 'Invoice total', 'amount' => 'Invoice amount', 'by_number' => '--invoice-number', 'by_id' => '--invoice'];
    $show = static function (string $text, string $alert, int $status) use ($kind): void {
        View::page('message', [
            'title' => $kind['heading'],
            'heading' => $kind['heading'],
            'text' => $text,
            'kind' => $alert,
            'modal' => true,
            'standalone' => true,
            'back' => null,
        ], $status);
    };
    $post = Http::method() === 'POST';
    $itemId = $post ? Http::post('item_id') : Http::query('item_id');
    $valid = $byId
        ? ctype_digit($itemId) && strlen($itemId) < 19
        : $itemId !== '' && strlen($itemId) <= 64 && preg_match('/^[\x21-\x7e]+$/', $itemId) === 1;
    if (!$valid) {
        $show('This payment link is incomplete or not valid.', 'warning', 404);
        return;
    }
    $flag = $byId ? $kind['by_id'] : $kind['by_number'];

    if (!$post) {
        $check = Binary::run(['direct-pay', '--check', $flag, $itemId]);
        if (!$check->ok()) {
            $show($check->customerMessage(), $check->code === EXIT_BAD_INPUT ? 'warning' : 'danger', $check->kind() === 'not_found' ? 404 : 200);
            return;
        }
        View::page('pay-document', [
            'title' => $kind['heading'],
            'modal' => true,
            'standalone' => true,
            'kind' => $kind,
            'document' => $check->json,
            'item_id' => $itemId,
            'action' => URL_PREFIX . $route,
            'csrf' => '',
        ]);
        return;
    }

    // The document id the page showed, else the link's own item.
    $documentId = Http::post('document_id');
    $args = $documentId !== '' && ctype_digit($documentId) && strlen($documentId) < 19
        ? ['direct-pay', $kind['by_id'], $documentId]
        : ['direct-pay', $flag, $itemId];
    // Charged exactly the total the page showed, or asked to review it.
    $created = Binary::run(array_merge($args, Http::shownTotal()));
    $url = $created->ok() && isset($created->json['url']) ? (string) $created->json['url'] : '';
    if ($url === '' || !preg_match('#^https?://#i', $url)) {
        if ($created->ok()) {
            Log::error('direct-pay returned no usable checkout URL');
        }
        $show($created->ok() ? unavailable() : $created->customerMessage(), 'warning', 200);
        return;
    }
    Http::redirect($url, 303);
};
