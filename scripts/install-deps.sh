#!/bin/bash
# Install the Debian packages the test suite needs (servers, peer clients, tools).
# Idempotent and fast when everything is present: apt is not touched then.
# Runs as root (CI) or through sudo.
#
# Usage: scripts/install-deps.sh [--docker] [--check]
#   --docker  also install what the container build test needs (buildah, podman, debootstrap)
#   --check   install nothing; exit 1 and list what is missing
set -euo pipefail

PKGS=(
	# XMPP server (lua-unbound silences Prosody's DNS warning)
	prosody prosody-modules lua-unbound
	# second XMPP server (internal/testenv/ejabberd.go); its service is stopped below
	ejabberd
	# PostgreSQL 15 binaries for throwaway clusters (the packaged cluster need not run)
	postgresql
	# TLS cert generation, HTTP probes
	openssl curl ca-certificates
	# plain XMPP peer and helpers
	python3-slixmpp python3-aiohttp
	# Matrix E2EE peer (scripts/peers/nio_client.py)
	python3-matrix-nio python3-olm python3-peewee python3-cachetools python3-atomicwrites
	# Libervia OMEMO 0.3 + 2 peer (scripts/peers/libervia-peer.sh)
	libervia-backend libervia-cli dbus sqlite3
	# Syndace's OMEMO stack (omemo interop tests and Libervia)
	python3-omemo python3-oldmemo python3-twomemo python3-x3dh python3-doubleratchet python3-xeddsa python3-xmlschema
	# Profanity legacy-OMEMO peer (scripts/peers/profanity-peer.sh)
	profanity tmux
	# build tools for cgo (SQLite)
	gcc libc6-dev make git
)
DOCKER_PKGS=(buildah podman debootstrap)

CHECK=0
for a in "$@"; do
	case "$a" in
	--docker) PKGS+=("${DOCKER_PKGS[@]}") ;;
	--check) CHECK=1 ;;
	*) echo "usage: $0 [--docker] [--check]" >&2; exit 2 ;;
	esac
done

missing=()
for p in "${PKGS[@]}"; do
	if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#PKGS[@]} packages present"
	exit 0
fi
if [ $CHECK = 1 ]; then
	echo "install-deps: missing: ${missing[*]}" >&2
	exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
# Wait for other apt/dpkg users (several engineers or jobs may install at once).
APT=("${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 -q)

echo "install-deps: installing ${missing[*]}"
start=$(date +%s)
"${APT[@]}" update
"${APT[@]}" install -y --no-install-recommends "${missing[@]}"

# The Debian packages start system services (prosody, postgresql cluster) that the tests do not
# use; they listen on the default ports. Stop the ones that were not running before, leave
# anything else alone.
for svc in prosody ejabberd; do
	if [[ " ${missing[*]} " == *" $svc "* ]] && command -v service >/dev/null; then
		"${SUDO[@]}" service "$svc" stop >/dev/null 2>&1 || true
	fi
done
# The ejabberd service starts epmd on 0.0.0.0:4369; the tests run ejabberd without epmd
# (ERL_DIST_PORT). Stop an epmd the install left behind with no node registered.
if [[ " ${missing[*]} " == *" ejabberd "* ]] && command -v epmd >/dev/null; then
	if ! epmd -names 2>/dev/null | grep -q '^name '; then
		"${SUDO[@]}" epmd -kill >/dev/null 2>&1 || true
	fi
fi
echo "install-deps: done in $(($(date +%s) - start)) s"
