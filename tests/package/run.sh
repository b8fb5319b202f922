#!/usr/bin/env bash
# Package test (issue 6): build the .deb from this checkout, lint it, install it, check
# every installed path, owner and mode, run `doctor` and the cron job against the loopback
# sandboxes, reinstall, then remove and purge and check what stays and what goes.
#
# Run as root on a Debian machine (CI does): bash tests/package/run.sh
# It installs what it needs (apt packages below), cleans up after itself (the package is
# purged, the sandboxes stopped, the build outputs in the parent directory deleted; set
# KEEP_DEB=1 to keep them) and can be run again. Every check prints PASS or FAIL; the last
# line counts them; the exit status is non-zero when anything failed.
#
# DEB_BUILD_OPTIONS defaults to nocheck (CI runs the unit tests with `cargo test`);
# set DEB_BUILD_OPTIONS= to run them inside the package build too.
set -uo pipefail

APT_PACKAGES=(dpkg-dev debhelper build-essential fakeroot lintian man-db groff cron
              curl python3 util-linux)

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PARENT=$(dirname "$ROOT")
WORK=$(mktemp -d /tmp/splynx-bitpay-package.XXXXXX)
CONFIG=/etc/splynx-bitpay/config.toml
DATA=/var/lib/splynx-bitpay
ADDON=/var/www/splynx/addons/splynx-bitpay
CRON=/etc/cron.d/splynx-bitpay
LOCK=/run/lock/splynx-bitpay-reconcile.lock
export DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS-nocheck}
export DEBIAN_FRONTEND=noninteractive
export CARGO_TERM_COLOR=never

passed=0
failed=0
pass() { echo "PASS: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
# check "what" command...: PASS when the command succeeds.
check() {
    local what=$1
    shift
    if "$@"; then pass "$what"; else fail "$what"; return 1; fi
}
step() { echo; echo "== $*"; }
finish() {
    echo
    echo "package test: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit $?
}
# The last command's output, shown when a check on it failed.
show() { sed 's/^/    | /' "$1"; }

as_www() { su -s /bin/sh www-data -c "$*"; }

SANDBOX_PID=
cleanup() {
    [ -n "$SANDBOX_PID" ] && kill "$SANDBOX_PID" 2>/dev/null
    if dpkg-query -W -f='${Status}' splynx-bitpay 2>/dev/null | grep -qv 'not-installed'; then
        apt-get purge -y -q splynx-bitpay >/dev/null 2>&1
    fi
    if [ -z "${KEEP_DEB:-}" ]; then
        rm -f "$PARENT"/splynx-bitpay_*.deb "$PARENT"/splynx-bitpay-dbgsym_* \
              "$PARENT"/splynx-bitpay_*.buildinfo "$PARENT"/splynx-bitpay_*.changes
    fi
    # The build's leftovers under debian/ (the tree stays as it was checked out).
    (cd "$ROOT" && debian/rules clean) >/dev/null 2>&1
    rm -rf "$WORK"
}
trap cleanup EXIT

if [ "$(id -u)" -ne 0 ]; then
    echo "tests/package/run.sh must run as root (it installs and purges the package)" >&2
    exit 2
fi

step "apt packages: ${APT_PACKAGES[*]}"
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >"$WORK/apt.log" 2>&1
    check "apt-get install ${missing[*]}" test $? -eq 0 || show "$WORK/apt.log"
fi
# nginx only to check the shipped snippets (nginx -t); its service is not started.
if ! command -v nginx >/dev/null 2>&1; then
    policy=/usr/sbin/policy-rc.d
    made_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
    fi
    apt-get install -y -q --no-install-recommends nginx-light >"$WORK/apt-nginx.log" 2>&1
    check "apt-get install nginx-light (service not started)" test $? -eq 0 || show "$WORK/apt-nginx.log"
    [ "$made_policy" -eq 1 ] && rm -f "$policy"
fi
for tool in dpkg-buildpackage lintian flock curl python3 man; do
    command -v "$tool" >/dev/null || { fail "$tool is available"; finish; }
done

step "a clean slate"
if dpkg-query -W -f='${Status}' splynx-bitpay 2>/dev/null | grep -qv 'not-installed'; then
    apt-get purge -y -q splynx-bitpay >/dev/null 2>&1
fi
rm -f "$PARENT"/splynx-bitpay_*.deb "$PARENT"/splynx-bitpay-dbgsym_* \
      "$PARENT"/splynx-bitpay_*.buildinfo "$PARENT"/splynx-bitpay_*.changes
check "no splynx-bitpay installed" sh -c "! dpkg-query -W -f='\${Status}' splynx-bitpay 2>/dev/null | grep -q 'ok installed'"

step "build: dpkg-buildpackage -us -uc -b (DEB_BUILD_OPTIONS=$DEB_BUILD_OPTIONS)"
cd "$ROOT"
VERSION=$(dpkg-parsechangelog -S Version)
UPSTREAM=${VERSION%-*}
ARCH=$(dpkg-architecture -qDEB_HOST_ARCH)
if dpkg-buildpackage -us -uc -b >"$WORK/build.log" 2>&1; then
    pass "dpkg-buildpackage -us -uc -b"
else
    fail "dpkg-buildpackage -us -uc -b"; tail -40 "$WORK/build.log" | show /dev/stdin; finish
fi
DEB="$PARENT/splynx-bitpay_${VERSION}_${ARCH}.deb"
CHANGES="$PARENT/splynx-bitpay_${VERSION}_${ARCH}.changes"
check "the .deb is $(basename "$DEB")" test -f "$DEB"
CARGO_VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)
check "debian/changelog version $VERSION is Cargo's $CARGO_VERSION" test "$UPSTREAM" = "$CARGO_VERSION"

