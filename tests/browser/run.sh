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

# Starts the sandboxes and the portal (php -S); sets work, base, bitpay_url, splynx_url.
source "$here/serve.sh"

mkdir -p "$repo/target/browser-screenshots"
echo "== node --test (portal $base, BitPay $bitpay_url, Splynx $splynx_url)"
BASE_URL="$base" BITPAY_URL="$bitpay_url" SPLYNX_URL="$splynx_url" CHROMIUM="$chromium" \
BTCPAY_URL="$btcpay_url" BTCPAY_STORE="$btcpay_store" \
SPLYNX_BITPAY_BIN="$bin" SPLYNX_BITPAY_CONFIG="$work/config.toml" \
SCREENSHOT_DIR="$repo/target/browser-screenshots" PHP_LOG="$work/php.log" \
    node --test --test-concurrency=1 "$here"/*.test.mjs
