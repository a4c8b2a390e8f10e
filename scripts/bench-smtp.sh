#!/usr/bin/env bash
# SMTP throughput of one mxgrid node against the machine's ceiling, measured
# interleaved in one run so that both see the same machine (load from other
# processes, CPU frequency) round by round.
#
# Each round runs, one after the other, with Postfix's smtp-source as the
# sender (N sessions, messages of a fixed size):
#   ceiling   smtp-source -> smtp-sink                      (nothing between)
#   node      smtp-source -> mxgrid serve -> smtp-sink      (default pipeline:
#             model, rules, built-in antivirus; relayed before the 250)
#   nocache   the same with relay.cache.enabled: false      (--compare-cache)
#   baseline  the node path with another mxgrid binary      (--baseline BIN),
#             to measure a change before and after on the same machine
#   postfix   smtp-source -> Postfix -> smtp-sink           (--postfix: a
#             private Postfix instance, no content filter, queueing to
#             disk as Postfix does; each round waits for its queue to empty
#             so that its deliveries do not load the next path)
# and prints each path's messages/s, then the median node/ceiling ratio,
# and each node's CPU time per message (user + system, from /proc), which
# a busy machine disturbs far less than a rate, and the bytes it allocated
# per message (go_memstats_alloc_bytes_total).
# Last, where the CPU went: smtp-source's and each smtp-sink's CPU time per
# message beside the node's, medians over the rounds, and the ratio at
# which the node path would spend the machine's CPU as fast as the
# ceiling does (the ceiling's CPU per message over the node path's): on a
# machine with fewer cores than the three processes need, that bounds the
# node/ceiling ratio whatever the network does.
# Every node transaction must be answered 2xx (checked in the node's
# metrics) or the run fails: a fast node that refuses mail proves nothing.
#
# Usage:
#   scripts/bench-smtp.sh [--rounds 3] [--sessions 50] [--messages 10000]
#                         [--size 5120] [--compare-cache] [--profile DIR]
#                         [--min-ratio 0.5] [--baseline BIN] [--postfix]
#   --profile DIR   after the rounds, one more node run with a 5 s CPU
#                   profile and an allocation profile (http.pprof) in DIR
#   --min-ratio R   exit 1 when the median node/ceiling ratio is below R
#
# Needs smtp-source and smtp-sink (Debian: apt-get install postfix; Postfix
# itself need not be configured or running; --postfix runs its own instance
# and needs root) and Go (or MXGRID_BIN=path).
# Everything listens on 127.0.0.1 and is stopped on exit.
set -euo pipefail

rounds=3 sessions=50 messages=10000 size=5120 compare_cache=0 profile_dir="" min_ratio="" baseline_bin="" with_postfix=0
while [[ $# -gt 0 ]]; do
	case "$1" in
	--rounds) rounds=$2; shift 2 ;;
	--sessions) sessions=$2; shift 2 ;;
	--messages) messages=$2; shift 2 ;;
	--size) size=$2; shift 2 ;;
	--compare-cache) compare_cache=1; shift ;;
	--profile) profile_dir=$2; shift 2 ;;
	--min-ratio) min_ratio=$2; shift 2 ;;
	--baseline) baseline_bin=$2; shift 2 ;;
	--postfix) with_postfix=1; shift ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench-smtp.sh: unknown argument $1 (--help)" >&2; exit 2 ;;
	esac
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for tool in smtp-source smtp-sink curl; do
	command -v "$tool" >/dev/null || [[ -x /usr/sbin/$tool ]] || die "$tool not found (apt-get install postfix curl)"
done
bench_name=mxgrid-bench
postfix_dir=""
on_exit() {
	[[ -z $postfix_dir ]] || postfix -c "$postfix_dir" stop >/dev/null 2>&1
}
# shellcheck source=scripts/bench-lib.sh
source "$repo/scripts/bench-lib.sh"

# start_sink PORT starts an smtp-sink; sets sink_pid.
start_sink() {
	smtp-sink "${sink_user[@]}" "127.0.0.1:$1" 1024 >/dev/null 2>&1 &
	sink_pid=$!
	pids+=($!)
	wait_port "$1"
}

