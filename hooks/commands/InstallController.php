<?php

namespace app\commands;

use splynx\base\BaseInstallController;

/**
 * `./yii install`: registers the add-on with Splynx through splynx-addon-base-2 (module,
 * API key permissions, portal entry points). The definitions live in
 * config/module.php, shared with ../install which prints them when the base is absent.
 */
class InstallController extends BaseInstallController
{
    /** @return array<string, mixed> */
    private static function module()
    {
        return require dirname(__DIR__) . '/config/module.php';
    }

    public function getAddOnTitle()
    {
        return self::module()['title'];
    }

    public function getModuleName()
    {
        return self::module()['module'];
    }

    public function getApiPermissions()
    {
        return self::module()['api_permissions'];
    }

    public function getEntryPoints()
    {
        $points = [];
        foreach (self::module()['entry_points'] as $point) {
            if (isset($point['code_file'])) {
                $point['code'] = file_get_contents($point['code_file']);
                unset($point['code_file']);
            }
            $points[] = $point;
        }
        return $points;
    }
}
