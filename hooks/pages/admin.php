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
 * asks for a confirmation first. Refunds (admin.refund_roles, checked by the binary) and
 * their cancellation are confirmed first too, with the amount prefilled. It is the
 * operator's desk as well: held records resolved where they are listed (confirmed, and
 * journaled with who and why), the last audit with a button that audits last month
 * (the refund roles, checked by the binary), and the add-on's health in words, with
 * doctor's checks on request.
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
    // $inputs: fields the administrator may still change on the confirmation (name => [label, value, maxlength]).
    $confirm = static function (string $heading, string $text, string $do, array $fields, string $button, string $class, array $inputs = []) use ($self, $sash): void {
        $token = Csrf::token();
        session_write_close();
        View::page('admin-confirm', ['title' => $heading, 'csrf' => $token, 'action' => $self, 'sash' => $sash,
            'heading' => $heading, 'text' => $text, 'do' => $do, 'fields' => $fields, 'inputs' => $inputs, 'button' => $button, 'button_class' => $class]);
    };
    $validId = static function (string $id): bool {
        return preg_match('/^[A-Za-z0-9]{1,64}$/', $id) === 1;
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
        $refundId = Http::post('bitpay_invoice_id');
        if ($action === 'refund' && !$confirmed && $validId($refundId)) {
            // What happens, said before anything is sent; the amount prefilled with what is left.
            $status = Binary::run(array_merge(['status', '--from-page'], $who));
            $left = $status->ok() && isset($status->json['refundable'][$refundId]) ? (string) $status->json['refundable'][$refundId] : '';
            $btcpay = $status->ok() && (string) $status->json['environment'] === 'btcpay';
            $how = $btcpay
                ? 'BTCPay Server makes a pull payment of this amount and gives you its claim link: hand it to the customer, who enters their own address; approve and pay the payout in BTCPay.'
                : 'BitPay e-mails the customer to ask for a refund address, then pays it out.';
            $confirm('Refund invoice ' . $refundId, $how . ' Once the money has left, the refund is booked in Splynx as a negative payment of the customer (the document stays paid; the balance goes down). The request is sent once and cannot be repeated by accident.', 'refund', ['bitpay_invoice_id' => $refundId], 'Yes, refund', 'confirm-refund',
                ['amount' => ['Amount (at most ' . ($left === '' ? 'what is left' : $left) . ')', $left, 20], 'reason' => ['Reason (the customer\'s Splynx payment carries it)', '', 200]]);
            return;
        }
        if ($action === 'refund_record' && !$confirmed && $validId($refundId)) {
            $confirm('Record the dashboard refund of invoice ' . $refundId, 'This records in Splynx the refunds the payment server lists for invoice ' . $refundId . ' that were made in its own dashboard, not here. Each is booked as a negative payment of the customer once the server says it was paid out (at once if it was). Check them in the dashboard first; nothing is sent to the server.', 'refund_record', ['bitpay_invoice_id' => $refundId], 'Yes, record it', 'confirm-record');
            return;
        }
        $heldId = Http::post('bitpay_invoice_id');
        if ($action === 'resolve' && !$confirmed && $validId($heldId)) {
            $confirm('Mark invoice ' . $heldId . ' resolved', 'This closes the held record: the add-on stops reporting it and never acts on it again by itself. Nothing changes in Splynx or at the payment server: do what is needed there first (Finance → Payments). The journal keeps who resolved it and your note.', 'resolve', ['bitpay_invoice_id' => $heldId], 'Yes, mark it resolved', 'confirm-resolve',
                ['note' => ['What you did in Splynx (kept in the journal)', substr(Http::post('note'), 0, 500), 500]]);
            return;
        }
        $cancelId = Http::post('refund_id');
        if ($action === 'refund_cancel' && !$confirmed && $validId($cancelId)) {
            $confirm('Cancel refund ' . $cancelId, 'This asks the payment server to cancel the refund before it is paid out. Nothing is booked in Splynx for a cancelled refund.', 'refund_cancel', ['refund_id' => $cancelId], 'Yes, cancel the refund', 'confirm-cancel-refund');
            return;
        }
        session_write_close();
        if ($action === 'refund') {
            $amount = Http::post('amount');
            $reason = Http::post('reason');
            if (!$validId($refundId) || !preg_match('/^[0-9]{1,12}(\.[0-9]{1,8})?$/', $amount)) {
                $flash = ['danger', 'Enter the amount to refund as a number, like 12.50; nothing was sent.'];
            } else {
                $result = Binary::run(array_merge(['refund', $refundId, '--amount', $amount], $reason !== '' ? ['--reason', substr($reason, 0, 200)] : [], $who));
                $flash = $result->ok()
                    ? ['success', 'Refund ' . (string) $result->json['id'] . ' of ' . (string) $result->json['amount'] . ' ' . (string) $result->json['currency'] . ' asked for: ' . (string) $result->json['state_text'] . '.' . (!empty($result->json['claim_link']) ? ' Hand the customer the claim link: ' . (string) $result->json['claim_link'] : '')]
                    // Refunded in the dashboard: offer to record that refund instead.
                    : ['danger', 'Nothing was refunded: ' . $result->message(), strpos($result->message(), '--record') !== false ? $refundId : null];
            }
        } elseif ($action === 'refund_record') {
            if (!$validId($refundId)) {
                $flash = ['danger', 'Unknown payment.'];
            } else {
                $result = Binary::run(array_merge(['refund', $refundId, '--record'], $who));
                $recorded = [];
                foreach ($result->ok() ? (array) $result->json['refunds'] : [] as $r) {
                    $recorded[] = (string) $r['id'] . ' (' . (string) $r['amount'] . ' ' . (string) $r['currency'] . ', ' . (string) $r['state_text'] . ')';
                }
                $flash = $result->ok()
                    ? ['success', 'Recorded the dashboard refund ' . implode(', ', $recorded) . ' of invoice ' . $refundId . '; it is booked in Splynx once paid out.']
                    : ['danger', 'Nothing was recorded: ' . $result->message()];
            }
        } elseif ($action === 'refund_cancel') {
            if (!$validId($cancelId)) {
                $flash = ['danger', 'Unknown refund.'];
            } else {
                $result = Binary::run(array_merge(['refund', '--cancel', $cancelId], $who));
                $flash = $result->ok()
                    ? ['success', 'Refund ' . $cancelId . ' is ' . (string) $result->json['state_text'] . '.']
                    : ['danger', 'The refund was not cancelled: ' . $result->message()];
            }
        } elseif ($action === 'pair') {
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
        } elseif ($action === 'audit') {
            // Last month, recorded for this page and the metrics; it changes nothing else.
            $result = Binary::run(array_merge(['audit', '--record'], $who), '', 600);
            if (($result->code === EXIT_OK || $result->code === 1) && isset($result->json['differences'])) {
                $n = count($result->json['differences']);
                $period = (string) $result->json['from'] . ' to ' . (string) $result->json['to'];
                $flash = $n === 0
                    ? ['success', 'Audit of ' . $period . ': no differences; every payment appears once on both sides.']
                    : ['warning', 'Audit of ' . $period . ': ' . $n . ' difference(s), listed under Books below.'];
            } else {
                $flash = ['danger', 'The audit did not run: ' . $result->message()];
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
    // doctor's checks only when asked for: they reach the payment server and Splynx.
    $checks = null;
    if (Http::query('checks') === '1') {
        $doctor = Binary::run(['doctor'], '', 120);
        $checks = isset($doctor->json['checks']) ? $doctor->json : ['error' => $doctor->message()];
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
        'checks' => $checks,
        'csrf' => $token,
        'action' => $self,
        'sash' => $sash,
        'config_path' => Binary::configPath(),
        'effective' => $effective->ok() ? $effective->json : null,
        'effective_error' => $effective->ok() ? null : $effective->message(),
    ]);
};
