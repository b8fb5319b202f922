<?php
/**
 * Plain-PHP checks of the add-on under hooks/ (no PHPUnit): lint, PHP 7.4 compatibility,
 * the library (runner, settings, escaping, session identity), the registration
 * definitions and the install step. Run: php tests/php/run.php (tests/browser/run.sh does).
 */

error_reporting(E_ALL);
ini_set('display_errors', '1');

$repo = dirname(__DIR__, 2);
$hooks = $repo . '/hooks';
require $hooks . '/lib/bitpay.php';

use SplynxBitpay\Binary;
use SplynxBitpay\Caller;
use SplynxBitpay\Ipn;
use SplynxBitpay\Result;
use SplynxBitpay\Settings;
use SplynxBitpay\View;

$passed = 0;
$failed = 0;

function check(string $name, callable $test): void
{
    global $passed, $failed;
    try {
        $test();
        $passed++;
        echo "ok - $name\n";
    } catch (Throwable $e) {
        $failed++;
        echo "not ok - $name\n    " . str_replace("\n", "\n    ", $e->getMessage()) . "\n";
    }
}

function same($expected, $actual, string $what = ''): void
{
    if ($expected !== $actual) {
        throw new RuntimeException(($what !== '' ? "$what: " : '') . 'expected ' . var_export($expected, true) . ', got ' . var_export($actual, true));
    }
}

function truthy($value, string $what): void
{
    if (!$value) {
        throw new RuntimeException($what);
    }
}

/** @return string[] every PHP file shipped under hooks/ */
function php_files(string $dir): array
{
    $files = [];
    $it = new RecursiveIteratorIterator(new RecursiveDirectoryIterator($dir, FilesystemIterator::SKIP_DOTS));
    foreach ($it as $file) {
        $path = $file->getPathname();
        if (substr($path, -4) === '.php') {
            $files[] = $path;
        }
    }
    $files[] = $dir . '/install';
    $files[] = $dir . '/yii';
    sort($files);
    return $files;
}

