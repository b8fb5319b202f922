#!/usr/bin/env bash
# The product's main job end to end against the loopback sandboxes (see README):
#   ./demo.sh            pair, a customer's invoice becomes a BitPay checkout, the customer
#                        pays, BitPay's webhook arrives (twice), exactly one Splynx payment
#   ./demo.sh --browser  then serve the Splynx portal pages locally against the sandboxes
#                        and print the URL to open (Ctrl-C stops it; needs php-cli)
set -euo pipefail
cd "$(dirname "$0")"
browser=0
case "${1:-}" in
    "") ;;
    --browser) browser=1 ;;
    *) echo "usage: ./demo.sh [--browser]" >&2; exit 2 ;;
esac
cargo build --quiet --workspace --bins
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
"$target_dir/debug/splynx-bitpay-demo"
[ "$browser" -eq 1 ] || exit 0

command -v php >/dev/null || { echo "demo: the browser walk-through needs php (apt-get install php-cli)" >&2; exit 1; }
repo=$(pwd)
here="$repo/tests/browser"
bin="$target_dir/debug/splynx-bitpay"
sandbox="$target_dir/debug/splynx-bitpay-sandbox"
source "$here/serve.sh"
code=$(curl -s -X POST "$bitpay_url/_sandbox/pairing-codes" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pairingCode"])')
"$bin" --config "$work/config.toml" pair "$code" >/dev/null
cat <<INFO

== Browser walk-through: the add-on's pages against the sandboxes
Open $base/portal/login/ and log in as "ada" (any password): the dashboard shows
"Pay your invoices by BitPay"; Finance → Invoices has the BitPay icon. Checkout Now leads to
the sandbox's BitPay checkout: choose a coin, confirm, and BitPay's webhook reaches
$base/bitpay/ipn; "Return to splynx" shows the result page ("Paid").
Refill page: $base/bitpay/      Admin page (log in as "admin"): $base/bitpay/admin
Payments in the Splynx sandbox: $splynx_url/_sandbox/payments
Press Ctrl-C to stop.
INFO
wait