step "lintian (no errors, no warnings)"
lintian --fail-on error,warning --info "$CHANGES" >"$WORK/lintian.log" 2>&1
status=$?
cat "$WORK/lintian.log"
check "lintian exits 0 on $(basename "$CHANGES")" test $status -eq 0
check "lintian reports no E: or W: tag" sh -c "! grep -Eq '^[EW]: ' '$WORK/lintian.log'"

step "install: apt-get install ./splynx-bitpay_*.deb"
(cd "$PARENT" && apt-get install -y -q ./splynx-bitpay_*.deb) >"$WORK/install.log" 2>&1
check "apt-get install ./splynx-bitpay_*.deb" test $? -eq 0 || show "$WORK/install.log"
check "the install says what to do next" grep -q "Config → Integrations → Bitpay" "$WORK/install.log"

step "installed paths, owners and modes"
# expect PATH "owner:group mode type"
expect() {
    local got
    got=$(stat -c '%U:%G %a %F' "$1" 2>/dev/null || echo "missing")
    if [ "$got" = "$2" ]; then pass "$1 is $2"; else fail "$1 is $2 (got: $got)"; fi
}
expect /usr/bin/splynx-bitpay "root:root 755 regular file"
expect /etc/splynx-bitpay "root:root 755 directory"
expect "$CONFIG" "root:www-data 640 regular file"
expect "$DATA" "www-data:www-data 700 directory"
expect "$CRON" "root:root 644 regular file"
expect /usr/share/man/man1/splynx-bitpay.1.gz "root:root 644 regular file"
expect /usr/share/man/man5/splynx-bitpay.toml.5.gz "root:root 644 regular file"
expect /usr/share/bash-completion/completions/splynx-bitpay "root:root 644 regular file"
expect /usr/share/zsh/vendor-completions/_splynx-bitpay "root:root 644 regular file"
expect /usr/share/doc/splynx-bitpay/copyright "root:root 644 regular file"
expect /usr/share/doc/splynx-bitpay/changelog.Debian.gz "root:root 644 regular file"
expect /usr/share/doc/splynx-bitpay/examples/config.toml "root:root 644 regular file"
expect "$ADDON" "root:root 755 directory"
expect /var/www/splynx/web/bitpay "root:root 777 symbolic link"
check "/var/www/splynx/web/bitpay points at $ADDON/web" \
    test "$(readlink -m /var/www/splynx/web/bitpay)" = "$ADDON/web"
