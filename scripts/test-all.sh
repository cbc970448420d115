#!/bin/bash
# The whole test suite, as CI runs it (`make test`, `.ci/run`). Runs as root on a fresh clone:
# `make check` installs the Debian packages and Dendrite (cached in ~/.cache/mxomemo), then runs
# go vet, every test (unit, real-Prosody integration, e2e against Prosody/Dendrite/PostgreSQL with
# Libervia, Profanity and matrix-nio as independent peers) and a short run of every fuzz target.
# Then `make demo` once (its transcript must show an OMEMO message each way), and the deployment
# checks: the docker-run.sh first-run flow and the image build with buildah.
# Every step runs even when an earlier one failed, so one failure does not hide another; the exit
# status is non-zero if any failed. CI_SKIP_DOCKER=1 skips the image build, not its linters
# (godolint on the Dockerfile and its Go pin, shellcheck on the entrypoint and test scripts).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
start=$(date +%s)
failed=()

step() {
	echo
	echo "=== test-all: $* (at $(($(date +%s) - start)) s)"
	if ! "$@"; then
		echo "=== test-all: FAILED: $*"
		failed+=("$*")
	fi
}

# `make demo` once, as a user runs it: the servers under .testenv/ in the repository (the Go tests
# use temporary directories of their own), the transcript checked for the plain and the OMEMO
# exchange, and the servers always stopped afterwards (unless they were not the demo's).
demo() {
	local out=.testenv/demo/demo.out rc=0 want
	if [ -f .testenv/env ] && [ ! -d .testenv/demo ]; then
		echo "scripts/testenv servers (not a demo) are up in .testenv; not running the demo"
		return 1
	fi
	rm -f "$out"
	scripts/demo.sh || rc=$?
	if [ "$rc" -eq 0 ]; then
		for want in 'DEMO_PORTAL_ROOM=!' 'XMPP → Matrix, OMEMO' 'Matrix → XMPP, OMEMO' \
			'DEMO_OMEMO_XMPP_TO_MATRIX=ok' 'DEMO_OMEMO_MATRIX_TO_XMPP=ok'; do
			if ! grep -qF -- "$want" "$out"; then
				echo "demo: \"$want\" missing from $out"
				rc=1
			fi
		done
	fi
	if [ "$rc" -ne 0 ] && [ -f .testenv/demo/bridge.log ]; then
		echo "demo: last lines of the bridge log:"
		tail -n 60 .testenv/demo/bridge.log
	fi
	scripts/demo.sh down || rc=1
	return "$rc"
}

step make check
step demo
step make firstrun-test
if [ "${CI_SKIP_DOCKER:-0}" != 1 ]; then
	step make docker-test # lints first
else
	step make docker-lint
fi

echo
echo "=== test-all: finished in $(($(date +%s) - start)) s"
if [ ${#failed[@]} -gt 0 ]; then
	printf '=== test-all: failed step: %s\n' "${failed[@]}"
	exit 1
fi
