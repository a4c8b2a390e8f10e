#!/usr/bin/env bash
# Builds the runtime image (deploy/Dockerfile, stage "runtime") around a
# binary built here on the host, as a release pipeline would: no Go
# toolchain image is pulled and no Go runs in a container. Users build the
# same layout with plain `docker build -f deploy/Dockerfile .`.
#   scripts/image.sh [TAG]        (default mxgrid:local)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/docker-cli.sh
tag="${1:-mxgrid:local}"
version="$(git describe --tags --always --dirty 2>/dev/null || echo dev)"
revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${version}" -o "$ctx/mxgrid" ./cmd/mxgrid
mkdir -p -m 700 "$ctx/data/mxgrid"
tar -C "$ctx" -cf "$ctx/data.tar" data
docker build -q -f deploy/Dockerfile --target runtime \
	--build-arg BIN_FROM=host-bin --build-arg VERSION="$version" --build-arg REVISION="$revision" \
	-t "$tag" "$ctx" >/dev/null
echo "image $tag: $(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.1f MB", $1/1e6}'), version $version"
