#!/bin/bash
# The demo behind `make demo`: Prosody + Dendrite (scripts/testenv up), the bridge on SQLite under
# .testenv/demo/, a Matrix user logged in to an XMPP account through the bridge bot, one plain
# message crossing each way, then one OMEMO 2 message each way: the contact gets an OMEMO device
# (our omemoxmpp client), its encrypted message arrives decrypted in the Matrix portal, and the
# Matrix reply reaches it OMEMO-encrypted. The transcript is also in .testenv/demo/demo.out; the
# exit status is non-zero when a step did not happen. Everything stays running afterwards, on
# loopback only.
#
#   scripts/demo.sh          set up and run the demo (installs what it needs; root or sudo)
#   scripts/demo.sh down     stop the bridge and the servers (same as scripts/testenv down)
#
# Works on a fresh Debian bookworm machine: it runs scripts/install-deps.sh and builds Dendrite
# once (scripts/build-dendrite.sh, a few minutes, cached in ~/.cache/mxomemo).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PATH=/usr/local/go/bin:$PATH
export CGO_ENABLED=1

DEMO=.testenv/demo
ENVFILE=.testenv/env
TESTENV=scripts/testenv

stop_bridge() {
	if [ -f "$DEMO/bridge.pid" ]; then
		local pid
		pid=$(cat "$DEMO/bridge.pid")
		if kill -0 "$pid" 2>/dev/null; then
			kill "$pid" 2>/dev/null || true
			for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
			kill -9 "$pid" 2>/dev/null || true
		fi
		rm -f "$DEMO/bridge.pid"
	fi
}

if [ "${1:-}" = down ]; then
	stop_bridge
	exec "$TESTENV" down
fi
if [ $# -gt 0 ]; then
	echo "usage: $0 [down]" >&2
	exit 2
fi

step() { printf '\n==> %s\n' "$*"; }

step "Installing dependencies (Debian packages; Dendrite is built once)"
make -s deps dendrite

# A previous demo is replaced; servers someone else started with `scripts/testenv up` are not
# touched.
if [ -f "$ENVFILE" ]; then
	if [ ! -d "$DEMO" ]; then
		echo "scripts/testenv servers (not a demo) are up in .testenv; stop them first: scripts/testenv down" >&2
		exit 1
	fi
	step "Stopping the previous demo"
	stop_bridge
	"$TESTENV" down
fi

step "Starting Prosody and Dendrite (scripts/testenv up)"
"$TESTENV" up
# shellcheck disable=SC1090
. "$ENVFILE"
mkdir -p "$DEMO"

step "Building the bridge and the demo helper (go build -tags goolm)"
go build -tags goolm -o "$DEMO/xmpp-bridge" ./cmd/bridge
go build -tags goolm -o "$DEMO/demo" ./e2e/cmd/demo

step "Writing the bridge config (SQLite) and the appservice registration"
"$DEMO/demo" config -env "$ENVFILE" -dir "$DEMO" -bin "$DEMO/xmpp-bridge"

step "Restarting Dendrite with the bridge's registration"
"$TESTENV" dendrite --registration "$DEMO/registration.yaml"

step "Starting the bridge (log: $DEMO/bridge.log)"
# Dendrite reports spec v1.2; bridgev2 wants v1.4 unless told otherwise.
# The watchdog stops the bridge when `scripts/testenv down` removes .testenv.
(
	cd "$DEMO"
	setsid ./xmpp-bridge -c config.yaml -r registration.yaml --ignore-unsupported-server >>bridge.log 2>&1 </dev/null &
	pid=$!
	echo "$pid" >bridge.pid
	setsid bash -c "while kill -0 $pid 2>/dev/null && [ -f '$ROOT/$ENVFILE' ]; do sleep 2; done; kill $pid 2>/dev/null" \
		>/dev/null 2>&1 </dev/null &
)
AS_URL=$(cat "$DEMO/appservice-url")
for _ in $(seq 300); do
	if curl -fsS "$AS_URL/_matrix/mau/ready" >/dev/null 2>&1; then break; fi
	if ! kill -0 "$(cat "$DEMO/bridge.pid")" 2>/dev/null; then
		echo "the bridge exited; last lines of $DEMO/bridge.log:" >&2
		tail -n 40 "$DEMO/bridge.log" >&2
		exit 1
	fi
	sleep 0.2
done
curl -fsS "$AS_URL/_matrix/mau/ready" >/dev/null || { echo "bridge not ready; see $DEMO/bridge.log" >&2; exit 1; }

step "Creating the demo accounts"
MATRIX_USER=demo
MATRIX_PASSWORD=demo-password
printf 'alice alice-password\nbob bob-password\n' >"$DEMO/xmpp-passwords"
chmod 600 "$DEMO/xmpp-passwords"
"$TESTENV" account alice alice-password
"$TESTENV" account bob bob-password
MX=$("$TESTENV" matrix-user "$MATRIX_USER" "$MATRIX_PASSWORD")
read -r MXID MXTOKEN <<<"$MX"
[ -n "$MXTOKEN" ] || { echo "could not register the Matrix user: $MX" >&2; exit 1; }
echo "$MXID"

step "Logging $MXID in to alice@$XMPP_DOMAIN through the bridge bot; one plain and one OMEMO message each way"
"$DEMO/demo" run -env "$ENVFILE" -matrix-user "$MXID" -matrix-token "$MXTOKEN" \
	-xmpp-user alice -xmpp-contact bob -xmpp-password-file "$DEMO/xmpp-passwords" | tee "$DEMO/demo.out"

cat <<EOF

The demo is running (all on 127.0.0.1):
  Matrix homeserver (Dendrite)  $MATRIX_URL      server name $MATRIX_SERVER_NAME
  XMPP server (Prosody)         $XMPP_ADDR (STARTTLS, self-signed certificate for "localhost")
  bridge                        $DEMO/ (config.yaml, registration.yaml, bridge.db, bridge.log)

Try it yourself:
  - Matrix: point Element (or any Matrix client) at $MATRIX_URL and log in as
    $MATRIX_USER / $MATRIX_PASSWORD. The room with "Bob (XMPP)" is the bridged chat; the
    room with the bridge bot (@xmppbot:$MATRIX_SERVER_NAME) takes commands (help, list-logins, start-chat JID).
    Element Web must run on this machine (or reach it via an SSH tunnel: ssh -L ${MATRIX_PORT}:127.0.0.1:${MATRIX_PORT} ...).
  - XMPP: log in as bob@$XMPP_DOMAIN / bob-password (server 127.0.0.1, port ${XMPP_PORT}, accept the
    self-signed certificate) with any XMPP client and write to alice@$XMPP_DOMAIN; it shows up in Matrix.
    The chat is OMEMO-encrypted since the demo: Matrix messages go out only to bob's OMEMO devices
    (use Conversations, Gajim, Dino, ...), or send "omemo off" in the bridged room for plaintext.
  - Bridge log: tail -f $DEMO/bridge.log

Stop everything: scripts/testenv down   (the bridge stops with it; or scripts/demo.sh down)
EOF
