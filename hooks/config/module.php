<?php
/**
 * The add-on as Splynx registers it: title, module name, API permissions and portal
 * entry points, in the shape splynx-addon-base-2's BaseInstallController takes.
 * commands/InstallController.php returns these; ./install prints them as manual steps
 * when the add-on base is not installed.
 */

$views = dirname(__DIR__) . '/views';

return [
    'title' => 'Splynx BitPay add-on',
    'module' => 'splynx_bitpay_addon',
    'url_prefix' => '/bitpay',
    // What `splynx-bitpay` needs from the Splynx API (see examples/config.toml).
    'api_permissions' => [
        ['controller' => 'api\admin\customers\Customer', 'actions' => ['index', 'view']],
        ['controller' => 'api\admin\finance\Invoices', 'actions' => ['index', 'view']],
        ['controller' => 'api\admin\finance\Requests', 'actions' => ['index', 'view']],
        ['controller' => 'api\admin\finance\Payments', 'actions' => ['index', 'add']],
        ['controller' => 'api\admin\finance\PaymentMethods', 'actions' => ['index']],
        // Payment statements: one record per credited payment ([statements] group).
        ['controller' => 'api\admin\finance\BankStatements', 'actions' => ['index', 'add']],
        ['controller' => 'api\admin\finance\BankStatementsRecords', 'actions' => ['index', 'add']],
        // The service fee's debit transaction ([fee] percent).
        ['controller' => 'api\admin\finance\Transactions', 'actions' => ['index', 'add']],
        // The admin page names who paired by the login Splynx has for them.
        ['controller' => 'api\admin\administration\Administrators', 'actions' => ['view']],
    ],
    'entry_points' => [
        // The bitcoin icon in Finance → Invoices "Operations"; opens /bitpay/pay-invoice in the modal.
        [
            'name' => 'bitpay_pay_invoice_point',
            'title' => 'Pay by BitPay',
            'icon' => 'fa-bitcoin',
            'place' => 'portal',
            'type' => 'action_link',
            'model' => 'Invoices',
            'size' => 'small',
            'url' => '/bitpay/pay-invoice',
        ],
        // The same for proforma invoices (Finance → Proforma invoices).
        [
            'name' => 'bitpay_pay_request_point',
            'title' => 'Pay by BitPay',
            'icon' => 'fa-bitcoin',
            'place' => 'portal',
            'type' => 'action_link',
            'model' => 'Requests',
            'size' => 'small',
            'url' => '/bitpay/pay-request',
        ],
        // Dashboard widget "Pay your invoices by BitPay" with a Pay button per unpaid invoice.
        [
            'name' => 'bitpay_pay_on_dashboard',
            'title' => 'Pay your invoices by BitPay',
            'place' => 'portal',
            'type' => 'code',
            'root' => 'controllers\portal\DashboardController',
            'code_file' => $views . '/dashboard.twig',
        ],
        // Dashboard widget "Add money by BitPay" (prepaid customers); off until the admin enables it.
        [
            'name' => 'bitpay_add_money_on_dashboard',
            'title' => 'Add money by BitPay',
            'place' => 'portal',
            'type' => 'code',
            'root' => 'controllers\portal\DashboardController',
            'code_file' => $views . '/add_money_dashboard.twig',
            'enabled' => false,
        ],
        // Config → Integrations → Bitpay: pairing and status (admin page of the add-on).
        [
            'name' => 'bitpay_admin_config',
            'title' => 'Bitpay',
            'icon' => 'fa-bitcoin',
            'place' => 'admin',
            'type' => 'menu_link',
            'root' => 'controllers\admin\ConfigController',
            'url' => '/bitpay/admin',
        ],
    ],
];
