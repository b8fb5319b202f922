<?php
/**
 * /bitpay/btcpay-connected: where BTCPay Server's authorize page sends the administrator
 * back, with an auto-submitted form POST (`apiKey`, `permissions[]`) and our one-time
 * `state` in the address. The state is the proof: the binary issued it to an administrator
 * with a pairing role minutes ago and accepts it once, then checks the key with BTCPay
 * (store, permissions) and registers the webhook. The key goes to the binary on stdin.
 */

namespace SplynxBitpay;

return static function (string $route): void {
    header('Cache-Control: no-store');
    $back = '/admin/config/integrations/';
    if (Http::method() !== 'POST') {
        View::message('Connect to BTCPay Server', 'Start connecting from the add-on\'s page (Config → Integrations → Bitpay).', 'warning', 405, false, $back);
        return;
    }
    $state = Http::query('state');
    $key = Http::post('apiKey');
    if (!preg_match('/^[0-9a-f]{32}$/', $state) || !preg_match('/^[\x21-\x7e]{1,200}$/', $key)) {
        View::message('Connect to BTCPay Server', 'This connection attempt is not valid. Start it again from the add-on\'s page (Config → Integrations → Bitpay).', 'danger', 400, false, $back);
        return;
    }
    $result = Binary::run(['pair', '--btcpay', '--state', $state], $key);
    if ($result->ok()) {
        View::message('Connected to BTCPay Server', 'The add-on is connected to store ' . (string) $result->json['store_id'] . ' and its webhook is registered: customers can pay.', 'success', 200, false, $back);
        return;
    }
    View::message('Connecting to BTCPay Server failed', $result->message(), 'danger', $result->code === EXIT_BAD_INPUT ? 400 : 500, false, $back);
};
