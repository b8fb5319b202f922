# splynx-bitpay: every 10 minutes, settle what BitPay's webhooks missed.
# Runs as the web server user, who owns /var/lib/splynx-bitpay. A run that finds the
# previous one still going exits quietly (flock). Output is printed, and so mailed by
# cron to MAILTO, only when reconcile fails. See splynx-bitpay(1).
SHELL=/bin/sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin

# On the 2nd of each month: last month's audit (the two books side by side), recorded
# for the admin page and the metrics; its differences are mailed (it exits 1 on any).
30 6 2 * * www-data [ -x /usr/bin/splynx-bitpay ] || exit 0; out=$(/usr/bin/splynx-bitpay audit --record 2>&1) || { echo "splynx-bitpay audit found differences or failed (exit $?):"; echo "$out"; }
*/10 * * * * www-data [ -x /usr/bin/splynx-bitpay ] || exit 0; out=$(flock -n -E 0 /run/lock/splynx-bitpay-reconcile.lock /usr/bin/splynx-bitpay reconcile 2>&1) || { echo "splynx-bitpay reconcile failed (exit $?):"; echo "$out"; }
