#!/usr/bin/env bash
# The whole test suite (the README's second command):
#   1. cargo test --workspace   unit tests, the real binary against the sandboxes, fault,
#                               secret and bad-input suites, sandbox and xtask tests
#   2. docs                     committed man pages and completions match the CLI
#   3. browser                  the PHP add-on in headless Chromium (tests/browser/run.sh)
#                               and ./demo.sh --browser's URLs and Ctrl-C (tests/demo)
#   4. package                  build, lint, install, doctor, cron, remove, purge the .deb
#                               (tests/package/run.sh; needs root, skip with --no-package)
# Missing system packages (php-cli, chromium, groff, man-db, prometheus for promtool) are installed with apt-get when
# running as root; otherwise the script says what to install.
set -euo pipefail
cd "$(dirname "$0")"

package=1
for arg in "$@"; do
    case "$arg" in
        --no-package) package=0 ;;
        *) echo "usage: ./test.sh [--no-package]" >&2; exit 2 ;;
    esac
done

need=()
command -v php >/dev/null || need+=(php-cli)
[ -x /usr/bin/chromium ] || need+=(chromium)
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }
installed fonts-dejavu-core || need+=(fonts-dejavu-core)
command -v groff >/dev/null || need+=(groff)
command -v man >/dev/null || need+=(man-db)
command -v node >/dev/null || need+=(nodejs npm)
command -v python3 >/dev/null || need+=(python3)
# promtool checks the example alert rules and the metrics file (Debian ships it in prometheus).
command -v promtool >/dev/null || need+=(prometheus)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        echo "== apt-get install ${need[*]}"
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
    else
        echo "test.sh: please install: ${need[*]}" >&2
        exit 1
    fi
fi

echo "== cargo test --workspace"
if [ "$(id -u)" -eq 0 ]; then
    # Tests marked `#[ignore = "needs root"]` run too.
    cargo test --workspace --locked -- --include-ignored
else
    echo "(not root: the tests that need root are reported as ignored)"
    cargo test --workspace --locked
fi

echo "== docs: man pages and completions are up to date"
cargo run --quiet --locked -p xtask -- check

echo "== browser: the PHP add-on in headless Chromium"
bash tests/browser/run.sh
echo "== demo: ./demo.sh --browser prints live URLs and stops on Ctrl-C"
python3 tests/demo/browser_demo.py

if [ "$package" -eq 1 ]; then
    echo "== package: build, install, doctor, cron, remove, purge"
    bash tests/package/run.sh
else
    echo "== package: skipped (--no-package)"
fi
echo "== all test stages passed"
