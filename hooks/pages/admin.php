<?php
/**
 * /bitpay/admin: Config → Integrations → Bitpay. Pairing with BitPay (dashboard pairing
 * code, or a code requested here for the merchant to approve), unpairing, the pairing
 * status, invoice counts, the last webhook and the oldest unsettled invoice with its
 * journal; a look-up of any BitPay invoice, order id or document number. Splynx
 * administrators only. The binary never prints secrets; tokens are not shown at all.
 *
 * Splynx opens the page with the administrator's session hash (`sash`); every pairing
 * change passes it to the binary, which asks Splynx who that is and refuses roles not in
 * admin.pairing_roles (and pending codes are not shown to them). Replacing an active token
 * asks for a confirmation first.
 */

namespace SplynxBitpay;

return static function (string $route): void {
    $admin = Caller::adminId();
    if ($admin === null) {
        Http::toLogin('admin');
        return;
    }
    $sash = Http::method() === 'POST' ? Http::post('sash') : Http::query('sash');
    $self = URL_PREFIX . '/admin' . ($sash === '' ? '' : '?sash=' . rawurlencode($sash));
    $flashKey = 'splynx_bitpay_admin_flash';
    // Always given for changes: without a sash the binary refuses them.
    $who = ['--sash', $sash, '--session-admin', (string) $admin];
    $confirm = static function (string $heading, string $text, string $do, array $fields, string $button, string $class) use ($self, $sash): void {
        $token = Csrf::token();
        session_write_close();
        View::page('admin-confirm', ['title' => $heading, 'csrf' => $token, 'action' => $self, 'sash' => $sash,
            'heading' => $heading, 'text' => $text, 'do' => $do, 'fields' => $fields, 'button' => $button, 'button_class' => $class]);
    };

    if (Http::method() === 'POST') {
        if (!Csrf::valid()) {
            $_SESSION[$flashKey] = ['danger', 'The form has expired; nothing was changed. Please try again.'];
            session_write_close();
            Http::redirect($self);
            return;
        }
        $action = Http::post('action');
        $flash = null;
        $confirmed = Http::post('confirm') === 'yes';
        if ($action === 'unpair' && !$confirmed) {
            $confirm('Unpair from BitPay', 'This forgets the BitPay tokens of this server. Customers cannot pay with BitPay until you pair again. Invoices already created keep being settled.', 'unpair', [], 'Yes, unpair', 'confirm-unpair');
            return;
        }
        $code = Http::post('pairing_code');
        if ($action === 'pair' && !$confirmed && preg_match('/^[A-Za-z0-9]{7}$/', $code)) {
            $current = Binary::run(array_merge(['status'], $who));
            if ($current->ok() && !empty($current->json['paired'])) {
                $confirm('Replace the BitPay pairing', 'This server is paired (' . implode(', ', $current->json['paired']) . ' token active). Pairing with a new code replaces it: from then on customers pay the BitPay account that code belongs to. Only continue if that is your own BitPay account.', 'pair', ['pairing_code' => $code], 'Yes, replace it', 'confirm-replace');
                return;
            }
        }
        session_write_close();
        if ($action === 'pair') {
            if (!preg_match('/^[A-Za-z0-9]{7}$/', $code)) {
                $flash = ['danger', 'A pairing code is 7 letters or digits, like u7m0VSR.'];
            } else {
                $result = Binary::run(array_merge(['pair', $code], $confirmed ? ['--replace'] : [], $who));
                // Success shows in the pairing banner itself: said once.
                $flash = $result->ok() ? null : ['danger', 'Pairing failed: ' . $result->message()];
            }
        } elseif ($action === 'request') {
            $facade = Http::post('facade') === 'pos' ? 'pos' : 'merchant';
            $result = Binary::run(array_merge(['pair', '--request', '--facade', $facade], $who));
            $flash = $result->ok()
                ? ['success', 'Pairing code ' . (string) $result->json['pairing_code'] . ' requested. Approve it in your BitPay dashboard (link below); the status here shows when it is active.']
                : ['danger', 'Could not request a pairing code: ' . $result->message()];
        } elseif ($action === 'resolve') {
            $id = Http::post('bitpay_invoice_id');
            $note = Http::post('note');
            if (!preg_match('/^[A-Za-z0-9]{1,64}$/', $id)) {
                $flash = ['danger', 'Unknown payment.'];
            } else {
                $result = Binary::run(array_merge(['resolve', $id], $note !== '' ? ['--note', substr($note, 0, 500)] : [], $who));
                $flash = $result->ok()
                    ? ['success', 'Invoice ' . $id . ' is marked resolved.']
                    : ['danger', 'Could not mark it resolved: ' . $result->message()];
            }
        } elseif ($action === 'connect_btcpay') {
            // BTCPay's authorize page posts the key back to /btcpay-connected with a
            // one-time state; the binary checked this administrator's role before issuing it.
            $settings = Binary::run(['settings']);
            $base = $settings->ok() && isset($settings->json['splynx_url']) ? rtrim((string) $settings->json['splynx_url'], '/') : '';
            $result = Binary::run(array_merge(['pair', '--btcpay', '--authorize-redirect', $base . URL_PREFIX . '/btcpay-connected'], $who));
            if ($result->ok() && isset($result->json['authorize_url'])) {
                Http::redirect((string) $result->json['authorize_url']);
                return;
            }
            $flash = ['danger', 'Could not start connecting to BTCPay Server: ' . $result->message()];
        } elseif ($action === 'unpair') {
            $result = Binary::run(array_merge(['unpair'], $who));
            if (!$result->ok()) {
                $flash = ['danger', 'Unpairing failed: ' . $result->message()];
            } elseif (isset($result->json['secrets_forgotten'])) {
                $flash = ['success', 'Disconnected from BTCPay Server' . (!empty($result->json['webhook_deleted']) ? ' and its webhook deleted' : '') . (!empty($result->json['key_revoked']) ? '; the API key is revoked.' : '. Revoke the API key in BTCPay too (Account → API Keys).')];
            } else {
                $flash = ['success', 'BitPay data has been successfully reset: ' . (int) $result->json['tokens_removed'] . ' token(s) forgotten. Revoke them in the BitPay dashboard too.'];
            }
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

    // Without a sash the page gets the read-only view (no pending pairing codes).
    $status = Binary::run(array_merge(['status', '--from-page'], $sash === '' ? [] : $who));
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
            $lookupError = 'Enter an invoice id (BitPay or BTCPay Server), an order id or a Splynx document number.';
        } else {
            $shown = Binary::run(['show', $lookup]);
            if ($shown->ok()) {
                $found = $shown->json;
            } else {
                $lookupError = $shown->message();
            }
        }
    }
    $effective = Binary::run(['config']);
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
        'sash' => $sash,
        'config_path' => Binary::configPath(),
        'effective' => $effective->ok() ? $effective->json : null,
        'effective_error' => $effective->ok() ? null : $effective->message(),
    ]);
};
