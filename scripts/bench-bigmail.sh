#!/usr/bin/env bash
# Memory of one mxgrid node under big mail: N senders each send one message
# of SIZE bytes at the same moment (no retries), through a default node
# (model, rules, built-in antivirus; relayed before the reply) to smtp-sink.
# Prints the first-attempt reply codes and the node's peak RSS (VmHWM).
#
# Usage:
#   scripts/bench-bigmail.sh [--senders 40] [--size 20000000] [--set KEY=VALUE]...
#                            [--quarantine] [--incompressible]
#   --set smtp.spool_threshold=1048576   any smtp key of the node's config
#   --quarantine      the domain quarantines its tag band, and every message
#                     scores in it: each is held in the quarantine (SQLite)
#                     instead of relayed
#   --incompressible  bodies of random base64 (gzip keeps ~3/4 of them)
#                     instead of one repeated line of text
#
# Needs smtp-sink (Debian: apt-get install postfix), python3 and Go (or
# MXGRID_BIN=path). Everything listens on 127.0.0.1 and is stopped on exit.
set -euo pipefail

senders=40 size=20000000 smtp_extra="" domain_extra="" incompressible=0
while [[ $# -gt 0 ]]; do
	case "$1" in
	--senders) senders=$2; shift 2 ;;
	--size) size=$2; shift 2 ;;
	--set) k=${2%%=*}; smtp_extra+=", ${k#smtp.}: ${2#*=}"; shift 2 ;;
	--quarantine) domain_extra=", tag_score: 0.001, reject_score: 1000000, tag_action: quarantine"; shift ;;
	--incompressible) incompressible=1; shift ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench-bigmail.sh: unknown argument $1 (--help)" >&2; exit 2 ;;
	esac
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench_name=mxgrid-bigmail
# shellcheck source=scripts/bench-lib.sh
source "$repo/scripts/bench-lib.sh"

sink=$(free_port) smtp=$(free_port) http=$(free_port) mgmt=$(free_port) gossip=$(free_port)
# -t 300: a customer's Postfix waits 300 s (smtpd_timeout) for the next
# command; smtp-sink's own 100 s would time out the downstream sessions
# opened at RCPT while 200 senders upload 25 MB each over one loopback.
smtp-sink "${sink_user[@]}" -t 300 "127.0.0.1:$sink" 1024 >/dev/null 2>&1 &
pids+=($!)
cat >"$work/node.yaml" <<YAML
node: {name: bigmail}
log: {level: warn}
data_dir: $work/data
smtp: {listen: "127.0.0.1:$smtp", hostname: bigmail.bench.test, max_connections_per_ip: 1000$smtp_extra}
http: {listen: "127.0.0.1:$http", management_listen: "127.0.0.1:$mgmt"}
cluster: {bind: "127.0.0.1:$gossip"}
domains:
  - {name: example.org, route: "127.0.0.1:$sink", tls: none$domain_extra}
YAML
"$bin" serve --config "$work/node.yaml" >"$work/log" 2>&1 &
node=$!
pids+=($node)
wait_port "$sink"
wait_port "$smtp"

python3 - "$smtp" "$senders" "$size" "$incompressible" <<'PY'
import smtplib, sys, threading, collections, time, os, base64
port, senders, size, incompressible = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
line = b"a line of text that pads a big message to its size, like a long report.\r\n"
codes, lock = collections.Counter(), threading.Lock()
start = threading.Barrier(senders)
def send(i):
    if incompressible:
        text = b"\r\n".join(base64.b64encode(os.urandom(57)) for _ in range(size // 78)) + b"\r\n"
    else:
        text = line * (size // len(line))
    body = b"From: s%d@sender.test\r\nTo: rcpt@example.org\r\nSubject: big %d\r\n\r\n" % (i, i) + text
    start.wait()
    try:
        s = smtplib.SMTP("127.0.0.1", port, timeout=900)
        s.sendmail("s%d@sender.test" % i, ["rcpt@example.org"], body)
        code = 250
        s.quit()
    except smtplib.SMTPResponseException as e:
        code = e.smtp_code
    except smtplib.SMTPRecipientsRefused as e:
        code = list(e.recipients.values())[0][0]
    except Exception as e:
        code = type(e).__name__
    with lock:
        codes[code] += 1
t0 = time.time()
ts = [threading.Thread(target=send, args=(i,)) for i in range(senders)]
for t in ts: t.start()
for t in ts: t.join()
print("replies:", dict(codes), "in %.1f s" % (time.time() - t0))
PY
if kill -0 "$node" 2>/dev/null; then
	grep -E 'VmHWM|VmRSS' "/proc/$node/status" | tr -s ' \t' ' '
	echo "node warnings:"; { grep -o 'msg="[^"]*"' "$work/log" || true; } | sort | uniq -c | sort -rn | head -5
else
	echo "node died:"; tail -5 "$work/log"
fi