function run_cmd(array $command): array
{
    $process = proc_open($command, [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
    $out = stream_get_contents($pipes[1]);
    $err = stream_get_contents($pipes[2]);
    fclose($pipes[1]);
    fclose($pipes[2]);
    return [proc_close($process), $out, $err];
}

$tmp = sys_get_temp_dir() . '/splynx-bitpay-php-' . getmypid();
@mkdir($tmp, 0700, true);
register_shutdown_function(static function () use ($tmp): void {
    exec('rm -rf ' . escapeshellarg($tmp));
});
// What the shims log for the failures these checks provoke goes to a file, not to the
// test output (where it would read like a failure); the checks read it.
$errorLog = $tmp . '/error.log';
ini_set('error_log', $errorLog);

// ---- lint and PHP 7.4 compatibility -------------------------------------------------

check('php -l is clean on every shipped PHP file', static function () use ($hooks): void {
    foreach (php_files($hooks) as $file) {
        list($code, $out, $err) = run_cmd([PHP_BINARY, '-l', $file]);
        same(0, $code, "php -l $file: $out$err");
    }
});

check('no PHP 8-only syntax or functions (PHP 7.4 must run it)', static function () use ($hooks): void {
    $forbiddenTokens = [];
    foreach (['T_MATCH', 'T_NULLSAFE_OBJECT_OPERATOR', 'T_ENUM', 'T_READONLY', 'T_ATTRIBUTE'] as $name) {
        if (defined($name)) {
            $forbiddenTokens[constant($name)] = $name;
        }
    }
    $forbiddenFunctions = ['str_contains', 'str_starts_with', 'str_ends_with', 'array_is_list', 'get_debug_type', 'fdiv', 'get_resource_id', 'enum_exists'];
    $forbiddenTypes = ['mixed', 'never', 'static', 'null', 'false', 'true'];
    $problems = [];
    foreach (php_files($hooks) as $file) {
        $tokens = array_values(array_filter(token_get_all(file_get_contents($file)), static function ($t) {
            return !is_array($t) || !in_array($t[0], [T_WHITESPACE, T_COMMENT, T_DOC_COMMENT], true);
        }));
        $text = static function ($t) {
            return is_array($t) ? $t[1] : $t;
        };
        $where = static function ($i) use ($tokens, $file) {
            for (; $i >= 0; $i--) {
                if (is_array($tokens[$i])) {
                    return basename($file) . ':' . $tokens[$i][2];
                }
            }
            return basename($file);
        };
        $count = count($tokens);
        for ($i = 0; $i < $count; $i++) {
            $t = $tokens[$i];
            if (is_array($t) && isset($forbiddenTokens[$t[0]])) {
                $problems[] = $where($i) . ' uses ' . $forbiddenTokens[$t[0]];
            }
            if (is_array($t) && $t[0] === T_STRING && in_array(strtolower($t[1]), $forbiddenFunctions, true)
                && $i + 1 < $count && $tokens[$i + 1] === '(') {
                $problems[] = $where($i) . ' calls ' . $t[1] . '()';
            }
            // Named arguments: `(name:` or `, name:` (not `::`).
            if (($t === '(' || $t === ',') && $i + 2 < $count && is_array($tokens[$i + 1])
                && $tokens[$i + 1][0] === T_STRING && $tokens[$i + 2] === ':') {
                $problems[] = $where($i) . ' uses a named argument ' . $tokens[$i + 1][1] . ':';
            }
            // catch (Exception) without a variable.
            if (is_array($t) && $t[0] === T_CATCH) {
                $j = $i + 2;
                $hasVariable = false;
                for (; $j < $count && $tokens[$j] !== ')'; $j++) {
                    $hasVariable = $hasVariable || (is_array($tokens[$j]) && $tokens[$j][0] === T_VARIABLE);
                }
                if (!$hasVariable) {
                    $problems[] = $where($i) . ' catches without a variable';
                }
            }
            if (is_array($t) && $t[0] === T_FUNCTION) {
                // The parameter list: no union types, no promoted constructor parameters.
                $j = $i + 1;
                while ($j < $count && $tokens[$j] !== '(') {
                    $j++;
                }
                $depth = 0;
                for (; $j < $count; $j++) {
                    if ($tokens[$j] === '(') {
                        $depth++;
                    } elseif ($tokens[$j] === ')') {
                        $depth--;
                        if ($depth === 0) {
                            break;
                        }
                    } elseif ($depth === 1 && $tokens[$j] === ',' && isset($tokens[$j + 1]) && $tokens[$j + 1] === ')') {
                        $problems[] = $where($j) . ' has a trailing comma in a parameter list';
                    } elseif ($depth === 1 && $tokens[$j] === '|') {
                        $problems[] = $where($j) . ' uses a union type';
                    } elseif ($depth === 1 && is_array($tokens[$j]) && in_array($tokens[$j][0], [T_PUBLIC, T_PROTECTED, T_PRIVATE], true)) {
                        $problems[] = $where($j) . ' promotes a constructor parameter';
                    }
                }
                // Return type: not one of PHP 8's.
                if ($j + 2 < $count && $tokens[$j + 1] === ':') {
                    $k = $j + 2;
                    if ($tokens[$k] === '?') {
                        $k++;
                    }
                    if (in_array(strtolower($text($tokens[$k])), $forbiddenTypes, true)) {
                        $problems[] = $where($k) . ' returns ' . $text($tokens[$k]);
                    }
                    if (isset($tokens[$k + 1]) && $tokens[$k + 1] === '|') {
                        $problems[] = $where($k) . ' returns a union type';
                    }
                }
            }
        }
    }
    same([], $problems, 'PHP 7.4 incompatibilities');
});

check('nothing test-only ships: no login or session bypass under hooks/', static function () use ($hooks): void {
    foreach (php_files($hooks) as $file) {
        $code = file_get_contents($file);
        foreach (['$_SESSION[\'splynx_customer_id\'] =', '$_SESSION["splynx_customer_id"] =', '$_SESSION[\'splynx_admin_id\'] =', '$_GET[\'customer', '$_REQUEST'] as $needle) {
            truthy(strpos($code, $needle) === false, "$file contains $needle");
        }
    }
});

// ---- the library ----------------------------------------------------------------------

check('Result: the binary\'s message without its prefix; customers see it only for bad input', static function (): void {
    $bad = new Result(65, '', "splynx-bitpay: error: Invoice #202401000002 is already paid\n");
    same('Invoice #202401000002 is already paid', $bad->message());
    same('Invoice #202401000002 is already paid', $bad->customerMessage());
    $down = new Result(75, '', "warning: something\nsplynx-bitpay: error: Splynx API answered HTTP 503\n");
    same('Splynx API answered HTTP 503', $down->message());
    same(SplynxBitpay\unavailable(), $down->customerMessage());
    $ok = new Result(0, '{"url":"https://x"}', '');
    truthy($ok->ok(), 'exit 0 with a JSON object is ok');
    truthy(!(new Result(0, 'not json', ''))->ok(), 'exit 0 without JSON is not ok');
});

check('Http::route: only the exact spelling of a path is a route (#20 item 7)', static function (): void {
    $route = static function (string $uri): string {
        $_SERVER['REQUEST_URI'] = $uri;
        return SplynxBitpay\Http::route();
    };
    same('', $route('/bitpay/'));
    same('', $route('/bitpay'));
    same('', $route('/bitpay/?x=1'));
    same('/ipn', $route('/bitpay/ipn'));
    same('/direct-pay-invoice', $route('/bitpay/direct-pay-invoice?item_id=7'));
    foreach (['/bitpay/ipn/', '//bitpay/ipn', '/bitpay//ipn', '/bitpay/%69pn', '/bitpay%2Fipn',
              '/bitpay/IPN', '/bitpay/direct-pay-invoice-by-id/', '/bitpay/./ipn'] as $odd) {
        truthy(!array_key_exists($route($odd), SplynxBitpay\App::ROUTES), "$odd is no route");
    }
    unset($_SERVER['REQUEST_URI']);
});

check('View: escaping and money', static function (): void {
    same('&lt;a href=&quot;x&quot;&gt;&amp;&#039;', View::e('<a href="x">&\''));
    same('5,000.00', View::money('5000.00'));
    same('51.61', View::money('51.61'));
    same('1,234,567.50', View::money('1234567.50'));
    same('0.01', View::money('0.01'));
    same('12,500', View::money('12500'));
    same('-1,000.000', View::money('-1000.000'));
    same('abc', View::money('abc'));
});

check('Caller: only positive integer ids count', static function (): void {
    same(42, Caller::validId('42'));
    same(42, Caller::validId(42));
    foreach (['0', '-1', '4a', '', ' 42', '99999999999999999999', 0, -3, null, [], 4.2] as $bad) {
        same(null, Caller::validId($bad), var_export($bad, true));
    }
});

check('Caller: the add-on base identity when installed, nothing when it is not', static function () use ($tmp): void {
    same([false, null], Caller::fromAddonBase($tmp . '/no-such-base', 'customer'));
    // A stand-in for splynx-addon-base-2: Yii with a `customer` user component.
    $base = $tmp . '/splynx-addon-base-2';
    mkdir($base . '/vendor/yiisoft/yii2', 0700, true);
    file_put_contents($base . '/vendor/yiisoft/yii2/Yii.php', '<?php class Yii { public static $app; }');
    file_put_contents($base . '/vendor/autoload.php', <<<'PHP'
<?php
namespace splynx\base;
class FakeUser { public $id; function __construct($id) { $this->id = $id; } function getId() { return $this->id; } }
class FakeErrorHandler { public $unregistered = false; function unregister() { $this->unregistered = true; } }
class WebApplication {
    public $components;
    function __construct($dir, $config) { \Yii::$app = $this; $this->components = ['customer' => new FakeUser('42'), 'admin' => new FakeUser(null), 'errorHandler' => new FakeErrorHandler()]; }
    function has($name) { return isset($this->components[$name]); }
    function get($name, $throw = true) { return isset($this->components[$name]) ? $this->components[$name] : null; }
    function getErrorHandler() { return $this->components['errorHandler']; }
}
PHP
    );
    same([true, 42], Caller::fromAddonBase($base, 'customer'));
    same([true, null], Caller::fromAddonBase($base, 'admin'), 'no admin logged in');
    same([false, null], Caller::fromAddonBase($base, 'nobody'));
    truthy(\Yii::$app->getErrorHandler()->unregistered, "the base's error handler is unregistered");
    \Yii::$app = null;
});

// A stand-in binary: prints its arguments and stdin as JSON, or misbehaves on request.
$fake = $tmp . '/fake-splynx-bitpay';
file_put_contents($fake, <<<'SH'
#!/bin/sh
for last; do :; done
case "$last" in
  sleep) exec sleep 5 ;;
  refuse) echo "splynx-bitpay: error: Invoice #1 is already paid" >&2; exit 65 ;;
esac
exec php -r 'echo json_encode(["args" => array_slice($argv, 1), "stdin_len" => strlen(stream_get_contents(STDIN)), "stdin_md5" => md5(file_get_contents("php://stdin") . "")]);' -- "$@"
SH
);
chmod($fake, 0755);

