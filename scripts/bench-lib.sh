# Sourced by the bench scripts (bench-smtp.sh, bench-bigmail.sh), which set
# repo and bench_name first: a work directory removed on exit, with every
# process whose pid is added to pids stopped first (and on_exit, when the
# script defines it, called before that); the mxgrid binary to run
# (MXGRID_BIN or built into the work directory); loopback port helpers.

PATH=$PATH:/usr/sbin
work=$(mktemp -d "/tmp/$bench_name.XXXXXX")
pids=()
cleanup() {
	if declare -F on_exit >/dev/null; then on_exit || true; fi
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

bin=${MXGRID_BIN:-}
if [[ -z $bin ]]; then
	echo "building mxgrid" >&2
	bin=$work/mxgrid
	(cd "$repo" && go build -o "$bin" ./cmd/mxgrid)
fi

# free_port prints a loopback TCP port nothing listens on, a new one each
# call.
used_ports=" "
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 20000))
		[[ $used_ports == *" $p "* ]] && continue
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			used_ports+="$p "
			echo "$p"
			return
		fi
	done
}

# wait_port waits up to 30 s for something to listen on 127.0.0.1:PORT.
wait_port() {
	local deadline=$((SECONDS + 30))
	until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
		if ((SECONDS >= deadline)); then
			echo "nothing listening on 127.0.0.1:$1 after 30 s" >&2
			exit 1
		fi
		sleep 0.1
	done
}

# smtp-sink drops privileges when run as root.
sink_user=()
[[ $(id -u) == 0 ]] && sink_user=(-u "$(id -un postfix 2>/dev/null || echo nobody)")