# Every file of hooks/ is installed, unchanged, readable by the web server.
if [ -d "$ROOT/hooks" ] && [ -n "$(find "$ROOT/hooks" -type f -print -quit)" ]; then
    while IFS= read -r -d '' f; do
        rel=${f#"$ROOT/hooks/"}
        mode=$(stat -c '%U %a' "$ADDON/$rel" 2>/dev/null)
        if cmp -s "$f" "$ADDON/$rel" && { [ "$mode" = "root 644" ] || [ "$mode" = "root 755" ]; }; then
            pass "hooks/$rel installed as $ADDON/$rel"
        else
            fail "hooks/$rel installed as $ADDON/$rel (root, 0644 or 0755, same content)"
        fi
    done < <(find "$ROOT/hooks" -type f -print0)
else
    echo "(hooks/ is empty in this checkout: no shim files to check)"
fi
expect /etc/nginx/sites-available/splynx-bitpay.addons "root:root 644 regular file"
expect /etc/nginx/conf.d/splynx-bitpay-ratelimit.conf "root:root 644 regular file"
# Both snippets in a Splynx-like vhost: nginx accepts them, and /bitpay/ipn is limited.
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<NGINX
error_log $WORK/nginx/error.log;
pid $WORK/nginx/nginx.pid;
events {}
http {
    include /etc/nginx/conf.d/splynx-bitpay-ratelimit.conf;
    server {
        listen 127.0.0.1:18099;
        root /var/www/splynx/web;
        include /etc/nginx/sites-available/splynx-bitpay.addons;
    }
}
NGINX
nginx -t -q -c "$WORK/nginx/nginx.conf" >"$WORK/nginx/t.log" 2>&1
check "nginx -t accepts the rate limit and the add-on snippet" test $? -eq 0 || show "$WORK/nginx/t.log"
check "the webhook location is rate-limited" \
    grep -q "limit_req zone=splynx_bitpay_ipn" /etc/nginx/sites-available/splynx-bitpay.addons

step "nginx: every spelling of the public URLs meets their limits or is refused before PHP"
# The installed snippets in a running nginx whose PHP stand-in answers 200 "php ran": a
# request that reaches PHP is a 200, anything refused first is not.
NGINX_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$WORK/nginx/www" "$WORK/nginx/tmp"
cat >"$WORK/nginx/run.conf" <<NGINX
user root root;
error_log $WORK/nginx/error.log;
pid $WORK/nginx/run.pid;
events {}
http {
    access_log off;
    client_body_temp_path $WORK/nginx/tmp/body;
    proxy_temp_path $WORK/nginx/tmp/proxy;
    fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
    uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
    scgi_temp_path $WORK/nginx/tmp/scgi;
    include /etc/nginx/conf.d/splynx-bitpay-ratelimit.conf;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $WORK/nginx/www;
        include /etc/nginx/sites-available/splynx-bitpay.addons;
        location ~ \.php\$ {
            return 200 "php ran\n";
        }
    }
}
NGINX
nginx -c "$WORK/nginx/run.conf" >"$WORK/nginx/start.log" 2>&1
check "nginx starts with the installed snippets" test $? -eq 0 || show "$WORK/nginx/start.log"
base="http://127.0.0.1:$NGINX_PORT"
# POSTs to each URL in turn, as fast as curl sends them; prints one status per request.
statuses() {
    local rounds=$1
    shift
    local targets=()
    for _ in $(seq "$rounds"); do
        for path in "$@"; do targets+=(-o /dev/null "$base$path"); done
    done
    curl -s --path-as-is -X POST -H 'Content-Type: application/json' --data '{}' \
        -w '%{http_code}\n' "${targets[@]}"
}
IPN_SPELLINGS=(/bitpay/ipn /bitpay/ipn/ //bitpay/ipn /bitpay//ipn /bitpay/./ipn /bitpay/%69pn
               /bitpay%2Fipn /bitpay/IPN /bitpay/Ipn/ /bitpay/ipn/x)