check('Binary::run passes an argument vector, no shell, with stdin', static function () use ($fake, $tmp): void {
    putenv('SPLYNX_BITPAY_BIN=' . $fake);
    putenv('SPLYNX_BITPAY_CONFIG=' . $tmp . '/config with space.toml');
    $evil = '$(touch ' . $tmp . '/pwned); `id` "quoted" \'single\' ; | &';
    $result = Binary::run(['create-invoice', '--customer', '42', '--refill', $evil], 'hello');
    same(0, $result->code, $result->stderr);
    same(['--config', $tmp . '/config with space.toml', '--json', 'create-invoice', '--customer', '42', '--refill', $evil], $result->json['args']);
    same(5, $result->json['stdin_len']);
    truthy(!file_exists($tmp . '/pwned'), 'no shell ran the argument');
});

check('Binary::run streams a large stdin without deadlock', static function (): void {
    $big = str_repeat('{"x":"' . str_repeat('y', 1000) . '"}', 300);
    $result = Binary::run(['handle-ipn'], $big);
    same(0, $result->code, $result->stderr);
    same(strlen($big), $result->json['stdin_len']);
});

check('Result: the JSON error document and its kind come first', static function (): void {
    $missing = new Result(65, '{"error":"Invoice 9 was not found for your account","exit":65,"kind":"not_found"}', "splynx-bitpay: error: other words\n");
    same('Invoice 9 was not found for your account', $missing->message());
    same('not_found', $missing->kind());
    truthy(!$missing->ok(), 'an error document is not a result');
    $old = new Result(65, '', "splynx-bitpay: error: Invoice #1 is already paid\n");
    same('Invoice #1 is already paid', $old->message());
    same('', $old->kind());
    same('', (new Result(0, '{"kind":"x"}', ''))->kind());
});

