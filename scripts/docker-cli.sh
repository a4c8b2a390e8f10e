# Sourced by the image and compose scripts. Debian's docker.io client has
# BuildKit built in (needed to skip the Dockerfile's unused Go stage); a
# newer client without the buildx plugin, as some machines ship in
# /usr/local/bin, refuses DOCKER_BUILDKIT=1.
docker() { if [ -x /usr/bin/docker ]; then /usr/bin/docker "$@"; else command docker "$@"; fi; }
export DOCKER_BUILDKIT=1
