#!/usr/bin/env bash
# The product's main job end to end against the loopback sandboxes (see README):
#   ./demo.sh            pair, a customer's invoice becomes a BitPay checkout, the customer
#                        pays, BitPay's webhook arrives (twice), exactly one Splynx payment
#   ./demo.sh --server btcpay
#                        the same story with BTCPay Server: connect with a store API key,
#                        BTCPay delivers its webhooks itself (over HTTP, one of them twice)
#   ./demo.sh --browser  instead serve the add-on's pages, a stand-in Splynx and the BitPay
#                        sandbox's dashboard on loopback, and print the URLs to walk the user
#                        guide in a browser: pair as the admin, pay as a customer (Ctrl-C
#                        stops it; needs php-cli)
set -euo pipefail
cd "$(dirname "$0")"
browser=0
server=bitpay
case "${1:-}" in
    "") ;;
    --browser) browser=1 ;;
    --server)
        case "${2:-}" in
            bitpay|btcpay) server="$2" ;;
            *) echo "usage: ./demo.sh [--server bitpay|btcpay | --browser]" >&2; exit 2 ;;
        esac ;;
    *) echo "usage: ./demo.sh [--server bitpay|btcpay | --browser]" >&2; exit 2 ;;
esac
echo "demo: building the workspace (the first build takes a few minutes)..." >&2
cargo build --quiet --workspace --bins
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
if [ "$browser" -eq 0 ]; then
    exec "$target_dir/debug/splynx-bitpay-demo" --server "$server"
fi

command -v php >/dev/null || { echo "demo: the browser walk-through needs php (apt-get install php-cli)" >&2; exit 1; }
repo=$(pwd)
here="$repo/tests/browser"
bin="$target_dir/debug/splynx-bitpay"
sandbox="$target_dir/debug/splynx-bitpay-sandbox"
source "$here/serve.sh"
cat <<INFO
== splynx-bitpay in the browser, against the loopback sandboxes (no real money moves)
The add-on is installed but not paired yet, as after "apt install". Walk the user guide:

1. BitPay dashboard, Payment Tools → Manage API Tokens:
     $bitpay_url/dashboard/merchant/api-tokens
   Click "Add New Token" and copy the pairing code.
2. Splynx, Config → Integrations → Bitpay (log in as "admin", any password):
     $base/bitpay/admin
   Enter the code and click Pair. (Or request a code there and approve it in the dashboard.)
3. The customer portal (log in as "ada", any password):
     $base/portal/login/
   Finance → Invoices → the BitPay icon → Checkout Now leads to the sandbox's BitPay
   checkout: choose a coin and confirm. BitPay's webhook reaches /bitpay/ipn (POST only), and
   "Return to splynx" shows the invoice paid. Balance top-up: $base/bitpay/
4. The payments that landed in Splynx:
     $splynx_url/_sandbox/payments

Press Ctrl-C to stop.
INFO
wait
