#!/usr/bin/env bash
# The end-to-end compose test: docker-compose.yml run for real on this
# machine (deploy/compose_test.go, TestComposeStack). As root it installs
# what it needs from Debian (docker.io, docker-compose, debootstrap) and
# starts dockerd when none runs (stopping it again at the end); images that
# cannot be pulled are replaced by Debian stand-ins (scripts/standins.sh)
# and the mxgrid image is built around a host-built binary
# (scripts/image.sh). Under CI=true a machine that cannot run Docker fails
# the test; elsewhere it is skipped.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/docker-cli.sh
log() { printf '[compose-test %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
t0=$(date +%s)

unavailable() {
	if [ "${CI:-}" = true ]; then
		log "ERROR: $*"
		exit 1
	fi
	log "skipped: $*"
	exit 0
}

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ "${#need[@]}" -gt 0 ]; then
	[ "$(id -u)" -eq 0 ] || unavailable "missing ${need[*]} and not root to install them"
	log "installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq </dev/null
	# policy-rc.d keeps the package from starting a system dockerd: this
	# script starts its own and stops it afterwards.
	created_policy=0
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
		created_policy=1
	fi
	apt-get install -y -qq --no-install-recommends "${need[@]}" ca-certificates iptables </dev/null >/dev/null
	if [ "$created_policy" -eq 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
fi

dockerd_pid=""
cleanup() {
	if [ -n "$dockerd_pid" ]; then
		kill "$dockerd_pid" 2>/dev/null || true
		wait "$dockerd_pid" 2>/dev/null || true
		log "dockerd stopped"
	fi
}
trap cleanup EXIT
if ! docker info >/dev/null 2>&1; then
	[ "$(id -u)" -eq 0 ] || unavailable "no Docker engine and not root to start one"
	log "starting dockerd"
	dockerd >/tmp/mxgrid-compose-dockerd.log 2>&1 &
	dockerd_pid=$!
	for _ in $(seq 120); do
		docker info >/dev/null 2>&1 && break
		kill -0 "$dockerd_pid" 2>/dev/null || break
		sleep 0.5
	done
	if ! docker info >/dev/null 2>&1; then
		tail -20 /tmp/mxgrid-compose-dockerd.log >&2 || true
		unavailable "dockerd did not start"
	fi
fi

t1=$(date +%s)
bash scripts/standins.sh
t2=$(date +%s)
bash scripts/image.sh mxgrid:local
t3=$(date +%s)
log "tools $((t1 - t0))s, images (stand-ins) $((t2 - t1))s, mxgrid image $((t3 - t2))s"
rc=0
MXGRID_COMPOSE=docker-compose go test -tags compose -count=1 -timeout 20m -run '^TestComposeStack$' -v ./deploy || rc=$?
log "compose test $(($(date +%s) - t3))s; total $(($(date +%s) - t0))s"
exit "$rc"
