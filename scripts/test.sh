#!/usr/bin/env bash
# The project's test command (README: `make test`, which runs this script).
#
# It installs the Debian packages the integration tests need (only when missing),
# starts private, throwaway instances of memcached, PostgreSQL and clamd on
# loopback under a temporary run directory, exports their addresses as
# MXGRID_TEST_* variables (read by internal/testenv), then runs go vet, go test
# and every fuzz target briefly. Whatever happens, the services are stopped on exit.
#
# The services are shared by all packages' tests, which run in parallel: a test
# that stops or breaks a service must start its own instance with
# testenv.StartClamd / testenv.StartMemcached, and a test that needs tables uses
# testenv.PostgresDB (a private database), never the shared mxgrid_test schema.
#
# Usage:
#   scripts/test.sh                       # vet + all tests + fuzz (each target briefly)
#   scripts/test.sh -run TestX ./smtpd/   # extra args go to `go test`; fuzzing is skipped
#                                         # when go test flags are given
#   scripts/test.sh ./scanner/...         # only these packages (vet, test, fuzz)
#   scripts/test.sh ./third_party/go-smtp # the patched go-smtp, a module of its own
#                                         # (a whole run includes it, and go-message)
#
# Environment knobs:
#   MXGRID_TEST_SKIP_FUZZ=1      skip fuzzing
#   MXGRID_TEST_FUZZ=1           fuzz even when go test flags were given
#   MXGRID_TEST_FUZZTIME=10s     time per fuzz target, whole seconds
#   MXGRID_TEST_FUZZ_BUDGET=180  upper bound, in seconds, for all fuzz targets together
#   MXGRID_TEST_TIMEOUT=20m      go test -timeout
#   MXGRID_TEST_KEEP=1           keep the run directory (service logs) after exit
#   MXGRID_COMPOSE_TEST=1        run the compose stack test (scripts/compose-test.sh)
#                                outside CI too (CI=true always runs it)
#   MXGRID_CORPUS=dir            training corpus (default: <repo>/../shared/corpus/train)
set -euo pipefail

started_at=$(date +%s)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

