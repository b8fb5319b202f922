# Sourced by tests/browser/run.sh and ./demo.sh --browser (never shipped). Expects `repo`,
# `here` (tests/browser), `bin` and `sandbox` (built binaries). Starts the BitPay and Splynx
# sandboxes, writes a config, serves hooks/web with `php -S` (router.php plays nginx and the
# Splynx portal) and sets `work`, `base`, `bitpay_url`, `splynx_url`; the EXIT trap stops
# everything and prints the logs when the caller failed (not when stopped by Ctrl-C).
work="$(mktemp -d "${TMPDIR:-/tmp}/splynx-bitpay-browser.XXXXXX")"
pids=()
stopped=0
cleanup() {
    local status=$?
    for pid in "${pids[@]}"; do
        # php -S with PHP_CLI_SERVER_WORKERS forks its workers: end them, then it.
        pkill -TERM -P "$pid" 2>/dev/null || true
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    if [ $stopped -eq 1 ]; then
        echo "Stopped: the sandboxes and the PHP server are gone, $work removed." >&2
    elif [ $status -ne 0 ]; then
        for log in "$work"/*.log; do
            [ -s "$log" ] || continue
            echo "---- $(basename "$log") (last 60 lines)"
            tail -n 60 "$log"
        done
    fi
    rm -rf "$work"
    exit $status
}
trap cleanup EXIT
trap 'stopped=1; exit 130' INT TERM

"$sandbox" </dev/null >"$work/sandbox.json" 2>"$work/sandbox.log" &
pids+=($!)
for _ in $(seq 1 100); do
    [ -s "$work/sandbox.json" ] && break
    sleep 0.1
done
[ -s "$work/sandbox.json" ] || { echo "tests/browser: the sandbox did not start" >&2; exit 1; }
field() { php -r '$j = json_decode(file_get_contents($argv[1]), true); echo $j[$argv[2]];' "$work/sandbox.json" "$1"; }
bitpay_url="$(field bitpay_url)"
btcpay_url="$(field btcpay_url)"
btcpay_store="$(field btcpay_store)"
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

[addon]
dir = "$work/addon"
EOF
# The Modules list as Splynx writes it: the main block empty (the file above decides),
# partner 2 (a reseller) bills in EUR with its own top-up limit.
mkdir -p "$work/addon/config"
cat >"$work/addon/config/config.ini.php" <<'EOF'
; <?php exit(); ?>
; Splynx Add-On config file
[common]
currency = ""
[default_partners_settings]
currency = ""
[1]
[2]
currency = "EUR"
refill_max = "250.00"
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

