#!/bin/bash
# Builds the real Dockerfile with buildah on local base images and checks the image.
#
# No Docker engine runs here and no base image can be pulled, so the bases are made locally
# and passed as the Dockerfile's build arguments:
#   runtime: debootstrap --variant=minbase bookworm, imported with podman (stands in for debian:bookworm-slim)
#   builder: that base + gcc/libc6-dev/git + this machine's /usr/local/go (stands in for the Dockerfile's
#            GO_IMAGE default, golang:<go version>-bookworm; tagged localhost/xmpp-bridge-test/<that name>,
#            and refused when this machine's Go is not the pinned version)
# Both are cached in $DOCKER_TEST_CACHE (own container storage, vfs driver), so only the first run
# pays debootstrap (about a minute) and the package installs.
#
# Checks: godolint on the Dockerfile, its Go builder pinned to a patch version, shellcheck on
# docker-run.sh and the test scripts (installed when missing), the build,
# `xmpp-bridge --version` run inside the image, the non-root user and its UID/GID, ca-certificates,
# setpriv, the image config (entrypoint, /data volume, healthcheck, UID/GID env), and the first-run
# flow of docker-run.sh inside the image: config written (exit 78), registration written (exit 80),
# and the drop to the bridge user.
#
# Usage: scripts/docker-test.sh [lint]     (lint: only godolint + shellcheck, no buildah: `make docker-lint`)
# Env:   DOCKER_TEST_CACHE (default /var/tmp/xmpp-bridge-docker-test), KEEP_IMAGE=1 to keep the image,
#        DOCKER_TEST_NO_CACHE_MOUNTS=1 to build without mounting the host's Go module/build caches,
#        BRIDGE_PKG (default ./cmd/bridge) the main package to build.
set -euo pipefail

cd "$(dirname "$0")/.."
CACHE=${DOCKER_TEST_CACHE:-/var/tmp/xmpp-bridge-docker-test}
STORE=(--root "$CACHE/storage" --runroot "$CACHE/run" --storage-driver vfs)
BASE_IMAGE=localhost/xmpp-bridge-test/debian:bookworm-minbase
# The Dockerfile's pinned builder (ARG GO_IMAGE=golang:X.Y.Z-bookworm) and its local stand-in.
GO_IMAGE_PIN=$(sed -n 's/^ARG GO_IMAGE=//p' Dockerfile)
GO_IMAGE=localhost/xmpp-bridge-test/$GO_IMAGE_PIN
IMAGE=localhost/xmpp-bridge:test
GODOLINT_VERSION=v0.1.0
# The main package built into the image (./deploy/internal/stubbridge until cmd/bridge is a bridge).
BRIDGE_PKG=${BRIDGE_PKG:-./cmd/bridge}

log() { printf '\n== %s\n' "$*"; }
fail() {
	printf 'FAIL: %s\n' "$*" >&2
	exit 1
}

