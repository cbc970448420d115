# Build and test entry points. Every go command uses -tags goolm (pure-Go Olm); cgo stays on (SQLite).
# `make test` installs what it needs (Debian packages via scripts/install-deps.sh, Dendrite via
# scripts/build-dendrite.sh, cached), then runs vet, every test including the e2e tests against real
# servers, and a short run of every fuzz target.

GO        ?= /usr/local/go/bin/go
TAGS      ?= goolm
GOFLAGS_T := -tags $(TAGS)
FUZZTIME  ?= 10s
# Bounds minimising a new input, which otherwise may take the whole FUZZTIME.
FUZZMINIMIZETIME ?= 5s
TESTFLAGS ?= -timeout 40m
BENCHFLAGS ?= -benchmem -run '^$$'
PKGS      ?= ./...

export PATH := /usr/local/go/bin:$(PATH)
export CGO_ENABLED := 1

.PHONY: all build deps dendrite vet tidy-check staticcheck test check test-only bench-report bench-scale bench-sink kill-test fuzz-short bench demo docker-test docker-lint firstrun-test testenv-up testenv-down clean

all: build

# ./bridge is the connector package's directory, so the binary goes to build/.
build:
	$(GO) build $(GOFLAGS_T) -o build/xmpp-bridge ./cmd/bridge

# Debian packages (root or sudo); a no-op when all are installed.
deps:
	scripts/install-deps.sh

# Dendrite v0.15.2, built once into ~/.cache/mxomemo.
dendrite:
	scripts/build-dendrite.sh >/dev/null

vet:
	$(GO) vet -tags '$(TAGS) integration' $(PKGS)

# go.mod/go.sum must be what `go mod tidy` makes of them (prints the diff and fails otherwise).
tidy-check:
	$(GO) mod tidy -diff

# Everything CI runs (scripts/test-all.sh keeps going past a failed step and lists the failures).
test:
	scripts/test-all.sh

check: deps dendrite tidy-check vet staticcheck test-only fuzz-short

staticcheck:
	scripts/staticcheck.sh

# The integration tag adds the real-Prosody tests of xmpp/ and omemoxmpp (Libervia included).
test-only:
	$(GO) test -tags '$(TAGS) integration' $(TESTFLAGS) $(PKGS)