check('Settings come from `splynx-bitpay settings`, never from reading the config', static function () use ($fake): void {
    putenv('SPLYNX_BITPAY_BIN=' . $fake);
    // A customer nobody asked about yet (the cache may hold the plain call already).
    $all = Settings::all(99);
    same(['settings', '--customer', '99'], array_slice($all['args'], -3));
    $hooks = dirname(__DIR__, 2) . '/hooks';
    foreach (['lib/bitpay.php', 'pages/admin.php', 'pages/refill.php', 'pages/result.php', 'pages/pay-document.php'] as $file) {
        $code = file_get_contents($hooks . '/' . $file);
        truthy(strpos($code, 'config.toml') === false || $file === 'lib/bitpay.php', "$file reads no config file");
        truthy(strpos($code, 'file_get_contents(Binary::configPath())') === false, "$file reads no config file");
        truthy(strpos($code, "'was not found'") === false, "$file scrapes no message text");
    }
});

check('Binary::run reports exit codes and messages, and logs the failure', static function () use ($errorLog): void {
    $result = Binary::run(['create-invoice', 'refuse']);
    same(65, $result->code);
    same('Invoice #1 is already paid', $result->message());
    truthy(strpos((string) @file_get_contents($errorLog), 'create-invoice exited with 65: Invoice #1 is already paid') !== false, 'logged for the admin');
});

check('Binary::run gives up after the timeout with the retry code', static function (): void {
    $start = microtime(true);
    $result = Binary::run(['status', 'sleep'], '', 1);
    truthy(microtime(true) - $start < 4, 'returned soon after the timeout');
    same(75, $result->code);
    truthy($result->timedOut, 'marked as timed out');
});

check('Binary::run without the binary is a failure, not a crash', static function () use ($tmp): void {
    putenv('SPLYNX_BITPAY_BIN=' . $tmp . '/missing');
    $result = Binary::run(['status']);
    same(1, $result->code);
    truthy(strpos($result->message(), 'not found') !== false, $result->message());
    putenv('SPLYNX_BITPAY_BIN');
    putenv('SPLYNX_BITPAY_CONFIG');
    same('/usr/bin/splynx-bitpay', Binary::path());
    same('/etc/splynx-bitpay/config.toml', Binary::configPath());
});

// ---- registration ---------------------------------------------------------------------

