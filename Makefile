# Developer entry points. `make test` is the project's test command (CI runs it via .ci/run).
GO ?= go

.PHONY: test build vet fmt-check compose-test image

# Installs missing Debian packages, starts throwaway memcached/PostgreSQL/clamd,
# runs go vet, go test and the fuzz targets (see scripts/test.sh for knobs).
# Pass go test arguments with ARGS, e.g. make test ARGS='-run TestX ./smtpd/'.
test:
	bash scripts/test.sh $(ARGS)

build:
	$(GO) build -o bin/mxgrid ./cmd/mxgrid

vet:
	$(GO) vet ./...

# Fails listing the Go files (tracked or new, not ignored) that gofmt would change.
fmt-check:
	@out=$$(git ls-files -co --exclude-standard '*.go' | xargs -r gofmt -l); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# docker-compose.yml end to end (installs and starts Docker as root when
# needed); scripts/test.sh runs it under CI=true.
compose-test:
	bash scripts/compose-test.sh

# The runtime image around a host-built binary, tagged mxgrid:local.
image:
	bash scripts/image.sh