# start_node NAME SINK_PORT CACHE(true|false) [BIN] starts a node; sets
# node_smtp and node_mgmt.
start_node() {
	local name=$1 sink=$2 cache=$3 node_bin=${4:-$bin}
	node_smtp=$(free_port)
	node_mgmt=$(free_port)
	local http gossip
	http=$(free_port)
	gossip=$(free_port)
	mkdir -p "$work/$name"
	cat >"$work/$name/node.yaml" <<EOF
node: {name: $name}
log: {level: warn}
data_dir: $work/$name/data
smtp: {listen: "127.0.0.1:$node_smtp", hostname: $name.bench.test, max_connections_per_ip: 1000}
http: {listen: "127.0.0.1:$http", management_listen: "127.0.0.1:$node_mgmt", pprof: true}
cluster: {bind: "127.0.0.1:$gossip"}
relay: {cache: {enabled: $cache}}
domains:
  - {name: example.org, route: "127.0.0.1:$sink", tls: none}
EOF
	"$node_bin" serve --config "$work/$name/node.yaml" >"$work/$name/log" 2>&1 &
	pids+=($!)
	node_pid=$!
	wait_port "$node_smtp"
}

# start_postfix SINK_PORT starts a private Postfix instance (its own
# configuration, queue and log under $work/postfix) that relays example.org
# to SINK_PORT; sets postfix_smtp.
start_postfix() {
	local sink=$1
	[[ $(id -u) == 0 ]] || die "--postfix needs root (Postfix's master starts as root)"
	postfix_smtp=$(free_port)
	postfix_dir=$work/postfix
	# Postfix's daemons run as the postfix user and must reach their queue.
	chmod 755 "$work"
	mkdir -p "$postfix_dir/queue" "$postfix_dir/data"
	chown postfix "$postfix_dir/data"
	cat >"$postfix_dir/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $postfix_dir/queue
data_directory = $postfix_dir/data
maillog_file = $postfix_dir/maillog
maillog_file_prefixes = $postfix_dir
syslog_name = postfix-bench
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = postfix.bench.test
mydestination =
alias_maps =
local_recipient_maps =
relay_domains = example.org
transport_maps = inline:{example.org=smtp:[127.0.0.1]:$sink}
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
default_process_limit = 200
EOF
	# Only the services a relay uses, none chrooted (the queue is not
	# where a chroot would expect its files).
	cat >"$postfix_dir/master.cf" <<EOF
127.0.0.1:$postfix_smtp inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
EOF
	# Postfix reports a fatal start-up error to stderr only on a terminal.
	script -qec "postfix -c $postfix_dir start" /dev/null >"$work/postfix-start.log" 2>&1 ||
		die "Postfix did not start: $(tail -3 "$work/postfix-start.log")"
	wait_port "$postfix_smtp"
}

# postfix_drained waits until the private Postfix's queue is empty.
postfix_drained() {
	local deadline=$((SECONDS + 120))
	until postqueue -c "$postfix_dir" -p 2>/dev/null | grep -q "Mail queue is empty"; do
		((SECONDS < deadline)) || die "Postfix's queue did not empty in 120 s"
		sleep 0.5
	done
}

# run PORT prints the messages/s of one smtp-source run against PORT, and
# leaves smtp-source's user and system seconds in $work/source.time.
run() {
	local start end status=0 TIMEFORMAT='%U %S'
	start=$(date +%s.%N)
	{ time smtp-source -s "$sessions" -m "$messages" -l "$size" -f sender@bench.test -t rcpt@example.org \
		-M client.bench.test "127.0.0.1:$1" 2>>"$work/smtp-source.err"; } 2>"$work/source.time" || status=$?
	((status == 0)) || die "smtp-source against port $1 failed: $(tail -3 "$work/smtp-source.err")"
	end=$(date +%s.%N)
	awk -v m="$messages" -v s="$start" -v e="$end" 'BEGIN { printf "%.0f\n", m / (e - s) }'
}

# cpu_ticks PID prints the process's user + system CPU time in clock ticks.
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# allocated PORT prints the node's go_memstats_alloc_bytes_total.
allocated() {
	curl -fsS "http://127.0.0.1:$1/metrics" | awk '/^go_memstats_alloc_bytes_total / { printf "%.0f\n", $2 }'
}