check('module definition: names, entry points, Twig widgets', static function () use ($hooks): void {
    $module = require $hooks . '/config/module.php';
    same('Splynx BitPay add-on', $module['title']);
    same('splynx_bitpay_addon', $module['module']);
    truthy(strlen($module['module']) <= 32 && strlen($module['title']) <= 64, 'Splynx length limits');
    $names = array_column($module['entry_points'], 'name');
    same(count($names), count(array_unique($names)), 'unique entry point names');
    $byName = array_column($module['entry_points'], null, 'name');
    same('/bitpay/pay-invoice', $byName['bitpay_pay_invoice_point']['url']);
    same('Invoices', $byName['bitpay_pay_invoice_point']['model']);
    same('/bitpay/pay-request', $byName['bitpay_pay_request_point']['url']);
    same('Requests', $byName['bitpay_pay_request_point']['model']);
    foreach ($module['entry_points'] as $point) {
        if ($point['type'] === 'code') {
            $twig = file_get_contents($point['code_file']);
            foreach (['if', 'for'] as $tag) {
                same(preg_match_all('/\{%-?\s*' . $tag . '\s/', $twig), preg_match_all('/\{%-?\s*end' . $tag . '\s/', $twig), basename($point['code_file']) . " $tag/end$tag");
            }
        }
    }
    $dashboard = file_get_contents($byName['bitpay_pay_on_dashboard']['code_file']);
    truthy(strpos($dashboard, 'Pay your invoices by <strong>BitPay</strong>') !== false, 'dashboard title');
    truthy(strpos($dashboard, 'module=splynx_bitpay_addon&name=bitpay_pay_invoice_point') !== false, 'dashboard opens the invoice entry point');
    truthy(strpos($dashboard, 'name=bitpay_pay_request_point') !== false, 'dashboard opens the proforma entry point');
    $addMoney = file_get_contents($byName['bitpay_add_money_on_dashboard']['code_file']);
    truthy(strpos($addMoney, 'action="/bitpay/" method="get"') !== false, 'the add-money widget only pre-fills the refill page');
});

check('registration data uses only the field names and values Splynx documents', static function () use ($hooks): void {
    // Entry point attributes, types, places and sizes (reference §3.3), API permission
    // shape (§3.2), the Modules-list form (§3.4).
    $module = require $hooks . '/config/module.php';
    $attributes = ['name', 'module', 'place', 'type', 'size', 'title', 'root', 'model', 'icon', 'background', 'url', 'code', 'code_file', 'partners', 'location', 'enabled'];
    foreach ($module['entry_points'] as $point) {
        same([], array_values(array_diff(array_keys($point), $attributes)), $point['name'] . ' attributes');
        truthy(in_array($point['place'], ['portal', 'admin'], true), $point['name'] . ' place');
        truthy(in_array($point['type'], ['menu_link', 'code', 'action_link', 'tab'], true), $point['name'] . ' type');
        if (isset($point['size'])) {
            truthy(in_array($point['size'], ['extra_small', 'small', 'medium', 'large', 'extra_large'], true), $point['name'] . ' size');
        }
        if (isset($point['icon'])) {
            same('fa-bitcoin', $point['icon'], $point['name'] . ' icon');
        }
        truthy(preg_match('/^[a-z0-9_]+$/', $point['name']) === 1, $point['name'] . ' name');
    }
    $byName = array_column($module['entry_points'], null, 'name');
    same('controllers\admin\ConfigController', $byName['bitpay_admin_config']['root'], 'admin page under Config');
    same('Bitpay', $byName['bitpay_admin_config']['title'], 'Config → Integrations → Bitpay');
    foreach ($module['api_permissions'] as $permission) {
        same(['controller', 'actions'], array_keys($permission));
        truthy(strpos($permission['controller'], 'api\\admin\\') === 0, $permission['controller']);
    }
    $form = json_decode(file_get_contents($hooks . '/config/config.json'), true);
    same($module['module'], $form['path'], 'the form belongs to the module');
    $types = ['string', 'integer', 'decimal', 'boolean', 'select', 'multipleSelect', 'encrypted', 'textarea', 'date', 'datetime'];
    foreach ($form['blocks'] as $block => $definition) {
        truthy(isset($definition['title']) && is_array($definition['items']), $block);
        foreach ($definition['items'] as $key => $item) {
            truthy(isset($item['title']), "$block.$key title");
            truthy(!isset($item['type']) || in_array($item['type'], $types, true), "$block.$key type");
            truthy(($item['type'] ?? '') !== 'select' || is_array($item['values']), "$block.$key values");
        }
    }
    same(['common_settings', 'per_partner_options'], array_keys($form['blocks']));
});

