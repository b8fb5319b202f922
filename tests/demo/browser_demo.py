#!/usr/bin/env python3
"""`./demo.sh --browser` as a newcomer meets it: every URL it prints answers, the BitPay
dashboard page it points to creates a pairing code, and Ctrl-C (SIGINT to the terminal's
process group) stops everything: no process left, the temporary directory gone, the
ports closed, no log dump. Run by test.sh after the browser suite (needs php-cli)."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


opener = urllib.request.build_opener(NoRedirect)


def status_of(url, data=None):
    try:
        with opener.open(url, data=data, timeout=10) as reply:
            return reply.status, reply.read().decode(), reply.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace"), e.headers


demo = subprocess.Popen(
    ["./demo.sh", "--browser"],
    cwd=REPO,
    stdout=subprocess.PIPE,
    stderr=subprocess.STDOUT,
    text=True,
    start_new_session=True,  # its own process group, like a terminal's foreground job
    preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
)
printed = ""
deadline = time.monotonic() + 600
while "Press Ctrl-C to stop." not in printed and time.monotonic() < deadline:
    line = demo.stdout.readline()
    if not line:
        break
    printed += line
if "Press Ctrl-C to stop." not in printed:
    os.killpg(demo.pid, signal.SIGKILL)
    sys.exit("demo.sh --browser did not start:\n" + printed)

urls = re.findall(r"https?://[^\s,)]+", printed)
check(len(urls) >= 5, f"it prints the URLs to open ({len(urls)})")
for url in urls:
    status, _, headers = status_of(url)
    # The add-on's own pages send a visitor without a session to the Splynx login.
    live = status == 200 or (status == 302 and "/login/" in headers.get("Location", ""))
    check(live, f"{url} answers ({status})")
check("/bitpay/ipn (POST only)" in printed, "the webhook URL is named as POST-only, not as a page")

dashboard = next((u for u in urls if u.endswith("/dashboard/merchant/api-tokens")), None)
check(dashboard is not None, "it points to the BitPay dashboard's API tokens page")
if dashboard:
    status, _, headers = status_of(dashboard, data=b"action=add")
    check(status == 303, f"Add New Token answers 303 ({status})")
    status, page, _ = status_of(urllib.parse.urljoin(dashboard, headers.get("Location", "")))
    code = re.search(r'class="pairing-code">([A-Za-z0-9]{7})<', page)
    check(status == 200 and code is not None, "the dashboard shows a new pairing code")

ports = sorted({urllib.parse.urlsplit(u).port for u in urls})
os.killpg(demo.pid, signal.SIGINT)
try:
    rest, _ = demo.communicate(timeout=30)
except subprocess.TimeoutExpired:
    os.killpg(demo.pid, signal.SIGKILL)
    rest, _ = demo.communicate()
    check(False, "Ctrl-C stops it within 30 seconds")
check("Stopped: the sandboxes and the PHP server are gone" in rest, "Ctrl-C says what it stopped")
check("last 60 lines" not in rest, "Ctrl-C dumps no logs")
# Its processes may take a moment to be reaped on a busy machine: up to 10 s.
left = True
for _ in range(100):
    try:
        os.killpg(demo.pid, 0)
    except ProcessLookupError:
        left = False
        break
    time.sleep(0.1)
check(not left, "no process of the demo is left")
for port in ports:
    with socket.socket() as s:
        closed = s.connect_ex(("127.0.0.1", port)) != 0
    check(closed, f"port {port} is closed")
match = re.search(r"(/tmp/splynx-bitpay-browser\.\w+) removed", rest)
check(match is not None and not os.path.exists(match.group(1)), "its temporary directory is removed")

if failures:
    print("\n".join(["", "demo.sh --browser output:", printed + rest]))
    sys.exit(f"{len(failures)} check(s) failed")
print("demo.sh --browser: all checks passed")
