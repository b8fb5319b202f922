<?php
/**
 * /bitpay/admin: Config → Integrations → Bitpay. Pairing with BitPay (dashboard pairing
 * code, or a code requested here for the merchant to approve), unpairing, the pairing
 * status, invoice counts, the last webhook and the oldest unsettled invoice with its
 * journal; a look-up of any BitPay invoice, order id or document number. Splynx
 * administrators only. The binary never prints secrets; tokens are not shown at all.
 */

namespace SplynxBitpay;

return static function (string $route): void {
    $admin = Caller::adminId();
    if ($admin === null) {
        Http::toLogin('admin');
        return;
    }
    $self = URL_PREFIX . '/admin';
    $flashKey = 'splynx_bitpay_admin_flash';

    if (Http::method() === 'POST') {
        if (!Csrf::valid()) {
            $_SESSION[$flashKey] = ['danger', 'The form has expired; nothing was changed. Please try again.'];
            session_write_close();
            Http::redirect($self);
            return;
        }
        $action = Http::post('action');
        $flash = null;
        if ($action === 'unpair' && Http::post('confirm') !== 'yes') {
            $token = Csrf::token();
            session_write_close();
            View::page('admin-unpair', ['title' => 'Unpair from BitPay', 'csrf' => $token, 'action' => $self]);
            return;
        }
        session_write_close();
        if ($action === 'pair') {
            $code = Http::post('pairing_code');
            if (!preg_match('/^[A-Za-z0-9]{7}$/', $code)) {
                $flash = ['danger', 'A pairing code is 7 letters or digits, like u7m0VSR.'];
            } else {
                $result = Binary::run(['pair', $code]);
                $flash = $result->ok()
                    ? ['success', 'Paired with BitPay: the ' . (string) $result->json['facade'] . ' token is ' . (!empty($result->json['approved']) ? 'active' : 'waiting for approval') . '. Customers can pay now.']
                    : ['danger', 'Pairing failed: ' . $result->message()];
            }
        } elseif ($action === 'request') {
            $facade = Http::post('facade') === 'pos' ? 'pos' : 'merchant';
            $result = Binary::run(['pair', '--request', '--facade', $facade]);
            $flash = $result->ok()
                ? ['success', 'Pairing code ' . (string) $result->json['pairing_code'] . ' requested. Approve it in your BitPay dashboard (link below); the status here shows when it is active.']
                : ['danger', 'Could not request a pairing code: ' . $result->message()];
        } elseif ($action === 'unpair') {
            $result = Binary::run(['unpair']);
            $flash = $result->ok()
                ? ['success', 'BitPay data has been successfully reset: ' . (int) $result->json['tokens_removed'] . ' token(s) forgotten. Revoke them in the BitPay dashboard too.']
                : ['danger', 'Unpairing failed: ' . $result->message()];
        } else {
            $flash = ['danger', 'Unknown action.'];
        }
        Caller::startSession();
        $_SESSION[$flashKey] = $flash;
        session_write_close();
        Http::redirect($self);
        return;
    }

    $flash = isset($_SESSION[$flashKey]) && is_array($_SESSION[$flashKey]) ? $_SESSION[$flashKey] : null;
    unset($_SESSION[$flashKey]);
    $token = Csrf::token();
    session_write_close();

    $status = Binary::run(['status']);
    $oldest = null;
    if ($status->ok() && !empty($status->json['oldest_unsettled']['bitpay_invoice_id'])) {
        $shown = Binary::run(['show', (string) $status->json['oldest_unsettled']['bitpay_invoice_id']]);
        if ($shown->ok() && !empty($shown->json['invoices'])) {
            $oldest = $shown->json['invoices'][0];
        }
    }
    $lookup = Http::query('show');
    $found = null;
    $lookupError = null;
    if ($lookup !== '') {
        if (!preg_match('/^[\x21-\x7e]{1,100}$/', $lookup)) {
            $lookupError = 'Enter a BitPay invoice id, an order id or a Splynx document number.';
        } else {
            $shown = Binary::run(['show', $lookup]);
            if ($shown->ok()) {
                $found = $shown->json;
            } else {
                $lookupError = $shown->message();
            }
        }
    }
    View::page('admin', [
        'title' => 'Bitpay',
        'flash' => $flash,
        'status' => $status->ok() ? $status->json : null,
        'status_error' => $status->ok() ? null : $status->message(),
        'oldest' => $oldest,
        'lookup' => $lookup,
        'found' => $found,
        'lookup_error' => $lookupError,
        'csrf' => $token,
        'action' => $self,
        'config_path' => Binary::configPath(),
        'splynx_url' => Settings::get('splynx', 'url', ''),
        'currency' => Settings::currency(),
        'refill' => Settings::refillBounds(),
    ]);
};
