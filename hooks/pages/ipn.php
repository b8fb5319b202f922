<?php
/**
 * /bitpay/ipn: the payment server's webhook. POST only; the raw body (at most 64 KiB) goes
 * to `splynx-bitpay handle-ipn` on stdin with the x-signature header as --signature (BitPay)
 * or the BTCPay-Sig header as --btcpay-sig (BTCPay Server, which does not retry a 4xx), and
 * the exit code becomes the HTTP status BitPay sees (200 done, 400 bad body, 503 retry
 * later, 500 configuration or other failure). No session, no CSRF: the binary verifies
 * the signature and re-fetches the invoice from BitPay before anything is credited.
 * Obviously malformed requests (another method, no body, too big, not a JSON object) are
 * answered here without starting the binary (Ipn::refusal).
 */

namespace SplynxBitpay;

return static function (string $route): void {
    header('Cache-Control: no-store');
    header('X-Content-Type-Options: nosniff');
    $method = Http::method();
    // At most one byte over the limit is read.
    $input = $method === 'POST' ? fopen('php://input', 'rb') : false;
    $body = $input === false ? '' : (string) stream_get_contents($input, IPN_MAX_BYTES + 1);
    $refused = Ipn::refusal($method, $body);
    if ($refused !== null) {
        if ($refused === 405) {
            header('Allow: POST');
        }
        http_response_code($refused);
        return;
    }
    $args = ['handle-ipn'];
    // BitPay signs in x-signature, BTCPay Server in BTCPay-Sig; the binary checks the one
    // its configured server uses.
    $headers = ['HTTP_X_SIGNATURE' => '--signature', 'HTTP_BTCPAY_SIG' => '--btcpay-sig'];
    foreach ($headers as $header => $flag) {
        $value = isset($_SERVER[$header]) ? trim((string) $_SERVER[$header]) : '';
        if ($value !== '') {
            $args[] = $flag;
            $args[] = $value;
        }
    }
    $result = Binary::run($args, $body, 90);
    $statuses = [EXIT_OK => 200, EXIT_BAD_INPUT => 400, EXIT_TEMPORARY => 503, EXIT_CONFIG => 500];
    http_response_code(isset($statuses[$result->code]) ? $statuses[$result->code] : 500);
};
