# Thiqa: build, run and test. `make run` and `make test` work on a fresh
# Debian machine: they install what is missing (scripts/install-deps.sh).

GO       ?= go
DATA     ?= data
BIN      := bin/thiqa
FUZZTIME ?= 10s
export GOFLAGS ?= -mod=mod
export CGO_ENABLED := 1

# The build identity `thiqa version` prints (see scripts/version.sh).
VERSION    := $(shell scripts/version.sh)
COMMIT     := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BUILD_DATE := $(shell date -u -d @$${SOURCE_DATE_EPOCH:-$$(date +%s)} +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS    := -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.buildDate=$(BUILD_DATE)

.PHONY: all build deb deps run test bench fuzz lint clean

all: build

deps:
	@scripts/install-deps.sh

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/thiqa

# deb builds thiqa_VERSION_ARCH.deb (binary, systemd unit, /etc/thiqa/thiqa.yaml,
# monitoring files) with dpkg-deb, offline; see deploy/debian/README.Debian.
deb: deps build
	scripts/build-deb.sh --bin $(BIN) --version $(VERSION)

# run prepares the data folder (SoftHSM token, keys, SQLite store) and serves
# every service on 127.0.0.1:8080.
run: deps build
	./$(BIN) init --data $(DATA)
	./$(BIN) serve --data $(DATA)

# test runs every test against the real parts: a private SoftHSM token
# directory and a throwaway PostgreSQL cluster started by scripts/testenv.sh.
test: deps
	scripts/testenv.sh $(GO) test -count=1 -timeout 18m ./...

# bench runs the Go benchmarks and the HSM load generator; see docs/benchmarks.md.
bench: deps build
	scripts/testenv.sh $(GO) test -run '^$$' -bench . -benchtime 2s ./hsm/ ./internal/audit/

# fuzz runs every fuzz target for FUZZTIME each.
fuzz: deps
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; \
	    scripts/testenv.sh $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin thiqa_*.deb
