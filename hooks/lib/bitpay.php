<?php
/**
 * splynx-bitpay: the small library every page of the add-on uses.
 *
 * It finds the `splynx-bitpay` binary and its config, runs it with an argument vector
 * (proc_open with an array: no shell, no quoting), resolves who is calling from the
 * Splynx session, protects forms with a CSRF token and renders escaped HTML.
 *
 * PHP 7.4 and 8.x, no Composer dependencies.
 */

namespace SplynxBitpay;

define('SPLYNX_BITPAY_ADDON_DIR', dirname(__DIR__));

/** Where Splynx serves the add-on (nginx `location /bitpay`). */
const URL_PREFIX = '/bitpay';
/** The Splynx payment add-on base (Yii2); its user components know the session. */
const ADDON_BASE_DIR = '/var/www/splynx/addons/splynx-addon-base-2';
const DEFAULT_BINARY = '/usr/bin/splynx-bitpay';
const DEFAULT_CONFIG = '/etc/splynx-bitpay/config.toml';
/** BitPay webhooks are small; the binary refuses more than this too. */
const IPN_MAX_BYTES = 65536;

/** Exit codes of the binary (contract). */
const EXIT_OK = 0;
const EXIT_BAD_INPUT = 65;
const EXIT_TEMPORARY = 75;
const EXIT_CONFIG = 78;

/** Shown to customers whenever the reason is not theirs to fix. */
/** The apology customers read when a payment cannot start; it names the payment server. */
function unavailable(): string
{
    return 'Payments by ' . Settings::server() . ' are temporarily unavailable. Please try again later.';
}

final class Log
{
    public static function error(string $message): void
    {
        error_log('splynx-bitpay: ' . str_replace(["\r", "\n"], ' ', $message));
    }
}

/** A server setting: the environment first (tests, php-fpm `env[]`), then fastcgi params. */
function server_setting(string $name): ?string
{
    $value = getenv($name);
    if ($value === false || $value === '') {
        $value = isset($_SERVER[$name]) && is_string($_SERVER[$name]) ? $_SERVER[$name] : '';
    }
    return $value === '' ? null : $value;
}

/** What one run of the binary produced. */
final class Result
{
    /** @var int */
    public $code;
    /** @var string */
    public $stdout;
    /** @var string */
    public $stderr;
    /** @var bool */
    public $timedOut;
    /** @var array|null the decoded stdout, when it was a JSON object */
    public $json;

    public function __construct(int $code, string $stdout, string $stderr, bool $timedOut = false)
    {
        $this->code = $code;
        $this->stdout = $stdout;
        $this->stderr = $stderr;
        $this->timedOut = $timedOut;
        $decoded = json_decode($stdout, true);
        $this->json = is_array($decoded) ? $decoded : null;
    }

    public function ok(): bool
    {
        return $this->code === EXIT_OK && $this->json !== null;
    }

    /**
     * The binary's one-line reason: the `error` of its JSON error document (`--json`),
     * else its stderr line without the `splynx-bitpay: error: ` prefix.
     */
    public function message(): string
    {
        if ($this->code !== EXIT_OK && isset($this->json['error']) && is_string($this->json['error'])) {
            return $this->json['error'];
        }
        $lines = preg_split('/\r?\n/', trim($this->stderr));
        $last = '';
        foreach ($lines as $line) {
            $line = trim($line);
            if ($line === '') {
                continue;
            }
            if (strpos($line, 'splynx-bitpay: error: ') === 0) {
                return substr($line, strlen('splynx-bitpay: error: '));
            }
            $last = $line;
        }
        if ($this->timedOut) {
            return 'timed out';
        }
        return $last !== '' ? $last : 'exit code ' . $this->code;
    }

    /** The binary's kind of failure: not_found, bad_input, temporary, config, failure, or ''. */
    public function kind(): string
    {
        return $this->code !== EXIT_OK && isset($this->json['kind']) && is_string($this->json['kind']) ? $this->json['kind'] : '';
    }

    /**
     * What a customer may read: the binary's message for bad input (it is written for
     * them: "Invoice #N is already paid"), a generic apology for everything else.
     */
    public function customerMessage(): string
    {
        return $this->code === EXIT_BAD_INPUT ? $this->message() : unavailable();
    }
}