# transactions PORT prints "ok other" from a node's transaction counter.
transactions() {
	curl -fsS "http://127.0.0.1:$1/metrics" | awk '
		/^mxgrid_smtp_transactions_total\{/ {
			if ($0 ~ /class="2xx"/) ok += $NF; else other += $NF
		}
		END { printf "%d %d\n", ok, other }'
}

declare -A port mgmt pid sinkpid
ceiling_port=$(free_port)
start_sink "$ceiling_port"
port[ceiling]=$ceiling_port sinkpid[ceiling]=$sink_pid
paths=(ceiling node)
node_sink=$(free_port)
start_sink "$node_sink"
sinkpid[node]=$sink_pid
start_node node "$node_sink" true
port[node]=$node_smtp mgmt[node]=$node_mgmt pid[node]=$node_pid
if ((compare_cache)); then
	nocache_sink=$(free_port)
	start_sink "$nocache_sink"
	sinkpid[nocache]=$sink_pid
	start_node nocache "$nocache_sink" false
	port[nocache]=$node_smtp mgmt[nocache]=$node_mgmt pid[nocache]=$node_pid
	paths+=(nocache)
fi
if [[ -n $baseline_bin ]]; then
	baseline_sink=$(free_port)
	start_sink "$baseline_sink"
	sinkpid[baseline]=$sink_pid
	start_node baseline "$baseline_sink" true "$baseline_bin"
	port[baseline]=$node_smtp mgmt[baseline]=$node_mgmt pid[baseline]=$node_pid
	paths+=(baseline)
fi
if ((with_postfix)); then
	postfix_sink=$(free_port)
	start_sink "$postfix_sink"
	sinkpid[postfix]=$sink_pid
	start_postfix "$postfix_sink"
	port[postfix]=$postfix_smtp
	paths+=(postfix)
fi

log "mxgrid $("$bin" version 2>/dev/null | head -1); $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
log "$rounds rounds x (${paths[*]}): $sessions sessions, $messages messages of $size bytes each"
# A short warm-up per path: first connections, page faults, the model's
# first use are not what we measure.
for p in "${paths[@]}"; do
	saved=$messages
	messages=500
	run "${port[$p]}" >/dev/null
	messages=$saved
	[[ $p != postfix ]] || postfix_drained
done

declare -A ratios cpus allocs sources sinks
ticks=$(getconf CLK_TCK)
# us_per_msg TICKS_BEFORE TICKS_AFTER prints the CPU microseconds a message.
us_per_msg() {
	awk -v a="$1" -v b="$2" -v t="$ticks" -v m="$messages" 'BEGIN { printf "%.0f", (b - a) / t / m * 1e6 }'
}
printf '%-6s' round
for p in "${paths[@]}"; do printf '%23s' "$p msg/s"; done
for p in "${paths[@]:1}"; do printf '%23s' "$p/ceiling"; done
for p in "${paths[@]:1}"; do printf '%23s' "$p CPU us/msg"; done
for p in "${paths[@]:1}"; do printf '%23s' "$p alloc KB/msg"; done
printf '\n'
for ((r = 1; r <= rounds; r++)); do
	declare -A rate cpu alloc
	for p in "${paths[@]}"; do
		if [[ -n ${pid[$p]:-} ]]; then
			before=$(cpu_ticks "${pid[$p]}")
			alloc_before=$(allocated "${mgmt[$p]}")
		fi
		sink_before=$(cpu_ticks "${sinkpid[$p]}")
		rate[$p]=$(run "${port[$p]}")
		sources[$p]+="$(awk -v m="$messages" '{ printf "%.0f", ($1 + $2) / m * 1e6 }' "$work/source.time") "
		cpu[$p]=- alloc[$p]=-
		if [[ -n ${pid[$p]:-} ]]; then
			cpu[$p]=$(us_per_msg "$before" "$(cpu_ticks "${pid[$p]}")")
			alloc[$p]=$(awk -v a="$alloc_before" -v b="$(allocated "${mgmt[$p]}")" -v m="$messages" 'BEGIN { printf "%.0f", (b - a) / m / 1024 }')
		fi
		[[ $p != postfix ]] || postfix_drained
		# After the drain: Postfix delivers to its sink from its queue.
		sinks[$p]+="$(us_per_msg "$sink_before" "$(cpu_ticks "${sinkpid[$p]}")") "
	done
	printf '%-6s' "$r"
	for p in "${paths[@]}"; do printf '%23s' "${rate[$p]}"; done
	for p in "${paths[@]:1}"; do
		ratio=$(awk -v a="${rate[$p]}" -v b="${rate[ceiling]}" 'BEGIN { printf "%.2f", a / b }')
		ratios[$p]+="$ratio "
		cpus[$p]+="${cpu[$p]} "
		allocs[$p]+="${alloc[$p]} "
		printf '%23s' "$ratio"
	done
	for p in "${paths[@]:1}"; do printf '%23s' "${cpu[$p]}"; done
	for p in "${paths[@]:1}"; do printf '%23s' "${alloc[$p]}"; done
	printf '\n'
done

median() {
	printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

status=0
for p in "${paths[@]:1}"; do
	if [[ -z ${mgmt[$p]:-} ]]; then
		printf 'median %s/ceiling: %s\n' "$p" "$(median ${ratios[$p]})"
		continue
	fi
	read -r ok other < <(transactions "${mgmt[$p]}")
	if ((other > 0)); then
		log "$p: $other transactions not answered 2xx (of $((ok + other))): the run does not count"
		status=1
	fi
	median=$(median ${ratios[$p]})
	printf 'median %s/ceiling: %s, CPU %s us/msg, allocated %s KB/msg (%d transactions, all 2xx: %s)\n' "$p" "$median" "$(median ${cpus[$p]})" "$(median ${allocs[$p]})" "$ok" "$([[ $other == 0 ]] && echo yes || echo no)"
	if [[ $p == node && -n $min_ratio ]] && awk -v m="$median" -v r="$min_ratio" 'BEGIN { exit !(m < r) }'; then
		log "median node/ceiling $median is below $min_ratio"
		status=1
	fi
done
curl -fsS "http://127.0.0.1:${mgmt[node]}/metrics" | grep -E '^mxgrid_relay_cache_(hits|misses|stale)_total ' | sed 's/^/node: /'

# Where the CPU went, medians over the rounds (Postfix's own processes are
# not counted: its path shows only smtp-source and its sink).
ceiling_cpu=$(awk -v a="$(median ${sources[ceiling]})" -v b="$(median ${sinks[ceiling]})" 'BEGIN { print a + b }')
printf '%-10s%23s%23s%23s%23s\n' path "smtp-source us/msg" "server us/msg" "smtp-sink us/msg" "CPU-bound ratio"
for p in "${paths[@]}"; do
	src=$(median ${sources[$p]}) snk=$(median ${sinks[$p]}) srv=- bound=-
	if [[ -n ${pid[$p]:-} ]]; then
		srv=$(median ${cpus[$p]})
		bound=$(awk -v c="$ceiling_cpu" -v a="$src" -v b="$srv" -v d="$snk" 'BEGIN { printf "%.2f", c / (a + b + d) }')
	fi
	printf '%-10s%23s%23s%23s%23s\n' "$p" "$src" "$srv" "$snk" "$bound"
done

if [[ -n $profile_dir ]]; then
	mkdir -p "$profile_dir"
	log "profiling one more node run into $profile_dir"
	curl -fsS "http://127.0.0.1:${mgmt[node]}/debug/pprof/profile?seconds=5" -o "$profile_dir/cpu.pprof" &
	cpid=$!
	curl -fsS "http://127.0.0.1:${mgmt[node]}/debug/pprof/allocs" -o "$profile_dir/allocs-before.pprof"
	saved=$messages
	messages=$((messages * 2))
	run "${port[node]}" >/dev/null
	messages=$saved
	wait "$cpid"
	curl -fsS "http://127.0.0.1:${mgmt[node]}/debug/pprof/allocs" -o "$profile_dir/allocs-after.pprof"
	log "go tool pprof -top $profile_dir/cpu.pprof; go tool pprof -sample_index=alloc_space -base $profile_dir/allocs-before.pprof -top $profile_dir/allocs-after.pprof"
fi
exit $status