log() { printf '[test.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# ---------------------------------------------------------------- packages

# Debian package -> a file (glob) it must provide. Checking both the dpkg status and the
# file catches half-installed packages (a background install that died halfway
# was seen on this kind of machine).
declare -A pkg_file=(
	[memcached]=/usr/bin/memcached
	[clamav-daemon]=/usr/sbin/clamd
	[clamav]=/usr/bin/clamscan
	[chromium]=/usr/bin/chromium
	[postgresql]="/usr/lib/postgresql/*/bin/initdb"
	[postfix]=/usr/sbin/smtp-sink
	[swaks]=/usr/bin/swaks
	[prometheus]=/usr/bin/prometheus
)
pkg_order=(memcached clamav-daemon clamav chromium postgresql postfix swaks prometheus)

pkg_installed() {
	local status
	status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
	[ "$status" = "install ok installed" ] && compgen -G "${pkg_file[$1]}" >/dev/null
}

ensure_packages() {
	local missing=() p
	if ! command -v dpkg-query >/dev/null 2>&1; then
		# Not Debian: we cannot install, so rely on what is on PATH and let
		# the service start-up below fail with a clear message if something is absent.
		log "dpkg not found: not a Debian system, skipping package checks"
		return 0
	fi
	for p in "${pkg_order[@]}"; do
		pkg_installed "$p" || missing+=("$p")
	done
	[ "${#missing[@]}" -eq 0 ] && return 0

	if ! is_root; then
		die "missing Debian packages: ${missing[*]}
  install them as root (nothing gets started: policy-rc.d blocks it, postfix stays unconfigured):
    printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
	fi

	log "installing missing Debian packages: ${missing[*]}"
	local t0 created_policy=0
	t0=$(date +%s)
	# policy-rc.d exiting 101 stops the packages' maintainer scripts from starting
	# system daemons (a 5432 cluster, clamd, freshclam, memcached on 11211): the
	# tests use their own instances. Remove it afterwards only if we created it.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		created_policy=1
	fi
	echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
	export DEBIAN_FRONTEND=noninteractive
	# Foreground, no stdin: CI has none, and a background install was seen to fail halfway.
	apt-get update </dev/null
	if ! apt-get install -y --no-install-recommends "${missing[@]}" </dev/null; then
		log "apt-get install failed; repairing with dpkg --configure -a and retrying once"
		dpkg --configure -a </dev/null
		apt-get install -y --no-install-recommends "${missing[@]}" </dev/null
	fi
	if [ "$created_policy" -eq 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
	for p in "${missing[@]}"; do
		pkg_installed "$p" || die "package $p still not installed after apt-get install"
	done
	log "packages installed in $(($(date +%s) - t0))s"
}

# ---------------------------------------------------------------- helpers

# can_connect PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
# Uses bash's /dev/tcp so no extra tool (nc, ss, python) is needed.
can_connect() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# free_port: sets REPLY to a port that nobody listens on now and that this
# script has not handed out yet (a global, not echo: a $(...) subshell would
# lose the bookkeeping). Ports come from below the kernel's ephemeral range
# (ip_local_port_range, 32768-60999 by default): a port there may be the
# local end of any outgoing connection, which no connect test sees, and a
# daemon then fails to bind it (clamd did, in a CI run beside other tests).
# A race with another process remains possible; the readiness wait below
# then reports it clearly.
used_ports=" "
port_low=20000 port_span=40000
if read -r ephemeral_low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null && ((ephemeral_low > port_low + 1000)); then
	port_span=$((ephemeral_low - port_low))
fi
free_port() {
	local p i
	for ((i = 0; i < 200; i++)); do
		p=$((port_low + (RANDOM * 32768 + RANDOM) % port_span))
		case "$used_ports" in *" $p "*) continue ;; esac
		if ! can_connect "$p"; then
			used_ports+="$p "
			REPLY=$p
			return 0
		fi
	done
	die "no free loopback port found"
}

# wait_port NAME PORT PID LOGFILE [SECONDS]: bounded wait until PORT accepts
# connections; fails early when the process died, showing its log.
wait_port() {
	local name=$1 port=$2 pid=$3 logfile=$4 secs=${5:-30} i
	for ((i = 0; i < secs * 10; i++)); do
		if can_connect "$port"; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			log "$name exited before accepting connections on 127.0.0.1:$port; last log lines:"
			tail -n 30 "$logfile" >&2 || true
			die "$name failed to start"
		fi
		sleep 0.1
	done
	log "$name did not accept connections on 127.0.0.1:$port within ${secs}s; last log lines:"
	tail -n 30 "$logfile" >&2 || true
	die "$name start timed out"
}

# as_user USER CMD...: run CMD as USER when we are root (postgres refuses to run
# as root), as ourselves otherwise.
as_user() {
	local user=$1
	shift
	if is_root; then
		runuser -u "$user" -- "$@"
	else
		"$@"
	fi
}

# ---------------------------------------------------------------- services

run_dir=""
memcached_pid=""
clamd_pid=""
pg_data=""
pg_bin=""

cleanup() {
	local rc=$?
	set +e
	# Stop everything we started, whatever state the run is in.
	if [ -n "$memcached_pid" ]; then
		# KILL: its SIGTERM shutdown takes ~0.7 s and the cache is throwaway.
		kill -KILL "$memcached_pid" 2>/dev/null
	fi
	if [ -n "$clamd_pid" ]; then
		kill "$clamd_pid" 2>/dev/null
	fi
	if [ -n "$pg_data" ] && [ -f "$pg_data/postmaster.pid" ]; then
		# immediate: the cluster is thrown away, no need for a checkpoint.
		as_user postgres "$pg_bin/pg_ctl" -D "$pg_data" -m immediate -w -t 20 stop >/dev/null 2>&1
	fi
	[ -n "$memcached_pid" ] && wait "$memcached_pid" 2>/dev/null
	[ -n "$clamd_pid" ] && wait "$clamd_pid" 2>/dev/null
	if [ -n "$run_dir" ] && [ -d "$run_dir" ]; then
		if [ "${MXGRID_TEST_KEEP:-}" = 1 ]; then
			log "run directory kept: $run_dir"
		else
			rm -rf "$run_dir"
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT
# Turn signals into a normal exit so the EXIT trap runs once and reports failure.
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

find_pg_bin() {
	local d
	# Debian keeps the server binaries off PATH, one directory per major version.
	d=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -type d -name bin 2>/dev/null | sort -V | tail -n 1)
	if [ -n "$d" ] && [ -x "$d/initdb" ]; then
		echo "$d"
	elif command -v initdb >/dev/null 2>&1; then
		dirname "$(readlink -f "$(command -v initdb)")"
	else
		die "PostgreSQL server binaries (initdb, pg_ctl) not found"
	fi
}

find_bin() {
	# find_bin NAME FALLBACK...: first of PATH lookup and the fallbacks that is executable.
	local name=$1 c
	shift
	c=$(command -v "$name" 2>/dev/null) && { echo "$c"; return 0; }
	for c in "$@"; do
		[ -x "$c" ] && { echo "$c"; return 0; }
	done
	die "$name not found (looked on PATH and in: $*)"
}

start_memcached() {
	local port bin args
	bin=$(find_bin memcached /usr/bin/memcached)
	free_port
	port=$REPLY
	args=(-l 127.0.0.1 -p "$port" -U 0 -m 64 -c 1024)
	# memcached refuses to run as root without -u.
	if is_root; then args+=(-u memcache); fi
	"$bin" "${args[@]}" >"$run_dir/memcached.log" 2>&1 &
	memcached_pid=$!
	wait_port memcached "$port" "$memcached_pid" "$run_dir/memcached.log" 10
	export MXGRID_TEST_MEMCACHED="127.0.0.1:$port"
	export MXGRID_TEST_MEMCACHED_BIN="$bin"
}

start_postgres() {
	local port sock
	pg_bin=$(find_pg_bin)
	free_port
	port=$REPLY
	pg_data="$run_dir/pgdata"
	sock="$run_dir/pgsock"
	mkdir -p "$pg_data" "$sock"
	: >"$run_dir/postgres.log"
	if is_root; then chown postgres: "$pg_data" "$sock" "$run_dir/postgres.log"; fi
	chmod 700 "$pg_data"
	# --no-sync and fsync=off: the cluster lives for one test run, durability is moot.
	as_user postgres "$pg_bin/initdb" -D "$pg_data" -U postgres --auth=trust -E UTF8 \
		--locale=C --no-sync >"$run_dir/initdb.log" 2>&1 ||
		{
			tail -n 30 "$run_dir/initdb.log" >&2
			die "initdb failed"
		}
	as_user postgres "$pg_bin/pg_ctl" -D "$pg_data" -l "$run_dir/postgres.log" -w -t 30 \
		-o "-p $port -k '$sock' -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
		start >/dev/null ||
		{
			tail -n 30 "$run_dir/postgres.log" >&2
			die "PostgreSQL failed to start"
		}
	"$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres \
		-c 'CREATE DATABASE mxgrid_test' </dev/null ||
		die "could not create database mxgrid_test"
	export MXGRID_TEST_POSTGRES_DSN="postgres://postgres@127.0.0.1:$port/mxgrid_test?sslmode=disable"
}

# write_clamd_conf CONF PORT DBDIR WORKDIR: the same settings testenv.StartClamd
# uses. No User line, so clamd runs as whoever starts it (root in CI).
write_clamd_conf() {
	cat >"$1" <<EOF
Foreground yes
DatabaseDirectory $3
TCPSocket $2
TCPAddr 127.0.0.1
LogFile $4/clamd.log
TemporaryDirectory $4
StreamMaxLength 25M
MaxThreads 4
SelfCheck 0
ScanMail yes
ScanArchive yes
ScanHTML yes
Bytecode no
EOF
}

start_clamd() {
	local port bin conf reply
	bin=$(find_bin clamd /usr/sbin/clamd)
	free_port
	port=$REPLY
	conf="$run_dir/clamd.conf"
	mkdir -p "$run_dir/clamd"
	write_clamd_conf "$conf" "$port" "$repo/testdata/clamav" "$run_dir/clamd"
	"$bin" -c "$conf" >"$run_dir/clamd/stdout.log" 2>&1 &
	clamd_pid=$!
	wait_port clamd "$port" "$clamd_pid" "$run_dir/clamd/clamd.log" 60
	# A listening socket is not enough: ask clamd itself (databases loaded).
	reply=$(
		exec 3<>"/dev/tcp/127.0.0.1/$port"
		printf 'zPING\0' >&3
		IFS= read -r -d '' -t 10 r <&3 || true
		printf '%s' "$r"
	)
	[ "$reply" = PONG ] || die "clamd on 127.0.0.1:$port answered '$reply' to PING, want PONG"
	export MXGRID_TEST_CLAMD="tcp://127.0.0.1:$port"
	export MXGRID_TEST_CLAMD_CONF="$conf"
	export MXGRID_TEST_CLAMD_BIN="$bin"
	export MXGRID_TEST_CLAMD_DB="$repo/testdata/clamav"
}

start_services() {
	local t0
	t0=$(date +%s%N)
	run_dir=$(mktemp -d "${TMPDIR:-/tmp}/mxgrid-test.XXXXXX")
	# Daemons running as memcache/postgres must be able to traverse it.
	chmod 755 "$run_dir"
	start_memcached
	start_postgres
	start_clamd
	export MXGRID_TEST_CHROMIUM
	MXGRID_TEST_CHROMIUM=$(find_bin chromium /usr/bin/chromium /usr/bin/chromium-browser)
	export MXGRID_TEST_SMTP_SINK
	MXGRID_TEST_SMTP_SINK=$(find_bin smtp-sink /usr/sbin/smtp-sink)
	export MXGRID_TEST_SMTP_SOURCE
	MXGRID_TEST_SMTP_SOURCE=$(find_bin smtp-source /usr/sbin/smtp-source)
	export MXGRID_TEST_SWAKS
	MXGRID_TEST_SWAKS=$(find_bin swaks /usr/bin/swaks)
	# Started per test (testenv.StartPrometheus), not shared: each scrapes its own nodes.
	export MXGRID_TEST_PROMETHEUS
	MXGRID_TEST_PROMETHEUS=$(find_bin prometheus /usr/bin/prometheus)
	export MXGRID_TEST_RUNDIR="$run_dir"
	export MXGRID_CHAOS_REPORT="$run_dir/chaos-report.txt"
	# The corpus sits beside the repo in CI (../shared); a clone elsewhere sets MXGRID_CORPUS.
	if [ -z "${MXGRID_CORPUS:-}" ] && [ -d "$repo/../shared/corpus/train" ]; then
		export MXGRID_CORPUS
		MXGRID_CORPUS=$(cd "$repo/../shared/corpus/train" && pwd)
	fi
	services_ms=$((($(date +%s%N) - t0) / 1000000))
	log "services up in ${services_ms} ms (run dir $run_dir):"
	env | grep -E '^MXGRID_(TEST_|CORPUS=)' | sort | sed 's/^/    /' >&2
}

# ---------------------------------------------------------------- go steps

command -v go >/dev/null 2>&1 || die "go not found on PATH (this project needs Go $(sed -n 's/^go //p' go.mod) or newer)"

# Split the arguments: package patterns select what vet/test/fuzz cover; anything
# else (flags and their values) goes to go test only.
pkgs=()
test_flags=()
for a in "$@"; do
	case "$a" in
	./* | ../* | . | github.com/mxgrid/mxgrid*) pkgs+=("$a") ;;
	*) test_flags+=("$a") ;;
	esac
done
if [ "${#pkgs[@]}" -eq 0 ]; then pkgs=(./...); fi

# Modules of their own in the tree (patched copies wired in with a replace):
# the main module's ./... does not reach them, so a whole run, or one naming
# such a module (./third_party/go-smtp/...), vets, tests and fuzzes it in its
# own directory. main_pkgs are the selected packages of the main module, mods
# the selected nested modules.
nested_modules=(third_party/go-smtp third_party/go-message third_party/go-msgauth)
# Vet checks a nested module's upstream code does not pass: go-message's
# Entity.WriteTo predates io.WriterTo (its signature is its API), and its
# tests build net/mail.Address unkeyed. Our patches there are vetted by
# everything else.
declare -A nested_vet_flags=([third_party/go-message]="-stdmethods=false -composites=false")
main_pkgs=()
mods=()
for p in "${pkgs[@]}"; do
	for m in "${nested_modules[@]}"; do
		case "$p" in ./"$m" | ./"$m"/*)
			mods+=("$m")
			continue 2
			;;
		esac
	done
	main_pkgs+=("$p")
done
if [ "${pkgs[*]}" = ./... ]; then mods=("${nested_modules[@]}"); fi

# go_each CMD [ARGS...] runs `go CMD ARGS` on main_pkgs, then in each selected
# nested module on its ./...; it fails when any of them failed.
go_each() {
	local rc=0 m
	if [ "${#main_pkgs[@]}" -gt 0 ]; then
		go "$@" "${main_pkgs[@]}" || rc=1
	fi
	for m in "${mods[@]}"; do
		local extra=()
		if [ "$1" = vet ] && [ -n "${nested_vet_flags[$m]:-}" ]; then
			read -r -a extra <<<"${nested_vet_flags[$m]}"
		fi
		(cd "$repo/$m" && go "$1" "${extra[@]}" "${@:2}" ./...) || rc=1
	done
	return "$rc"
}

fuzz_wanted=1
if [ "${MXGRID_TEST_SKIP_FUZZ:-}" = 1 ]; then
	fuzz_wanted=0
	fuzz_skip_reason="MXGRID_TEST_SKIP_FUZZ=1"
elif [ "${#test_flags[@]}" -gt 0 ] && [ "${MXGRID_TEST_FUZZ:-}" != 1 ]; then
	fuzz_wanted=0
	fuzz_skip_reason="go test flags given (MXGRID_TEST_FUZZ=1 forces fuzzing)"
fi

# Check the fuzz knobs before starting anything.
fuzztime=${MXGRID_TEST_FUZZTIME:-10s}
fuzztime=${fuzztime%s}
[[ "$fuzztime" =~ ^[0-9]+$ ]] || die "MXGRID_TEST_FUZZTIME must be whole seconds like 10s, got '${MXGRID_TEST_FUZZTIME}'"
fuzz_budget=${MXGRID_TEST_FUZZ_BUDGET:-180}
[[ "$fuzz_budget" =~ ^[0-9]+$ ]] || die "MXGRID_TEST_FUZZ_BUDGET must be a number of seconds, got '$fuzz_budget'"

ensure_packages
start_services

failures=()
vet_result=ok
test_result=ok
fuzz_result=skipped

log "go vet ${main_pkgs[*]} ${mods[*]}; gofmt -l ."
if ! go_each vet; then
	vet_result=FAIL
	failures+=(vet)
fi
# gofmt over the whole tree (a quarter of a second): a file left
# unformatted fails the vet stage, whatever packages were asked for.
if unformatted=$(cd "$repo" && gofmt -l .) && [ -n "$unformatted" ]; then
	log "not gofmt-formatted: $unformatted"
	vet_result=FAIL
	failures+=(vet)
fi

log "go test -count=1 -timeout=${MXGRID_TEST_TIMEOUT:-20m} ${test_flags[*]} ${main_pkgs[*]} ${mods[*]}"
t_test=$(date +%s)
if ! go_each test -count=1 -timeout="${MXGRID_TEST_TIMEOUT:-20m}" "${test_flags[@]}"; then
	test_result=FAIL
	failures+=(test)
fi
t_test=$(($(date +%s) - t_test))
if [[ -n "${MXGRID_CHAOS_REPORT:-}" && -s "$MXGRID_CHAOS_REPORT" ]]; then
	log "chaos test counts:"
	cat "$MXGRID_CHAOS_REPORT"
fi

# fuzz_targets: lines "DIR NAME" for every fuzz target in the selected packages.
# A cheap grep finds the candidate directories, then `go test -list` (the
# authority: build tags, test files of other packages) names the targets.
fuzz_targets() {
	local dirs d name
	dirs=$(go_each list -f '{{.Dir}}' 2>/dev/null |
		while read -r d; do
			grep -lsE '^func Fuzz[A-Za-z0-9_]*\(' "$d"/*_test.go >/dev/null 2>&1 && echo "$d"
		done) || true
	for d in $dirs; do
		(cd "$d" && go test -list '^Fuzz' .) 2>/dev/null | grep -E '^Fuzz' | while read -r name; do
			echo "$d $name"
		done || true
	done
}

# fuzz_one DIR NAME SECONDS fuzzes one target. A real finding is always saved
# under DIR/testdata/fuzz/NAME/. A failure that saved nothing and says
# "context deadline exceeded" is Go's fuzzing coordinator racing its own
# -fuzztime deadline (go.dev/issue/75804, fixed in Go 1.27; more likely on a
# loaded machine): the target is then fuzzed again for the number of inputs the
# first try reached, a budget counted in executions that has no deadline to
# race. Any other failure counts at once.
fuzz_one() {
	local dir=$1 name=$2 per=$3 before after out execs
	out="$run_dir/fuzz-$name.log"
	before=$(find "$dir/testdata/fuzz/$name" -type f 2>/dev/null | wc -l)
	# In the package's directory: Go fuzzes only packages of the module it runs
	# in, and a nested module is not the main one. Minimising a new input
	# defaults to 60 s, longer than the whole run.
	if (cd "$dir" && go test -run='^$' -fuzz="^${name}\$" -fuzztime="${per}s" -fuzzminimizetime=1s -timeout="$((per + 300))s" .) 2>&1 | tee "$out"; [ "${PIPESTATUS[0]}" -eq 0 ]; then
		return 0
	fi
	after=$(find "$dir/testdata/fuzz/$name" -type f 2>/dev/null | wc -l)
	if [ "$after" -ne "$before" ] || ! grep -q '^    context deadline exceeded$' "$out"; then
		return 1
	fi
	execs=$(grep -o 'execs: [0-9]*' "$out" | tail -1 | tr -dc 0-9)
	execs=${execs:-0}
	if [ "$execs" -lt 1000 ]; then execs=1000; fi
	log "fuzz $name hit Go's fuzztime deadline race with no input saved: again for ${execs} executions"
	(cd "$dir" && go test -run='^$' -fuzz="^${name}\$" -fuzztime="${execs}x" -fuzzminimizetime=1s -timeout="$((per + 300))s" .)
}

fuzz_count=0
fuzz_failed=()
if [ "$fuzz_wanted" -eq 1 ]; then
	mapfile -t targets < <(fuzz_targets)
	fuzz_count=${#targets[@]}
	if [ "$fuzz_count" -eq 0 ]; then
		fuzz_result="none found"
	else
		# Bound the total: each target gets FUZZTIME, or less when there are many.
		per=$fuzztime
		budget=$fuzz_budget
		if [ $((per * fuzz_count)) -gt "$budget" ]; then
			per=$((budget / fuzz_count))
			if [ "$per" -lt 2 ]; then per=2; fi
		fi
		log "fuzzing $fuzz_count target(s), ${per}s each"
		for tgt in "${targets[@]}"; do
			dir=${tgt% *}
			name=${tgt#* }
			# One target per invocation: Go refuses -fuzz matching several.
			log "fuzz $name in ${dir#"$repo"/}"
			if ! fuzz_one "$dir" "$name" "$per"; then
				fuzz_failed+=("${dir#"$repo"/}.$name")
			fi
		done
		if [ "${#fuzz_failed[@]}" -eq 0 ]; then
			fuzz_result="ok ($fuzz_count targets, ${per}s each)"
		else
			fuzz_result="FAIL (${fuzz_failed[*]}; failing inputs are under <pkg>/testdata/fuzz/)"
			failures+=(fuzz)
		fi
	fi
else
	fuzz_result="skipped: $fuzz_skip_reason"
fi

# The compose stack end to end (Docker; minutes): in CI, or on request, and
# only for a whole-suite run.
compose_result=skipped
if [[ ("${CI:-}" = true || "${MXGRID_COMPOSE_TEST:-}" = 1) && "${pkgs[*]}" = ./... && "${#test_flags[@]}" -eq 0 ]]; then
	log "compose test (scripts/compose-test.sh)"
	if bash scripts/compose-test.sh; then
		compose_result=ok
	else
		compose_result=FAIL
		failures+=(compose)
	fi
fi

elapsed=$(($(date +%s) - started_at))
echo
echo "== mxgrid test summary: services=${services_ms}ms vet=$vet_result test=$test_result (${t_test}s) fuzz=$fuzz_result compose=$compose_result total=${elapsed}s"
if [ "${#failures[@]}" -gt 0 ]; then
	echo "== RESULT: FAIL (${failures[*]})"
	exit 1
fi
echo "== RESULT: PASS"