# Every Fuzz* target, FUZZTIME each (one at a time: go test -fuzz takes one target per run).
# Only packages whose tests declare a Fuzz function are asked for their list.
fuzz-short:
	@set -e; \
	for pkg in $$($(GO) list $(GOFLAGS_T) -f '{{.ImportPath}} {{.Dir}}' $(PKGS) | while read -r p d; do \
			grep -qs '^func Fuzz' "$$d"/*_test.go && echo "$$p"; done); do \
		for f in $$($(GO) test $(GOFLAGS_T) -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
			$(GO) test $(GOFLAGS_T) -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) $$pkg >/tmp/fuzz-$$$$.log 2>&1 \
				|| { cat /tmp/fuzz-$$$$.log; rm -f /tmp/fuzz-$$$$.log; exit 1; }; \
		done; \
	done; rm -f /tmp/fuzz-$$$$.log

# Issue 13's figures beside their anchors and targets: the OMEMO engine beside libsignal and its floor,
# the bridge's CPU per message (Megolm portal on SQLite and PostgreSQL), the sink ceiling, idle logins.
bench-report:
	scripts/bench.sh

# Idle logins at scale (docs/scaling.md): logs SCALE_N accounts in through the provisioning API
# (real Prosody and Dendrite, bridge on SQLite) and prints RSS, heap, goroutines, threads, fds, idle
# CPU, wake-ups and login time per step, with a linear fit extrapolated to 10 000 logins. Not in
# `make test`. SCALE_OWN_PRESENCE=available sets presence.own (no presence reads).
SCALE_N    ?= 50,200,500,1000,2000
SCALE_IDLE ?= 30s
SCALE_OWN_PRESENCE ?=
bench-scale: deps dendrite
	@out=$$(mktemp); status=0; \
	MXOMEMO_SCALE_N=$(SCALE_N) MXOMEMO_SCALE_IDLE=$(SCALE_IDLE) MXOMEMO_SCALE_OWN_PRESENCE=$(SCALE_OWN_PRESENCE) $(GO) test $(GOFLAGS_T) -count 1 -timeout 90m \
		-run '^$$' -bench '^BenchmarkScale$$' -benchtime 1x ./e2e/ >$$out 2>&1 || status=$$?; \
	grep -E '^SCALE|^BenchmarkScale|^(--- |ok|FAIL|PASS)|scale_bench_test' $$out; \
	[ $$status = 0 ] || tail -50 $$out; rm -f $$out; exit $$status

# The bridge's own ceiling (SQLite): the real binary and Prosody with a MINIMAL APPSERVICE SINK
# (e2e/internal/assink) instead of a homeserver; per chat (SINK_CASES: 1:1 and room, plaintext and
# OMEMO) and direction msg/s, latency and added latency p50/p99 at SINK_RATE msg/s, and for a
# burst of SINK_N messages, with the bridge's CPU per message. Not in `make test`. The burst-tap
# rows repeat the bursts through a benchmark-only XMPP tap (e2e/internal/xmpptap) that keeps
# Prosody out of the message path: the bridge's own ceiling; SINK_TAP=0 connects straight.
# Then BenchmarkSinkTapLogins: SINK_LOGINS logins (each its own account, tap and chats) take
# SINK_N messages each at once, 1:1 plaintext and OMEMO and a plaintext room, both ways: the
# instance's ceiling.
SINK_N    ?= 2000
SINK_LOGINS ?= 4
SINK_LOGIN_CASES ?= chat,chat-omemo,room
# SINK_DB_CONNS=n: the bridge's SQLite pool size in both benchmarks (default: the config's 5).
SINK_DB_CONNS ?=
SINK_RATE ?= 200
SINK_CASES ?= chat,chat-omemo,room,room-omemo
# SINK_STANZAS=1: Prosody logs every stanza (debug), and each phase prints the elements the
# bridge's session exchanged with it per message; its CPU figures are not comparable then.
SINK_STANZAS ?=
SINK_TAP ?=
bench-sink: deps
	@out=$$(mktemp); status=0; \
	MXOMEMO_SINK_N=$(SINK_N) MXOMEMO_SINK_RATE=$(SINK_RATE) MXOMEMO_SINK_CASES=$(SINK_CASES) MXOMEMO_SINK_STANZAS=$(SINK_STANZAS) MXOMEMO_SINK_TAP=$(SINK_TAP) MXOMEMO_SINK_LOGINS=$(SINK_LOGINS) MXOMEMO_SINK_LOGIN_CASES=$(SINK_LOGIN_CASES) MXOMEMO_SINK_DB_CONNS=$(SINK_DB_CONNS) $(GO) test $(GOFLAGS_T) -count 1 -timeout 60m \
		-run '^$$' -bench '^BenchmarkSink(Throughput|TapLogins)$$' -benchtime 1x ./e2e/ >$$out 2>&1 || status=$$?; \
	grep -E '^SINK|^BenchmarkSink|^(--- |ok|FAIL|PASS)|sink_bench_test' $$out; \
	[ $$status = 0 ] || tail -50 $$out; rm -f $$out; exit $$status

# The large kill test (docs/delivery.md): KILL_N messages each way, KILL_KILLS SIGKILLs of the bridge,
# SQLite and PostgreSQL; prints the lost / duplicated / out-of-order counts per direction.
KILL_N     ?= 1000
KILL_KILLS ?= 20
kill-test: deps dendrite
	@out=$$(mktemp); status=0; \
	MXOMEMO_KILL_N=$(KILL_N) MXOMEMO_KILL_KILLS=$(KILL_KILLS) $(GO) test $(GOFLAGS_T) -count 1 -timeout 90m -v \
		-run '^(TestKill|TestRoomKill)$$' ./e2e/ >$$out 2>&1 || status=$$?; \
	grep -E 'KILL TEST|room, [0-9]+ SIGKILLs|: sent [0-9]+, lost|not exactly once|^(--- |ok|FAIL|PASS)' $$out; \
	echo "full log: $$out"; exit $$status

bench:
	$(GO) test $(GOFLAGS_T) $(BENCHFLAGS) -bench . $(PKGS)

demo:
	scripts/demo.sh

# Container image build test (buildah/podman/debootstrap).
docker-test:
	scripts/install-deps.sh --docker
	scripts/docker-test.sh

# Only the linters of the container files (godolint on the Dockerfile, shellcheck on the scripts):
# no image build, so it also runs where the image build is skipped (CI_SKIP_DOCKER=1).
docker-lint:
	scripts/docker-test.sh lint

firstrun-test:
	scripts/firstrun-test.sh

testenv-up:
	scripts/testenv up

testenv-down:
	scripts/testenv down

clean:
	rm -rf build
