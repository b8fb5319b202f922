#!/usr/bin/env bash
# Browser tests of the PHP add-on (hooks/) against the real splynx-bitpay binary and the
# sandboxes: builds the workspace, starts the BitPay and Splynx fakes, writes a config,
# serves hooks/web with `php -S` (tests/browser/router.php plays nginx and the portal),
# then drives headless Chromium (Debian's /usr/bin/chromium) with playwright-core.
#
# Needs: php-cli (7.4+), chromium, node (18+), npm (for `npm ci` the first time), cargo.
# Screenshots: target/browser-screenshots/. Server logs are printed when a test fails.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
chromium="${CHROMIUM:-/usr/bin/chromium}"

missing=()
command -v php >/dev/null || missing+=("php (apt-get install php-cli)")
[ -x "$chromium" ] || missing+=("chromium at $chromium (apt-get install chromium)")
command -v node >/dev/null || missing+=("node (apt-get install nodejs)")
command -v cargo >/dev/null || missing+=("cargo")
if [ ${#missing[@]} -gt 0 ]; then
    printf 'tests/browser: missing %s\n' "${missing[@]}" >&2
    exit 1
fi
if [ ! -d "$here/node_modules/playwright-core" ]; then
    command -v npm >/dev/null || { echo "tests/browser: node_modules missing and npm not found (apt-get install npm)" >&2; exit 1; }
    echo "== npm ci (tests/browser)"
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "== cargo build --workspace --bins"
(cd "$repo" && cargo build --quiet --workspace --bins)
target_dir="$(cd "$repo" && cargo metadata --format-version 1 --no-deps | php -r 'echo json_decode(stream_get_contents(STDIN), true)["target_directory"];')"
bin="$target_dir/debug/splynx-bitpay"
sandbox="$target_dir/debug/splynx-bitpay-sandbox"

echo "== PHP checks (tests/php)"
php "$repo/tests/php/run.php"

work="$(mktemp -d "${TMPDIR:-/tmp}/splynx-bitpay-browser.XXXXXX")"
pids=()
cleanup() {
    local status=$?
    for pid in "${pids[@]}"; do
        # php -S with PHP_CLI_SERVER_WORKERS forks its workers: end them, then it.
        pkill -TERM -P "$pid" 2>/dev/null || true
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    if [ $status -ne 0 ]; then
        for log in "$work"/*.log; do
            [ -s "$log" ] || continue
            echo "---- $(basename "$log") (last 60 lines)"
            tail -n 60 "$log"
        done
    fi
    rm -rf "$work"
    exit $status
}
trap cleanup EXIT INT TERM

"$sandbox" </dev/null >"$work/sandbox.json" 2>"$work/sandbox.log" &
pids+=($!)
for _ in $(seq 1 100); do
    [ -s "$work/sandbox.json" ] && break
    sleep 0.1
done
[ -s "$work/sandbox.json" ] || { echo "tests/browser: the sandbox did not start" >&2; exit 1; }
field() { php -r '$j = json_decode(file_get_contents($argv[1]), true); echo $j[$argv[2]];' "$work/sandbox.json" "$1"; }
bitpay_url="$(field bitpay_url)"
splynx_url="$(field splynx_url)"

port="$(php -r '$s = stream_socket_server("tcp://127.0.0.1:0"); $n = stream_socket_get_name($s, false); echo substr($n, strrpos($n, ":") + 1);')"
base="http://127.0.0.1:$port"

mkdir -p "$work/data" "$work/sessions" "$work/web"
ln -s "$repo/hooks/web" "$work/web/bitpay"
cat >"$work/config.toml" <<EOF
[splynx]
url = "$base"
api_url = "$splynx_url/api/2.0/"
api_key = "$(field api_key)"
api_secret = "$(field api_secret)"
payment_method_id = 7

[bitpay]
environment = "test"
api_url = "$bitpay_url"
currency = "USD"
notification_url = "$base/bitpay/ipn"
redirect_url = "$base/bitpay/result"

[refill]
min = "1.00"
max = "5000.00"

[storage]
data_dir = "$work/data"
EOF

PHP_CLI_SERVER_WORKERS=4 \
SPLYNX_BITPAY_BIN="$bin" SPLYNX_BITPAY_CONFIG="$work/config.toml" SPLYNX_SANDBOX_URL="$splynx_url" \
    php -d session.save_path="$work/sessions" -d display_errors=0 -d log_errors=1 \
    -S "127.0.0.1:$port" -t "$work/web" "$here/router.php" >"$work/php.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
    php -r 'exit(@fsockopen("127.0.0.1", (int) $argv[1]) ? 0 : 1);' "$port" && break
    sleep 0.1
done

mkdir -p "$repo/target/browser-screenshots"
echo "== node --test (portal $base, BitPay $bitpay_url, Splynx $splynx_url)"
BASE_URL="$base" BITPAY_URL="$bitpay_url" SPLYNX_URL="$splynx_url" CHROMIUM="$chromium" \
SPLYNX_BITPAY_BIN="$bin" SPLYNX_BITPAY_CONFIG="$work/config.toml" \
SCREENSHOT_DIR="$repo/target/browser-screenshots" PHP_LOG="$work/php.log" \
    node --test --test-concurrency=1 "$here"/*.test.mjs