check('InstallController hands the definitions to the add-on base', static function () use ($hooks): void {
    eval('namespace splynx\base; class BaseInstallController {}');
    require $hooks . '/commands/InstallController.php';
    $controller = new app\commands\InstallController();
    same('Splynx BitPay add-on', $controller->getAddOnTitle());
    same('splynx_bitpay_addon', $controller->getModuleName());
    truthy(count($controller->getApiPermissions()) >= 4, 'API permissions');
    $points = $controller->getEntryPoints();
    foreach ($points as $point) {
        truthy(!isset($point['code_file']), 'code_file is resolved into code');
        if ($point['type'] === 'code') {
            truthy(strpos($point['code'], '{%') !== false, $point['name'] . ' carries its Twig code');
        }
    }
});

check('install without the add-on base prints the manual steps and links web/', static function () use ($hooks, $tmp): void {
    mkdir($tmp . '/splynx-web');
    list($code, $out, $err) = run_cmd([PHP_BINARY, $hooks . '/install', '--base', $tmp . '/none', '--splynx-web', $tmp . '/splynx-web']);
    same(0, $code, $err);
    truthy(strpos($out, 'is not installed') !== false, $out);
    truthy(strpos($out, 'splynx_bitpay_addon') !== false && strpos($out, '/bitpay/pay-invoice') !== false, $out);
    same($hooks . '/web', readlink($tmp . '/splynx-web/bitpay'));
    list($code, $out) = run_cmd([PHP_BINARY, $hooks . '/install', '--base', $tmp . '/none', '--splynx-web', $tmp . '/splynx-web']);
    same(0, $code, 'a second run is fine');
});

check('IPN shim: malformed requests are refused without starting the binary', static function (): void {
    same(405, Ipn::refusal('GET', ''));
    same(405, Ipn::refusal('PUT', '{"id":"x"}'));
    same(400, Ipn::refusal('POST', ''));
    same(400, Ipn::refusal('POST', "  \n"));
    same(400, Ipn::refusal('POST', 'id=abc&status=paid'));
    same(400, Ipn::refusal('POST', '[1,2]'));
    same(400, Ipn::refusal('POST', '{' . str_repeat('x', \SplynxBitpay\IPN_MAX_BYTES)));
    same(null, Ipn::refusal('POST', '{"id":"abc"}'));
    same(null, Ipn::refusal('POST', "\n {\"event\":{}}"));
    same(null, Ipn::refusal('POST', '{' . str_repeat('x', \SplynxBitpay\IPN_MAX_BYTES - 1)));
});

check('nginx: the webhook URL is rate-limited in the zone the package defines', static function () use ($hooks): void {
    $site = file_get_contents($hooks . '/nginx/splynx-bitpay.addons');
    $zone = file_get_contents($hooks . '/nginx/splynx-bitpay-ratelimit.conf');
    truthy(preg_match('#location = /bitpay/ipn \{[^}]*limit_req zone=splynx_bitpay_ipn #s', $site) === 1, $site);
    truthy(preg_match('#^limit_req_zone \$binary_remote_addr zone=splynx_bitpay_ipn:1m rate=5r/s;#m', $zone) === 1, $zone);
});

check('nginx: the direct pay links are rate-limited in their own zone', static function () use ($hooks): void {
    $site = file_get_contents($hooks . '/nginx/splynx-bitpay.addons');
    $zone = file_get_contents($hooks . '/nginx/splynx-bitpay-ratelimit.conf');
    truthy(preg_match('#location ~ \^/bitpay/direct-pay-\[a-z-\]\+\$ \{[^}]*limit_req zone=splynx_bitpay_direct #s', $site) === 1, $site);
    truthy(preg_match('#^limit_req_zone \$binary_remote_addr zone=splynx_bitpay_direct:1m rate=1r/s;#m', $zone) === 1, $zone);
    foreach (['invoice', 'invoice-by-id', 'proforma', 'proforma-by-id', 'request', 'request-by-id'] as $name) {
        truthy(preg_match('#^/bitpay/direct-pay-[a-z-]+$#', '/bitpay/direct-pay-' . $name) === 1, $name);
        same('direct-pay', \SplynxBitpay\App::ROUTES['/direct-pay-' . $name], $name);
    }
});

check('nginx snippet routes /bitpay to the front controller', static function () use ($hooks): void {
    $snippet = file_get_contents($hooks . '/nginx/splynx-bitpay.addons');
    truthy(preg_match('#location /bitpay \{\s*try_files \$uri \$uri/ /bitpay/index\.php\?\$args;\s*\}#', $snippet) === 1, $snippet);
});

echo "\nphp: $passed passed, $failed failed\n";
exit($failed === 0 ? 0 : 1);
