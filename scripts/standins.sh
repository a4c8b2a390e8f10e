#!/usr/bin/env bash
# Makes every upstream image docker-compose.yml uses available locally.
# Where an image can be pulled (a user's machine) it is pulled; where it
# cannot (CI reaches Debian's archive and Go's module proxy, but no
# container registry), a stand-in with the same name is built from Debian
# packages (deploy/standins/Dockerfile.debian): the Debian base from
# debootstrap, a distroless-like runtime, PostgreSQL, memcached, ClamAV
# with the test signatures, Prometheus, and Mailpit built here with Go.
# Grafana has no stand-in: the compose test runs without its profile.
# Images already present are left alone, so a second run costs seconds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD

# image name -> stand-in stage in Dockerfile.debian
declare -A stage=(
	[gcr.io/distroless/static-debian12:nonroot]=distroless
	[postgres:16-bookworm]=postgres
	[memcached:1.6-bookworm]=memcached
	[clamav/clamav:stable]=clamav
	[axllent/mailpit:v1.27]=mailpit
	[prom/prometheus:v2.55.1]=prometheus
)
mailpit_module=github.com/axllent/mailpit@v1.27.11

. scripts/docker-cli.sh
have() { docker image inspect "$1" >/dev/null 2>&1; }
# A registry that cannot be reached either refuses at once or hangs on
# connect: bound the attempt.
pull() { [ "${STANDINS_NO_PULL:-}" != 1 ] && timeout 60 docker pull -q "$1" >/dev/null 2>&1; }

if ! have debian:bookworm && ! pull debian:bookworm; then
	echo "standins: debian:bookworm from debootstrap"
	rootfs=$(mktemp -d)
	debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >/dev/null
	tar -C "$rootfs" -c . | docker import - debian:bookworm >/dev/null
	rm -rf "$rootfs"
fi

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp deploy/standins/* "$ctx/"
mkdir "$ctx/clamav-db"
cp testdata/clamav/*.hdb testdata/clamav/*.ndb "$ctx/clamav-db/"
for image in "${!stage[@]}"; do
	if have "$image" || pull "$image"; then
		continue
	fi
	s=${stage[$image]}
	echo "standins: $image from Debian ($s)"
	if [ "$s" = mailpit ] && [ ! -x "$ctx/mailpit" ]; then
		GOBIN="$ctx" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "$mailpit_module"
	fi
	docker build -q -f "$ctx/Dockerfile.debian" --target "$s" -t "$image" "$ctx" >/dev/null
done
echo "standins: ready"
