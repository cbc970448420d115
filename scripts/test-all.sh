#!/bin/bash
# The whole test suite, as CI runs it (`make test`, `.ci/run`). Runs as root on a fresh clone:
# `make check` installs the Debian packages and Dendrite (cached in ~/.cache/mxomemo), then runs
# go vet, every test (unit, real-Prosody integration, e2e against Prosody/Dendrite/PostgreSQL with
# Libervia, Profanity and matrix-nio as independent peers) and a short run of every fuzz target.
# Then the deployment checks: the docker-run.sh first-run flow and the image build with buildah.
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

step make check
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