statuses 25 "${IPN_SPELLINGS[@]}" >"$WORK/nginx/ipn.codes"
reached=$(grep -c '^200$' "$WORK/nginx/ipn.codes")
# 250 requests: the burst of 100 (and a few more for the time they take) reach PHP.
check "the webhook URL in every spelling: at most ~100 of 250 reach PHP ($reached), the rest 429 or 404" \
    test "$reached" -le 115
check "the webhook limit answers 429" grep -q '^429$' "$WORK/nginx/ipn.codes"
DIRECT_SPELLINGS=(/bitpay/direct-pay-invoice /bitpay/direct-pay-invoice-by-id/
                  //bitpay/direct-pay-invoice /bitpay/Direct-Pay-Invoice /bitpay/direct-pay-invoice/x
                  /bitpay/direct%2Dpay-invoice)
statuses 10 "${DIRECT_SPELLINGS[@]}" >"$WORK/nginx/direct.codes"
reached=$(grep -c '^200$' "$WORK/nginx/direct.codes")
check "direct pay links in every spelling: at most ~20 of 60 reach PHP ($reached)" test "$reached" -le 25
head -c 200000 /dev/zero | tr '\0' 'x' >"$WORK/nginx/big.json"
for path in /bitpay/ipn /bitpay/ipn/ //bitpay//ipn /bitpay/IPN /bitpay/direct-pay-invoice-by-id/; do
    code=$(curl -s --path-as-is -X POST --data-binary @"$WORK/nginx/big.json" -o /dev/null -w '%{http_code}' "$base$path")
    check "a 200 KB POST to $path is refused before PHP ($code)" test "$code" != 200
done
kill "$(cat "$WORK/nginx/run.pid")" 2>/dev/null
if [ -f "$ROOT/hooks/web/index.php" ]; then
    check "the portal entry point resolves through the link" test -f /var/www/splynx/web/bitpay/index.php
fi
conffiles=$(dpkg-query -W -f='${Conffiles}' splynx-bitpay)
check "$CONFIG is a conffile" grep -q "$CONFIG" <<<"$conffiles"
check "$CRON is a conffile" grep -q "$CRON" <<<"$conffiles"
check "a stat override keeps $CONFIG root:www-data 0640" \
    test "$(dpkg-statoverride --list "$CONFIG")" = "root www-data 640 $CONFIG"
check "the installed config is examples/config.toml" cmp -s "$CONFIG" "$ROOT/examples/config.toml"
check "splynx-bitpay --version prints 'splynx-bitpay $UPSTREAM'" \
    test "$(splynx-bitpay --version)" = "splynx-bitpay $UPSTREAM"
check "man splynx-bitpay finds the page" test "$(man -w splynx-bitpay)" = /usr/share/man/man1/splynx-bitpay.1.gz
check "man 5 splynx-bitpay.toml finds the page" test "$(man -w 5 splynx-bitpay.toml)" = /usr/share/man/man5/splynx-bitpay.toml.5.gz
check "man --warnings renders splynx-bitpay(1) cleanly" \
    sh -c 'test -z "$(man --warnings -l /usr/share/man/man1/splynx-bitpay.1.gz 2>&1 >/dev/null)"'
for cmd in pair unpair status create-invoice handle-ipn reconcile show doctor audit metrics replay; do
    check "splynx-bitpay $cmd -h shows an example" sh -c "splynx-bitpay $cmd -h | grep -q '^Example'"
done
check "the cron line runs reconcile every 10 minutes as www-data under flock" \
    grep -Eq '^\*/10 \* \* \* \* www-data .*flock -n .*/usr/bin/splynx-bitpay reconcile' "$CRON"
check "the cron line records last month's audit on the 2nd as www-data" \
    grep -Eq '^30 6 2 \* \* www-data .*/usr/bin/splynx-bitpay audit --record' "$CRON"
check "the example alert rules are installed" \
    test -f /usr/share/doc/splynx-bitpay/examples/prometheus/splynx-bitpay.rules.yml