final class Binary
{
    public static function path(): string
    {
        $path = server_setting('SPLYNX_BITPAY_BIN');
        return $path !== null ? $path : DEFAULT_BINARY;
    }

    public static function configPath(): string
    {
        $path = server_setting('SPLYNX_BITPAY_CONFIG');
        return $path !== null ? $path : DEFAULT_CONFIG;
    }

    /**
     * Runs `splynx-bitpay --config PATH --json ARGS...` with `$stdin`, waits at most
     * `$timeout` seconds. Never throws: a missing binary or a timeout is a Result too
     * (code 1, or 75 for a timeout: retry later). Failures are logged with details.
     *
     * @param string[] $args
     */
    public static function run(array $args, string $stdin = '', int $timeout = 60): Result
    {
        $binary = self::path();
        $command = array_merge([$binary, '--config', self::configPath(), '--json'], array_map('strval', $args));
        $label = implode(' ', array_slice($args, 0, 1));
        if (!is_file($binary) || !is_executable($binary)) {
            $result = new Result(1, '', "splynx-bitpay: error: the splynx-bitpay binary was not found at $binary");
            Log::error("cannot run $label: " . $result->message());
            return $result;
        }
        if (function_exists('set_time_limit')) {
            @set_time_limit($timeout + 15);
        }
        $pipes = [];
        $process = @proc_open($command, [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
        if (!is_resource($process)) {
            $result = new Result(1, '', 'splynx-bitpay: error: proc_open failed');
            Log::error("cannot run $label: proc_open failed");
            return $result;
        }
        foreach ($pipes as $pipe) {
            stream_set_blocking($pipe, false);
        }
        $out = '';
        $err = '';
        $written = 0;
        $deadline = microtime(true) + $timeout;
        $open = [1 => $pipes[1], 2 => $pipes[2]];
        $stdinOpen = true;
        if ($stdin === '') {
            fclose($pipes[0]);
            $stdinOpen = false;
        }
        $timedOut = false;
        while ($open || $stdinOpen) {
            $left = $deadline - microtime(true);
            if ($left <= 0) {
                $timedOut = true;
                break;
            }
            $read = array_values($open);
            $write = $stdinOpen ? [$pipes[0]] : [];
            $except = null;
            $seconds = (int) floor($left);
            $micro = (int) (($left - $seconds) * 1000000);
            $ready = @stream_select($read, $write, $except, $seconds, $micro);
            if ($ready === false) {
                break;
            }
            if ($stdinOpen && $write) {
                $chunk = @fwrite($pipes[0], substr($stdin, $written, 8192));
                if ($chunk === false || $chunk === 0 && feof($pipes[0])) {
                    fclose($pipes[0]);
                    $stdinOpen = false;
                } else {
                    $written += $chunk;
                    if ($written >= strlen($stdin)) {
                        fclose($pipes[0]);
                        $stdinOpen = false;
                    }
                }
            }
            foreach ($read as $stream) {
                $data = fread($stream, 65536);
                $index = $stream === $pipes[1] ? 1 : 2;
                if ($data !== false && $data !== '') {
                    if ($index === 1) {
                        $out .= $data;
                    } else {
                        $err .= $data;
                    }
                } elseif (feof($stream)) {
                    fclose($stream);
                    unset($open[$index]);
                }
            }
        }
        if ($timedOut) {
            if ($stdinOpen) {
                fclose($pipes[0]);
            }
            foreach ($open as $stream) {
                fclose($stream);
            }
            proc_terminate($process, 15);
            $until = microtime(true) + 2;
            while (microtime(true) < $until) {
                $status = proc_get_status($process);
                if (!$status['running']) {
                    break;
                }
                usleep(20000);
            }
            $status = proc_get_status($process);
            if ($status['running']) {
                proc_terminate($process, 9);
            }
            proc_close($process);
            $result = new Result(EXIT_TEMPORARY, $out, $err, true);
            Log::error("$label timed out after {$timeout}s");
            return $result;
        }
        foreach ($open as $stream) {
            fclose($stream);
        }
        if ($stdinOpen) {
            fclose($pipes[0]);
        }
        $code = proc_close($process);
        $result = new Result($code, $out, $err);
        if ($code !== EXIT_OK) {
            Log::error("$label exited with $code: " . $result->message());
        } elseif ($result->json === null) {
            Log::error("$label printed no JSON object");
        }
        return $result;
    }
}

/**
 * What the pages show and check against (currency and its decimals, refill bounds, the
 * Splynx URL), as `splynx-bitpay settings` reports it: the binary reads and validates the
 * config (and the Modules-list settings); PHP never parses it. Portal pages pass their
 * customer: a partner's customers see their partner's currency and bounds.
 */
final class Settings
{
    /** @var array<string, array<string, mixed>> by customer id ('' for none) */
    private static $cache = [];

    /** @return array<string, mixed> the settings, or [] when the binary cannot say */
    public static function all(?int $customer = null): array
    {
        $key = (string) $customer;
        if (!isset(self::$cache[$key])) {
            $args = $customer === null ? ['settings'] : ['settings', '--customer', (string) $customer];
            $result = Binary::run($args);
            if (!$result->ok()) {
                Log::error('splynx-bitpay settings failed: ' . $result->message());
            }
            self::$cache[$key] = $result->ok() ? $result->json : [];
        }
        return self::$cache[$key];
    }

    /** Who takes the payments, for people: "BitPay" or "BTCPay Server". */
    public static function server(): string
    {
        // The same for every partner: any answer already read will do.
        foreach (self::$cache ?: [self::all()] as $all) {
            if (isset($all['server']) && is_string($all['server'])) {
                return $all['server'];
            }
        }
        return 'BitPay';
    }

    public static function currency(?int $customer = null): string
    {
        $all = self::all($customer);
        return isset($all['currency']) ? (string) $all['currency'] : '';
    }

    /** @return string[] [min, max] as decimal text ('' when unknown) */
    public static function refillBounds(?int $customer = null): array
    {
        $all = self::all($customer);
        return [
            isset($all['refill']['min']) ? (string) $all['refill']['min'] : '',
            isset($all['refill']['max']) ? (string) $all['refill']['max'] : '',
        ];
    }

    /** The refill page's sentence on whether the amount entered includes the service fee. */
    public static function refillFeeNote(?int $customer = null): string
    {
        $all = self::all($customer);
        return isset($all['refill']['fee_note']) ? (string) $all['refill']['fee_note'] : '';
    }

    /** The input step for amounts: "1" for currencies without decimals, "0.01" for two. */
    public static function amountStep(?int $customer = null): string
    {
        $all = self::all($customer);
        $decimals = isset($all['currency_decimals']) ? (int) $all['currency_decimals'] : 2;
        return $decimals === 0 ? '1' : '0.' . str_repeat('0', $decimals - 1) . '1';
    }
}

/**
 * Who is calling. Portal pages: the customer logged in to the Splynx portal; admin
 * pages: the Splynx administrator. Never from a request parameter.
 *
 * With the Splynx add-on base installed, its Yii user components (`customer`, `admin`,
 * idParam `splynx_customer_id` / `splynx_admin_id`) resolve the identity, so session
 * storage and naming stay exactly Splynx's. Without it, Splynx's PHP session (same
 * php-fpm pool, same session settings) is read directly.
 */
final class Caller
{
    const CUSTOMER_PARAM = 'splynx_customer_id';
    const ADMIN_PARAM = 'splynx_admin_id';

    /** @var bool|null */
    private static $baseTried = null;

    public static function customerId(): ?int
    {
        return self::identity('customer', self::CUSTOMER_PARAM);
    }

    public static function adminId(): ?int
    {
        return self::identity('admin', self::ADMIN_PARAM);
    }

    /**
     * The logged-in customer's id; with no session, the browser is sent to the portal
     * login (with a return URL) and null comes back: the page just returns.
     */
    public static function customerOrLogin(): ?int
    {
        $customer = self::customerId();
        if ($customer === null) {
            Http::toLogin('portal');
        }
        return $customer;
    }

    private static function identity(string $component, string $param): ?int
    {
        $fromBase = self::fromAddonBase(ADDON_BASE_DIR, $component);
        if ($fromBase[0]) {
            return $fromBase[1];
        }
        self::startSession();
        return isset($_SESSION[$param]) ? self::validId($_SESSION[$param]) : null;
    }

    /** @param mixed $value */
    public static function validId($value): ?int
    {
        if (is_int($value)) {
            return $value > 0 ? $value : null;
        }
        if (is_string($value) && $value !== '' && ctype_digit($value) && strlen($value) < 19) {
            $id = (int) $value;
            return $id > 0 ? $id : null;
        }
        return null;
    }

    /**
     * Joins Splynx's PHP session. The add-on runs in Splynx's php-fpm pool, so PHP's
     * session settings are Splynx's; `SPLYNX_BITPAY_SESSION_NAME` (a php-fpm `env[]` or
     * fastcgi_param) names the cookie if Splynx's differs from the pool's default.
     */
    public static function startSession(): void
    {
        if (session_status() === PHP_SESSION_NONE) {
            if (headers_sent()) {
                return;
            }
            $name = server_setting('SPLYNX_BITPAY_SESSION_NAME');
            if ($name !== null && preg_match('/^[A-Za-z0-9_]{1,64}$/', $name)) {
                session_name($name);
            }
            session_start();
        }
    }

    /**
     * The identity from the add-on base's Yii user component. Returns [true, id|null]
     * when the base answered, [false, null] when it is not installed or failed (then
     * the PHP session is read instead; the failure is logged).
     *
     * @return array{0: bool, 1: int|null}
     */
    public static function fromAddonBase(string $baseDir, string $component): array
    {
        $autoload = $baseDir . '/vendor/autoload.php';
        $yii = $baseDir . '/vendor/yiisoft/yii2/Yii.php';
        if (!is_file($autoload) || !is_file($yii)) {
            return [false, null];
        }
        try {
            if (!class_exists('Yii', false)) {
                require_once $autoload;
                require_once $yii;
            }
            if (!class_exists('splynx\\base\\WebApplication')) {
                return [false, null];
            }
            if (\Yii::$app === null) {
                if (self::$baseTried === false) {
                    return [false, null];
                }
                self::$baseTried = false;
                $config = SPLYNX_BITPAY_ADDON_DIR . '/config/web.php';
                new \splynx\base\WebApplication(SPLYNX_BITPAY_ADDON_DIR, $config);
                // Our pages render their own errors; give PHP's handlers back.
                if (\Yii::$app->has('errorHandler')) {
                    \Yii::$app->getErrorHandler()->unregister();
                }
                self::$baseTried = true;
            }
            $user = \Yii::$app->get($component, false);
            if ($user === null) {
                return [false, null];
            }
            return [true, self::validId($user->getId())];
        } catch (\Throwable $e) {
            Log::error('add-on base could not resolve the ' . $component . ' session: ' . $e->getMessage());
            return [false, null];
        }
    }
}

/** One token per session, checked with hash_equals on every POST. */
final class Csrf
{
    const KEY = 'splynx_bitpay_csrf';
    const FIELD = '_csrf';

    public static function token(): string
    {
        Caller::startSession();
        if (empty($_SESSION[self::KEY]) || !is_string($_SESSION[self::KEY])) {
            $_SESSION[self::KEY] = bin2hex(random_bytes(32));
        }
        return $_SESSION[self::KEY];
    }

    public static function valid(): bool
    {
        Caller::startSession();
        $sent = isset($_POST[self::FIELD]) && is_string($_POST[self::FIELD]) ? $_POST[self::FIELD] : '';
        $expected = isset($_SESSION[self::KEY]) && is_string($_SESSION[self::KEY]) ? $_SESSION[self::KEY] : '';
        return $expected !== '' && $sent !== '' && hash_equals($expected, $sent);
    }

    public static function field(): string
    {
        return '<input type="hidden" name="' . self::FIELD . '" value="' . View::e(self::token()) . '">';
    }
}

/**
 * The webhook requests answered without starting the binary: a stranger's malformed POST
 * costs a few microseconds of PHP, not a process, a database write and a BitPay request.
 */
final class Ipn
{
    /** The HTTP status for a request refused here, or null to hand it to the binary. */
    public static function refusal(string $method, string $body): ?int
    {
        if ($method !== 'POST') {
            return 405;
        }
        if (strlen($body) > IPN_MAX_BYTES) {
            return 400;
        }
        // BitPay posts a JSON object: anything else is not a webhook.
        if (trim($body) === '' || ltrim($body)[0] !== '{') {
            return 400;
        }
        return null;
    }
}

final class Http
{
    public static function method(): string
    {
        return isset($_SERVER['REQUEST_METHOD']) ? strtoupper($_SERVER['REQUEST_METHOD']) : 'GET';
    }

    /**
     * The request path below the add-on prefix: "", "/pay-invoice", "/ipn", ... Only the
     * exact spelling counts: a trailing slash, doubled slashes, percent-encoding or other
     * letter case give a path no route has (404), so no spelling escapes the limits nginx
     * puts on the exact public URLs.
     */
    public static function route(): string
    {
        $uri = isset($_SERVER['REQUEST_URI']) ? (string) $_SERVER['REQUEST_URI'] : '/';
        $query = strpos($uri, '?');
        $path = $query === false ? $uri : substr($uri, 0, $query);
        if ($path === URL_PREFIX || $path === URL_PREFIX . '/' || $path === URL_PREFIX . '/index.php') {
            return '';
        }
        if (strpos($path, URL_PREFIX . '/') !== 0) {
            return '(elsewhere)';
        }
        return substr($path, strlen(URL_PREFIX));
    }

    /** The URL to come back to after logging in: this path and query. */
    public static function currentUrl(): string
    {
        $uri = isset($_SERVER['REQUEST_URI']) ? (string) $_SERVER['REQUEST_URI'] : URL_PREFIX . '/';
        return $uri !== '' && $uri[0] === '/' && (strlen($uri) < 2 || $uri[1] !== '/') ? $uri : URL_PREFIX . '/';
    }

    public static function query(string $name): string
    {
        return isset($_GET[$name]) && is_string($_GET[$name]) ? trim($_GET[$name]) : '';
    }

    public static function post(string $name): string
    {
        return isset($_POST[$name]) && is_string($_POST[$name]) ? trim($_POST[$name]) : '';
    }

    /**
     * `--expect-total` with the total the page showed (its hidden `total` field): the
     * binary then charges exactly that, or refuses with "the amount changed".
     *
     * @return list<string>
     */
    public static function shownTotal(): array
    {
        $total = self::post('total');
        return preg_match('/^[0-9]{1,20}(\.[0-9]{1,8})?$/', $total) === 1 ? ['--expect-total', $total] : [];
    }

    /**
     * True when the browser says this page is the whole tab (`Sec-Fetch-Dest: document`),
     * not the portal's iframe: a modal opened directly, e.g. from a bookmark.
     */
    public static function isTopLevel(): bool
    {
        return isset($_SERVER['HTTP_SEC_FETCH_DEST']) && $_SERVER['HTTP_SEC_FETCH_DEST'] === 'document';
    }

    public static function securityHeaders(): void
    {
        header('X-Content-Type-Options: nosniff');
        header('Referrer-Policy: same-origin');
        header('Cache-Control: no-store');
        // Modals are shown in a Splynx portal iframe: same origin only.
        header('X-Frame-Options: SAMEORIGIN');
        header("Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'self'; base-uri 'none'");
    }

    public static function redirect(string $url, int $status = 303): void
    {
        http_response_code($status);
        header('Location: ' . $url);
    }

    /** Sends a visitor without a session to the Splynx login, to come back here. */
    public static function toLogin(string $place): void
    {
        $login = $place === 'admin' ? '/admin/login/' : '/portal/login/';
        self::redirect($login . '?return=' . rawurlencode(self::currentUrl()), 302);
    }
}

final class View
{
    public static function e($text): string
    {
        return htmlspecialchars((string) $text, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8');
    }

    /**
     * `amount` with thousands separators, e.g. 5000.00 → "5,000.00". The binary already
     * wrote it with the currency's decimals: the fraction is kept as it is.
     */
    public static function money(string $amount): string
    {
        if (!preg_match('/^-?\d+(\.\d+)?$/', $amount)) {
            return $amount;
        }
        $parts = explode('.', $amount, 2);
        $whole = ltrim($parts[0], '-');
        $fraction = isset($parts[1]) ? $parts[1] : '';
        $grouped = strrev(implode(',', str_split(strrev($whole), 3)));
        return ($amount[0] === '-' ? '-' : '') . $grouped . ($fraction !== '' ? '.' . $fraction : '');
    }

    /**
     * Renders views/$template.php with $vars inside views/layout.php.
     *
     * @param array<string, mixed> $vars
     */
    public static function page(string $template, array $vars, int $status = 200): void
    {
        $content = self::partial($template, $vars);
        $vars['content'] = $content;
        if (!isset($vars['title'])) {
            $vars['title'] = 'Splynx BitPay add-on';
        }
        if (!isset($vars['modal'])) {
            $vars['modal'] = false;
        }
        // A modal opened as a whole page gets the page's frame instead of a bare body (so
        // do pages that are only ever whole pages, like the direct pay links).
        $vars['standalone'] = !empty($vars['standalone']) || ($vars['modal'] && Http::isTopLevel());
        if ($vars['standalone']) {
            $vars['modal'] = false;
        }
        http_response_code($status);
        header('Content-Type: text/html; charset=utf-8');
        Http::securityHeaders();
        echo self::partial('layout', $vars);
    }

    /** @param array<string, mixed> $vars */
    public static function partial(string $template, array $vars): string
    {
        $file = SPLYNX_BITPAY_ADDON_DIR . '/views/' . $template . '.php';
        $render = static function (string $__file, array $__vars): void {
            extract($__vars, EXTR_SKIP);
            require $__file;
        };
        ob_start();
        try {
            $render($file, $vars);
        } catch (\Throwable $e) {
            ob_end_clean();
            throw $e;
        }
        return (string) ob_get_clean();
    }

    /** A whole page with one message (errors, refusals). */
    public static function message(string $title, string $text, string $kind = 'danger', int $status = 200, bool $modal = false, ?string $back = null): void
    {
        self::page('message', [
            'title' => $title,
            'heading' => $title,
            'text' => $text,
            'kind' => $kind,
            'modal' => $modal,
            'back' => $back,
        ], $status);
    }
}

/** Entry: dispatches `/bitpay/...` to the page handlers in ../pages/. */
final class App
{
    const ROUTES = [
        '' => 'refill',
        '/pay-invoice' => 'pay-document',
        '/pay-request' => 'pay-document',
        // Direct pay links for e-mails, named as Splynx's other payment add-ons name them.
        '/direct-pay-invoice' => 'direct-pay',
        '/direct-pay-invoice-by-id' => 'direct-pay',
        '/direct-pay-proforma' => 'direct-pay',
        '/direct-pay-proforma-by-id' => 'direct-pay',
        '/direct-pay-request' => 'direct-pay',
        '/direct-pay-request-by-id' => 'direct-pay',
        '/result' => 'result',
        '/ipn' => 'ipn',
        '/admin' => 'admin',
        // BTCPay Server's authorize page posts the new API key here.
        '/btcpay-connected' => 'btcpay-connected',
    ];

    public static function run(): void
    {
        $route = Http::route();
        try {
            if (!array_key_exists($route, self::ROUTES)) {
                View::message('Page not found', 'There is no such page of the payment add-on.', 'warning', 404, false, '/portal/');
                return;
            }
            $page = self::ROUTES[$route];
            $handler = require SPLYNX_BITPAY_ADDON_DIR . '/pages/' . $page . '.php';
            $handler($route);
        } catch (\Throwable $e) {
            Log::error('unexpected error on ' . URL_PREFIX . $route . ': ' . get_class($e) . ': ' . $e->getMessage() . ' at ' . $e->getFile() . ':' . $e->getLine());
            if (!headers_sent()) {
                if ($route === '/ipn') {
                    http_response_code(500);
                    return;
                }
                View::message('Something went wrong', unavailable(), 'danger', 500, false, '/portal/');
            }
        }
    }
}
