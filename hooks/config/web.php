<?php
/**
 * Web config for splynx-addon-base-2, used only to resolve who is calling (lib/bitpay.php
 * Caller): the Splynx customer and admin user components read Splynx's own session.
 */

return function ($params, $baseDir) {
    return [
        'components' => [
            'request' => [
                'baseUrl' => '/bitpay',
                'enableCookieValidation' => false,
            ],
            'customer' => [
                'class' => 'yii\web\User',
                'identityClass' => 'splynx\v2\models\customer\BaseCustomer',
                'idParam' => 'splynx_customer_id',
                'loginUrl' => '/portal/login/?return=%2Fbitpay%2F',
                'enableAutoLogin' => false,
            ],
            'admin' => [
                'class' => 'yii\web\User',
                'identityClass' => 'splynx\v2\models\administration\BaseAdministrator',
                'idParam' => 'splynx_admin_id',
                'loginUrl' => '/admin/login/?return=%2Fbitpay%2Fadmin',
                'enableAutoLogin' => false,
            ],
        ],
    ];
};
