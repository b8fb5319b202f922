#!/usr/bin/env bash
# The product's main job end to end against the loopback sandboxes (see README).
set -euo pipefail
cd "$(dirname "$0")"
cargo build --quiet --workspace --bins
exec "$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/splynx-bitpay-demo" "$@"
