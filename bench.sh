#!/usr/bin/env bash
# Benchmarks (release build) against the loopback sandboxes; see BENCHMARKS.md.
#   ./bench.sh          full run (about two minutes)
#   ./bench.sh --quick  small sizes
#   ./bench.sh --statements [ROUNDS]  per process and storm, payment statements off vs on
#   ./bench.sh --btcpay-reconcile     only BTCPay's 10,000-invoice reconcile
#   ./bench.sh --audit [N [MS]]       an audit of a year of N paid invoices
set -euo pipefail
cd "$(dirname "$0")"
cargo build --quiet --release --bin splynx-bitpay --example bench --example floor
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
exec "$target_dir/release/examples/bench" "$@"