step "sandboxes (loopback BitPay and Splynx)"
(cd "$ROOT" && cargo build -q --locked -p splynx-bitpay-sandbox --bin splynx-bitpay-sandbox) >"$WORK/sandbox-build.log" 2>&1
check "cargo build splynx-bitpay-sandbox" test $? -eq 0 || show "$WORK/sandbox-build.log"
TARGET=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
"$TARGET/debug/splynx-bitpay-sandbox" </dev/null >"$WORK/sandbox.json" 2>"$WORK/sandbox.err" &
SANDBOX_PID=$!
for _ in $(seq 100); do [ -s "$WORK/sandbox.json" ] && break; sleep 0.1; done
field() { python3 -c "import json,sys; print(json.loads(open('$WORK/sandbox.json').readline())['$1'])"; }
BITPAY=$(field bitpay_url)
SPLYNX=$(field splynx_url)
KEY=$(field api_key)
SECRET=$(field api_secret)
check "the sandboxes run ($BITPAY, $SPLYNX)" test -n "$BITPAY" -a -n "$SPLYNX"

# The sandbox's Splynx host answers the add-on's webhook URL as the shim does.
WEBHOOK="$SPLYNX/bitpay/ipn"
check "the webhook URL answers 400 to an empty POST" \
    test "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$WEBHOOK")" = 400

step "point the installed config at the sandboxes (as an admin edits it)"
cat >"$CONFIG" <<EOF
# Edited by tests/package/run.sh: the loopback sandboxes.
[splynx]
url = "https://splynx.isp.test"
api_url = "$SPLYNX/api/2.0/"
api_key = "$KEY"
api_secret = "$SECRET"
payment_method_id = 7
timeout_seconds = 5

[bitpay]
environment = "test"
api_url = "$BITPAY"
currency = "USD"
notification_url = "$WEBHOOK"
timeout_seconds = 5

[storage]
data_dir = "$DATA"
EOF
expect "$CONFIG" "root:www-data 640 regular file"

step "doctor before pairing fails and says how to pair"
as_www "splynx-bitpay doctor" >"$WORK/doctor0.out" 2>&1
status=$?
check "doctor exits 78 before pairing" test $status -eq 78 || show "$WORK/doctor0.out"
check "doctor says: not paired yet, with the pair command" \
    grep -q "^FAIL  key .*not paired yet.*fix: .*splynx-bitpay pair CODE" "$WORK/doctor0.out"
check "doctor did not create a key" test ! -e "$DATA/bitpay.key"