need_packages() {
	local missing=()
	for cmd_pkg in "$@"; do
		command -v "${cmd_pkg%%:*}" >/dev/null || missing+=("${cmd_pkg##*:}")
	done
	if ((${#missing[@]})); then
		log "installing ${missing[*]}"
		apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null ||
			{ apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
	fi
}

# godolint is built from a throwaway module pinned to an exact version: `go install pkg@version`
# is refused by the proxy here, and the linter must not enter the project's go.mod.
lint() {
	log "Go builder pin: $GO_IMAGE_PIN"
	[[ $GO_IMAGE_PIN =~ ^golang:[0-9]+\.[0-9]+\.[0-9]+-bookworm$ ]] ||
		fail "Dockerfile: ARG GO_IMAGE=$GO_IMAGE_PIN is not a patch-pinned golang:X.Y.Z-bookworm"
	echo "pinned"
	local bin="$CACHE/bin/godolint"
	if [[ ! -x $bin ]]; then
		log "building godolint $GODOLINT_VERSION"
		local mod
		mod=$(mktemp -d)
		cat >"$mod/go.mod" <<-EOF
			module godolint-build
			go 1.26.0
			require github.com/farcloser/godolint $GODOLINT_VERSION
		EOF
		printf '//go:build tools\npackage tools\nimport _ "github.com/farcloser/godolint/cmd/godolint"\n' >"$mod/tools.go"
		(cd "$mod" && GOFLAGS=-mod=mod go mod tidy && go build -o "$bin" github.com/farcloser/godolint/cmd/godolint)
		rm -rf "$mod"
	fi
	log "godolint Dockerfile"
	local out
	out=$("$bin" Dockerfile 2>/dev/null) || {
		echo "$out"
		fail "godolint reported problems"
	}
	[[ $out == "[]" ]] || {
		echo "$out"
		fail "godolint reported problems"
	}
	echo "clean"
	local scripts=(docker-run.sh scripts/docker-test.sh scripts/firstrun-test.sh scripts/test-all.sh)
	log "shellcheck ${scripts[*]}"
	shellcheck "${scripts[@]}" || fail "shellcheck reported problems"
	echo "clean"
}

image_exists() { podman "${STORE[@]}" image exists "$1"; }

make_base() {
	image_exists "$BASE_IMAGE" && return
	log "debootstrap --variant=minbase bookworm (cached afterwards)"
	local rootfs="$CACHE/rootfs"
	rm -rf "$rootfs"
	debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >"$CACHE/debootstrap.log" 2>&1 ||
		{
			tail -20 "$CACHE/debootstrap.log"
			fail "debootstrap failed"
		}
	# The host's apt settings for its mirror, as a real base image has its own.
	cp /etc/apt/apt.conf.d/99artifact-registry "$rootfs/etc/apt/apt.conf.d/" 2>/dev/null || true
	rm -rf "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/lib/apt/lists/"*
	tar -C "$rootfs" -c . | podman "${STORE[@]}" import - "$BASE_IMAGE" >/dev/null
	rm -rf "$rootfs"
}

make_go_image() {
	local want have
	want=${GO_IMAGE_PIN#golang:}
	want=go${want%-bookworm}
	have=$(go version | cut -d' ' -f3)
	[[ $have == "$want" ]] ||
		fail "the stand-in for $GO_IMAGE_PIN is this machine's Go, which is $have: update the Dockerfile's GO_IMAGE pin (or this Go)"
	image_exists "$GO_IMAGE" && return
	log "local Go builder image: base + gcc + /usr/local/go ($have) as $GO_IMAGE"
	local ctx
	ctx=$(mktemp -d)
	cp -a /usr/local/go "$ctx/go"
	# This machine reaches the Go module proxy through an egress proxy with its own CA.
	mkdir -p "$ctx/extra-ca"
	cp /usr/local/share/ca-certificates/*.crt "$ctx/extra-ca/" 2>/dev/null || true
	cat >"$ctx/Containerfile" <<-EOF
		FROM $BASE_IMAGE
		RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev git ca-certificates \
		    && rm -rf /var/lib/apt/lists/*
		COPY extra-ca/ /usr/local/share/ca-certificates/
		RUN update-ca-certificates
		COPY go /usr/local/go
		ENV GOPATH=/go PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
		WORKDIR /go
	EOF
	buildah "${STORE[@]}" bud --isolation chroot -q -t "$GO_IMAGE" -f "$ctx/Containerfile" "$ctx" >/dev/null
	rm -rf "$ctx"
}

build_image() {
	log "buildah bud the real Dockerfile"
	local mounts=()
	if [[ -z ${DOCKER_TEST_NO_CACHE_MOUNTS:-} ]]; then
		# Only saves download/compile time; the Dockerfile itself is unchanged.
		mounts=(-v "$(go env GOMODCACHE):/go/pkg/mod" -v "$(go env GOCACHE):/root/.cache/go-build")
	fi
	local start=$SECONDS
	buildah "${STORE[@]}" bud --isolation chroot --layers=false --format docker \
		--build-arg GO_IMAGE="$GO_IMAGE" \
		--build-arg RUNTIME_IMAGE="$BASE_IMAGE" \
		--build-arg COMMIT="$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
		--build-arg BUILD_TIME="$(date -Iseconds)" \
		--build-arg GOPROXY="$(go env GOPROXY)" \
		--build-arg BRIDGE_PKG="$BRIDGE_PKG" \
		"${mounts[@]}" \
		-t "$IMAGE" -f Dockerfile . >"$CACHE/build.log" 2>&1 || {
		tail -40 "$CACHE/build.log"
		fail "image build failed (log: $CACHE/build.log)"
	}
	echo "built $IMAGE in $((SECONDS - start)) s"
}

CTR=""
cleanup() {
	local rc=$?
	for pid in $BRIDGE_PID $HS_PID; do
		kill "$pid" 2>/dev/null && { wait "$pid" 2>/dev/null || true; }
	done
	[[ -n $CTR ]] && buildah "${STORE[@]}" rm "$CTR" >/dev/null 2>&1
	if [[ -z ${KEEP_IMAGE:-} ]]; then
		buildah "${STORE[@]}" rmi "$IMAGE" >/dev/null 2>&1 || true
	fi
	# Earlier test images untagged by this build; the cached bases stay.
	buildah "${STORE[@]}" rmi --prune >/dev/null 2>&1 || true
	exit "$rc"
}

in_image() { buildah "${STORE[@]}" run --isolation chroot "$@"; }

check_image() {
	log "checking the image"
	local cfg
	cfg=$(buildah "${STORE[@]}" inspect --type image "$IMAGE")
	jq_get() { /usr/bin/python3 -c "import json,sys; c=json.load(sys.stdin); print(json.dumps($1))" <<<"$cfg"; }
	[[ $(jq_get 'c["Docker"]["config"]["Entrypoint"]') == '["/docker-run.sh"]' ]] || fail "entrypoint is not /docker-run.sh"
	jq_get 'c["Docker"]["config"]["Volumes"]' | grep -q '"/data"' || fail "no VOLUME /data"
	jq_get 'c["Docker"]["config"]["Healthcheck"]["Test"]' | grep -q 'healthcheck' || fail "no HEALTHCHECK"
	jq_get 'c["Docker"]["config"]["Env"]' | grep -q '"UID=1337"' || fail "UID env is not 1337"
	jq_get 'c["Docker"]["config"]["Env"]' | grep -q '"GID=1337"' || fail "GID env is not 1337"
	echo "config: entrypoint, VOLUME /data, HEALTHCHECK, UID/GID=1337 ok"

	CTR=$(buildah "${STORE[@]}" from "$IMAGE")
	local out
	out=$(in_image "$CTR" -- /usr/bin/xmpp-bridge --version) || fail "xmpp-bridge --version failed inside the image"
	echo "inside the image: xmpp-bridge --version -> $out"
	[[ -n $out ]] || fail "xmpp-bridge --version printed nothing"
	[[ $(in_image "$CTR" -- id -u xmpp-bridge) == 1337 ]] || fail "user xmpp-bridge is not UID 1337"
	[[ $(in_image "$CTR" -- id -g xmpp-bridge) == 1337 ]] || fail "user xmpp-bridge is not GID 1337"
	in_image "$CTR" -- test -s /etc/ssl/certs/ca-certificates.crt || fail "ca-certificates missing"
	in_image "$CTR" -- test -x /docker-run.sh || fail "/docker-run.sh missing or not executable"
	in_image "$CTR" -- test -x /usr/bin/setpriv || fail "setpriv missing"
	in_image "$CTR" -- test -f /usr/share/doc/xmpp-bridge/LICENSE || fail "LICENSE missing"
	[[ $(in_image "$CTR" -- setpriv --reuid=1337 --regid=1337 --clear-groups -- id -u) == 1337 ]] ||
		fail "setpriv cannot drop to 1337"
	echo "user xmpp-bridge 1337:1337, ca-certificates, setpriv, docker-run.sh, LICENSE ok"

	# The container's own /data (the image's VOLUME) persists across `buildah run`s of one
	# container, like a named volume; bind mounts over a VOLUME path are not honoured here.
	log "first-run flow inside the image (docker-run.sh with an empty /data)"
	local rc=0
	in_image --env HOMESERVER_ADDRESS=http://synapse:8008 --env HOMESERVER_DOMAIN=example.org \
		--env DATABASE_URI='postgres://xmpp:secret@postgres/xmpp_bridge?sslmode=disable' \
		"$CTR" -- /docker-run.sh >"$CACHE/run1.log" 2>&1 || rc=$?
	cat "$CACHE/run1.log"
	[[ $rc == 78 ]] || fail "first start: exit $rc, want 78 (config written)"
	[[ $(in_image "$CTR" -- stat -c %u:%g:%a /data/config.yaml) == 1337:1337:600 ]] ||
		fail "config.yaml missing or not 1337:1337 mode 600"
	in_image "$CTR" -- grep -q 'address: "http://synapse:8008"' /data/config.yaml || fail "homeserver.address not seeded"
	in_image "$CTR" -- grep -q 'hostname: 0.0.0.0' /data/config.yaml || fail "appservice.hostname not 0.0.0.0"
	in_image "$CTR" -- grep -q 'type: postgres' /data/config.yaml || fail "database.type not postgres"
	rc=0
	in_image "$CTR" -- /docker-run.sh >"$CACHE/run2.log" 2>&1 || rc=$?
	cat "$CACHE/run2.log"
	[[ $rc == 80 ]] || fail "second start: exit $rc, want 80 (registration written)"
	in_image "$CTR" -- grep -q '^as_token:' /data/registration.yaml || fail "registration.yaml has no as_token"
	[[ $(in_image "$CTR" -- stat -c %a /data/registration.yaml) == 644 ]] || fail "registration.yaml not mode 644"
	grep -q 'app_service_config_files' "$CACHE/run2.log" || fail "no Synapse instructions printed"
	echo "first-run flow inside the image ok"

	run_bridge_in_image
}

HS_PID=""
BRIDGE_PID=""
free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# run_bridge_in_image points the config written above at a loopback stub homeserver and SQLite,
# runs the entrypoint a third time (the bridge itself, dropped to 1337) and asks its health
# check from inside the image. `buildah run --isolation chroot` shares the host's network.
# The stub has no device login or /sync, so end-to-bridge encryption is switched off.
run_bridge_in_image() {
	log "the bridge running inside the image"
	local hs_port as_port as_token bot
	hs_port=$(free_port)
	as_port=$(free_port)
	in_image "$CTR" -- sed -i \
		-e "s|^    address: \"http://synapse:8008\"|    address: http://127.0.0.1:$hs_port|" \
		-e "s|^    hostname: 0.0.0.0|    hostname: 127.0.0.1|" \
		-e "s|^    port: [0-9]*$|    port: $as_port|" \
		-e "s|^    type: postgres|    type: sqlite3-fk-wal|" \
		-e "s|^    uri: \"postgres://.*|    uri: file:/data/xmpp-bridge.db?_txlock=immediate|" \
		-e '/^encryption:/,/^[a-z]/ { s/^    allow: true/    allow: false/; s/^    default: true/    default: false/ }' \
		/data/config.yaml
	local rc=0
	in_image "$CTR" -- /docker-run.sh healthcheck >"$CACHE/health.log" 2>&1 || rc=$?
	if [[ $rc != 1 ]] || ! grep -q 'nothing listens' "$CACHE/health.log"; then
		fail "healthcheck with no bridge running: exit $rc, want 1 with a reason"
	fi
	# shellcheck disable=SC2016 # awk programs, expanded by awk
	as_token=$(in_image "$CTR" -- awk '$1 == "as_token:" { print $2; exit }' /data/registration.yaml)
	# shellcheck disable=SC2016
	bot=$(in_image "$CTR" -- awk '/^appservice:/ { a = 1 } a && $1 == "username:" { print $2; exit }' /data/config.yaml)
	PORT=$hs_port VERSIONS=v1.11 BOT_MXID="@$bot:example.org" AS_TOKEN=$as_token \
		/usr/bin/python3 deploy/testdata/stub_homeserver.py 2>"$CACHE/hs.log" &
	HS_PID=$!
	in_image "$CTR" -- /docker-run.sh >"$CACHE/run3.log" 2>&1 &
	BRIDGE_PID=$!
	local ok=""
	for _ in $(seq 30); do
		if in_image "$CTR" -- /docker-run.sh healthcheck >/dev/null 2>&1; then
			ok=1
			break
		fi
		kill -0 "$BRIDGE_PID" 2>/dev/null || break
		sleep 1
	done
	[[ -n $ok ]] || {
		tail -20 "$CACHE/run3.log"
		fail "the bridge inside the image never passed its health check"
	}
	local code
	code=$(/usr/bin/python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$as_port/_matrix/mau/ready', timeout=5).status)" 2>/dev/null || echo none)
	[[ $code == 200 ]] || fail "/_matrix/mau/ready from the image's bridge: $code, want 200"
	# The listening process is the bridge; its UID shows the privilege drop worked.
	local pid uid
	pid=$(ss -Hltnp "sport = :$as_port" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
	[[ -n $pid ]] || fail "no process listens on the appservice port"
	uid=$(ps -o uid= -p "$pid" | tr -d ' ')
	[[ $uid == 1337 ]] || fail "the bridge inside the image runs as uid $uid, want 1337"
	kill -TERM "$pid"
	rc=0
	wait "$BRIDGE_PID" || rc=$?
	BRIDGE_PID=""
	[[ $rc == 0 ]] || fail "the bridge inside the image exited $rc on SIGTERM, want 0"
	grep -q "Bridge started" "$CACHE/run3.log" || fail "no 'Bridge started' in the image's bridge log"
	echo "bridge in the image: started as uid 1337 on SQLite, healthcheck + /_matrix/mau/ready ok, clean SIGTERM"
}

mkdir -p "$CACHE/bin"
need_packages shellcheck:shellcheck
lint
[[ ${1:-} == lint ]] && exit 0
need_packages buildah:buildah podman:podman debootstrap:debootstrap
trap cleanup EXIT
trap 'exit 130' INT TERM
make_base
make_go_image
build_image
check_image
log "docker-test: all checks passed"