step "pair as www-data"
CODE=$(curl -s -X POST "$BITPAY/_sandbox/pairing-codes" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pairingCode"])')
as_www "splynx-bitpay pair $CODE" >"$WORK/pair.out" 2>&1
check "splynx-bitpay pair CODE as www-data" test $? -eq 0 || show "$WORK/pair.out"
expect "$DATA/bitpay.key" "www-data:www-data 600 regular file"
expect "$DATA/state.db" "www-data:www-data 600 regular file"

step "doctor"
as_www "splynx-bitpay doctor" >"$WORK/doctor.out" 2>&1
status=$?
cat "$WORK/doctor.out"
check "doctor as www-data exits 0" test $status -eq 0
for id in config config.permissions data_dir key database bitpay.reachable bitpay.token \
          splynx.api splynx.customers splynx.invoices splynx.proformas splynx.payments \
          splynx.payment_method; do
    check "doctor: $id ok" grep -q "^ok    $id " "$WORK/doctor.out"
done
check "doctor: webhook URL answers 400" grep -q "^[a-z]*  *webhook.url .*answers 400" "$WORK/doctor.out"
splynx-bitpay doctor >"$WORK/doctor-root.out" 2>&1
status=$?
check "doctor as root runs the checks as www-data and exits 0" \
    sh -c "test $status -eq 0 && grep -q 'running as www-data' '$WORK/doctor-root.out'" || show "$WORK/doctor-root.out"
splynx-bitpay --json doctor >"$WORK/doctor.json" 2>/dev/null
check "doctor --json: ok, 22 checks" python3 -c "
import json; d = json.load(open('$WORK/doctor.json'))
assert d['ok'] is True and len(d['checks']) == 22 and d['summary']['fail'] == 0, d"
check "nothing in $DATA belongs to another user than www-data" \
    test -z "$(find "$DATA" ! -user www-data -print)"

step "settings entered in Splynx's Modules list (config/config.ini.php) win over the TOML"
check "the installed Modules-list form is config.json" cmp -s "$ADDON/config/config.json" "$ROOT/hooks/config/config.json"
printf '; <?php exit(); ?>\n[common]\nrefill_max = "250.00"\ntransaction_speed = ""\n' >"$ADDON/config/config.ini.php"
as_www "splynx-bitpay --json config" >"$WORK/config.json" 2>&1
check "config --json: refill.max from the Modules list, transaction_speed from the TOML default" python3 -c "
import json; d = json.load(open('$WORK/config.json')); s = {x['key']: x for x in d['settings']}
assert (s['refill.max']['value'], s['refill.max']['source']) == ('250.00', 'modules-list'), s['refill.max']
assert s['bitpay.transaction_speed']['source'] == 'default', s['bitpay.transaction_speed']
assert d['modules_list_file'] == '$ADDON/config/config.ini.php', d" || show "$WORK/config.json"
rm -f "$ADDON/config/config.ini.php"

step "reconcile, exactly as cron runs it"
cron_line=$(grep -E '^\*/10 ' "$CRON")
cron_user=$(awk '{print $6}' <<<"$cron_line")
cron_cmd=$(sed -E 's/^([^ ]+ +){6}//' <<<"$cron_line")
check "the cron job runs as www-data" test "$cron_user" = www-data
run_cron() {
    env -i SHELL=/bin/sh PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        su -s /bin/sh "$cron_user" -c "$cron_cmd"
}
# A paid BitPay invoice whose webhook never came: the cron run must settle it.
INVOICE=$(as_www "splynx-bitpay --json create-invoice --customer 42 --invoice 101" |
          python3 -c 'import json,sys; print(json.load(sys.stdin)["bitpay_invoice_id"])')
check "an invoice for Splynx invoice 101 exists at BitPay ($INVOICE)" test -n "$INVOICE"
curl -s -X POST -H 'Content-Type: application/json' -d '{"status":"confirmed"}' \
    "$BITPAY/_sandbox/invoices/$INVOICE/status" >/dev/null
out=$(run_cron 2>&1)
status=$?
check "the cron command exits 0 and prints nothing when reconcile succeeds" \
    test $status -eq 0 -a -z "$out" || echo "    | $out"
check "reconcile credited the payment in Splynx (receipt $INVOICE)" \
    sh -c "curl -s '$SPLYNX/_sandbox/payments' | grep -q '\"receipt_number\":\"$INVOICE\"'"
# Overlapping runs: the second finds the lock held and exits quietly at once.
su -s /bin/sh www-data -c "flock $LOCK sleep 3" &
holder=$!
sleep 0.5
started=$(date +%s)
out=$(run_cron 2>&1)
status=$?
check "a cron run while another holds the lock exits 0 silently" \
    test $status -eq 0 -a -z "$out" -a $(( $(date +%s) - started )) -lt 3
wait $holder
# A failing run prints what went wrong, so cron mails it.
INVOICE2=$(as_www "splynx-bitpay --json create-invoice --customer 42 --proforma 201" |
           python3 -c 'import json,sys; print(json.load(sys.stdin)["bitpay_invoice_id"])')
curl -s -X POST -H 'Content-Type: application/json' -d '{"fail_next":100,"status":503}' \
    "$BITPAY/_sandbox/faults" >/dev/null
out=$(run_cron 2>&1)
status=$?
check "a failing cron run prints 'reconcile failed (exit 75)' (mailed by cron)" \
    grep -q "splynx-bitpay reconcile failed (exit 75)" <<<"$out" || echo "    | $out"
curl -s -X POST -H 'Content-Type: application/json' -d '{}' "$BITPAY/_sandbox/faults" >/dev/null
check "the second invoice is still there to settle later ($INVOICE2)" test -n "$INVOICE2"

step "reinstall (the upgrade path of the maintainer scripts) keeps config and state"
cp -p "$CONFIG" "$WORK/config.before"
db_sum=$(sha256sum "$DATA/bitpay.key" | cut -d' ' -f1)
(cd "$PARENT" && apt-get install -y -q --reinstall ./splynx-bitpay_*.deb) >"$WORK/reinstall.log" 2>&1
check "apt-get install --reinstall" test $? -eq 0 || show "$WORK/reinstall.log"
check "the edited config is kept" cmp -s "$CONFIG" "$WORK/config.before"
expect "$CONFIG" "root:www-data 640 regular file"
expect "$DATA" "www-data:www-data 700 directory"
check "the BitPay key is unchanged" test "$(sha256sum "$DATA/bitpay.key" | cut -d' ' -f1)" = "$db_sum"
check "postinst configure runs again cleanly" /var/lib/dpkg/info/splynx-bitpay.postinst configure "$VERSION"
as_www "splynx-bitpay doctor" >"$WORK/doctor2.out" 2>&1
check "doctor still passes" test $? -eq 0 || show "$WORK/doctor2.out"

step "apt-get remove: program and shims go, config and payment state stay"
apt-get remove -y -q splynx-bitpay >"$WORK/remove.log" 2>&1
check "apt-get remove splynx-bitpay" test $? -eq 0 || show "$WORK/remove.log"
check "remove says what it keeps" grep -q "Kept: $CONFIG and $DATA" "$WORK/remove.log"
check "dpkg status is deinstall/config-files" \
    test "$(dpkg-query -W -f='${Status}' splynx-bitpay)" = "deinstall ok config-files"
for gone in /usr/bin/splynx-bitpay "$ADDON" /var/www/splynx/web/bitpay \
            /usr/share/man/man1/splynx-bitpay.1.gz; do
    check "$gone is gone" test ! -e "$gone" -a ! -L "$gone"
done
check "the edited config stays" cmp -s "$CONFIG" "$WORK/config.before"
expect "$CONFIG" "root:www-data 640 regular file"
expect "$DATA/state.db" "www-data:www-data 600 regular file"
expect "$DATA/bitpay.key" "www-data:www-data 600 regular file"
check "the payment journal survives (invoice $INVOICE is in state.db)" \
    sh -c "cat '$DATA'/state.db* | grep -qa '$INVOICE'"
out=$(run_cron 2>&1)
status=$?
check "the cron file stays (conffile) and does nothing without the program" \
    test -f "$CRON" -a $status -eq 0 -a -z "$out"

step "apt-get purge: config, state and cron job go, and purge says so"
apt-get purge -y -q splynx-bitpay >"$WORK/purge.log" 2>&1
check "apt-get purge splynx-bitpay" test $? -eq 0 || show "$WORK/purge.log"
grep 'splynx-bitpay: purge' "$WORK/purge.log" || true
check "purge says it deletes $DATA" grep -q "purge: deleting $DATA" "$WORK/purge.log"
for gone in "$CONFIG" /etc/splynx-bitpay "$DATA" "$CRON" /etc/nginx/sites-available/splynx-bitpay.addons; do
    check "$gone is gone" test ! -e "$gone"
done
check "the stat override is gone" sh -c "! dpkg-statoverride --list '$CONFIG' >/dev/null 2>&1"
check "postrm purge runs again cleanly and has nothing left to delete" \
    sh -c "out=\$(sh '$ROOT/debian/splynx-bitpay.postrm' purge 2>&1) && ! echo \"\$out\" | grep -q deleting"
check "dpkg no longer knows splynx-bitpay" \
    sh -c "! dpkg-query -W -f='\${Status}' splynx-bitpay 2>/dev/null | grep -Eq 'ok installed|config-files'"

finish
