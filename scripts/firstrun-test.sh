#!/bin/bash
# First-run flow of docker-run.sh, outside a container, on a temporary data directory:
#   1. empty data dir            -> example config written with container defaults, exit 78
#      (and without env: placeholders listed; a start before editing -> exit 79)
#   2. config, no registration   -> registration written, Synapse/Dendrite instructions, exit 80
#   2b. docker-run.sh's failures: bridge binary missing/not executable (69); data dir missing, a
#      file or not writable (73); example config not written (82); registration generation
#      failed (81); the bridge's own exit code and arguments passed through
#   2c. UID/GID other than 1337 (as root): /data chowned, files written and the bridge run as them
#   3. config + registration     -> the bridge runs (as UID 1337 when we are root), answers
#      `docker-run.sh healthcheck` (/_matrix/mau/live), /_matrix/mau/ready, and the metrics
#      listener's /healthz, /readyz and /metrics; SIGTERM stops it with exit 0
#   4. homeserver too old        -> exit 18; with --ignore-unsupported-server passed through, it runs
#   5. the homeserver's database -> refused with the help text (exit 15)
#   6. PostgreSQL with the compose file's init SQL: own database works, the homeserver's refused
#   7. a real Dendrite (scripts/build-dendrite.sh, cached) loading the generated registration:
#      exit 18 without --ignore-unsupported-server, ready with it, with the example config's
#      end-to-bridge encryption in the bot's own /sync mode (appservice: false, msc4190: false)
# Steps 1-6 use a loopback stub homeserver answering the few calls bridgev2 makes at startup.
#
# Env: BRIDGE_PKG   main package to build (default ./cmd/bridge; ./deploy/internal/stubbridge is
#                   a network-less bridge with the same deployment wiring)
#      BRIDGE_BIN   use this binary instead of building one
#      FIRSTRUN_DENDRITE=0 to leave out step 7 (it is reported as skipped)
#      REQUIRE_WIRING=0 to accept a bridge without the deployment wiring (an older build):
#                   no network.metrics block, and mxmain's own foreign-table message instead of
#                   deploy.MustUseOwnDatabase's help text
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$PWD
BRIDGE_PKG=${BRIDGE_PKG:-./cmd/bridge}
REQUIRE_WIRING=${REQUIRE_WIRING:-1}
PY=/usr/bin/python3

WORK=$(mktemp -d /tmp/xmpp-bridge-firstrun.XXXXXX)
chmod 0755 "$WORK" # the bridge user (1337) must reach the binary and the data dir
BRIDGE_PID=""
HS_PID=""
PG_STARTED=""

cleanup() {
	local rc=$?
	for pid in $BRIDGE_PID $HS_PID; do
		kill "$pid" 2>/dev/null && { wait "$pid" 2>/dev/null || true; }
	done
	if [[ -n $PG_STARTED ]]; then
		"${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$WORK/pg/data" -m fast -w stop >/dev/null 2>&1 || true
	fi
	[[ -n ${KEEP_WORK:-} ]] || rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
	printf 'FAIL: %s\n' "$*" >&2
	for f in "$WORK"/*.log; do
		[[ -f $f ]] && { printf -- '--- %s (tail)\n' "$f" >&2; tail -25 "$f" >&2; }
	done
	exit 1
}
pass() { printf 'ok   %s\n' "$*"; }

free_port() {
	$PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

if [[ -n ${BRIDGE_BIN:-} ]]; then
	install -m 0755 "$BRIDGE_BIN" "$WORK/xmpp-bridge"
else
	echo "building $BRIDGE_PKG"
	go build -tags goolm -o "$WORK/xmpp-bridge" "$BRIDGE_PKG"
fi
BIN=$WORK/xmpp-bridge
"$BIN" --version | grep -q . || fail "$BRIDGE_PKG is not an mxmain bridge (--version printed nothing)"

# run_entry DATA LOG [args...]: docker-run.sh with the env an admin would give `docker run`.
run_entry() {
	local data=$1 log=$2
	shift 2
	DATA_DIR=$data BRIDGE_BIN=$BIN "$REPO/docker-run.sh" "$@" >"$log" 2>&1
}

# --- 1a. no env: example config, placeholders listed, then refusal to generate a registration
BARE=$WORK/bare
mkdir -m 0755 "$BARE"
rc=0
run_entry "$BARE" "$WORK/bare1.log" || rc=$?
[[ $rc == 78 ]] || fail "bare first start: exit $rc, want 78"
for field in homeserver.address homeserver.domain database.uri bridge.permissions; do
	grep -q "$field" "$WORK/bare1.log" || fail "bare first start does not ask to edit $field"
done
rc=0
run_entry "$BARE" "$WORK/bare2.log" || rc=$?
[[ $rc == 79 ]] || fail "start with an unedited config: exit $rc, want 79"
grep -q "homeserver.domain" "$WORK/bare2.log" || fail "exit 79 does not name the field to edit"
[[ ! -e $BARE/registration.yaml ]] || fail "registration generated from an unedited config"
pass "no env: config written (78), placeholders listed, unedited config refused (79)"

# --- 1b. env-seeded config
HS_PORT=$(free_port)
AS_PORT=$(free_port)
MX_PORT=$(free_port)
DATA=$WORK/data
mkdir -m 0755 "$DATA"
export HOMESERVER_ADDRESS=http://127.0.0.1:$HS_PORT HOMESERVER_DOMAIN=firstrun.localhost
export APPSERVICE_HOSTNAME=127.0.0.1 APPSERVICE_ADDRESS=http://127.0.0.1:$AS_PORT
export DATABASE_URI=sqlite ADMIN_MXID=@admin:firstrun.localhost
rc=0
run_entry "$DATA" "$WORK/run1.log" || rc=$?
unset HOMESERVER_ADDRESS HOMESERVER_DOMAIN APPSERVICE_HOSTNAME APPSERVICE_ADDRESS DATABASE_URI ADMIN_MXID
[[ $rc == 78 ]] || fail "first start: exit $rc, want 78"
CFG=$DATA/config.yaml
[[ -f $CFG ]] || fail "config.yaml not written"
[[ $(stat -c %a "$CFG") == 600 ]] || fail "config.yaml mode $(stat -c %a "$CFG"), want 600"
if [[ $(id -u) == 0 ]]; then
	[[ $(stat -c %u:%g "$CFG") == 1337:1337 ]] || fail "config.yaml owned by $(stat -c %u:%g "$CFG"), want 1337:1337"
fi
grep -q "address: \"http://127.0.0.1:$HS_PORT\"" "$CFG" || fail "homeserver.address not seeded"
grep -q 'domain: "firstrun.localhost"' "$CFG" || fail "homeserver.domain not seeded"
grep -q 'type: sqlite3-fk-wal' "$CFG" || fail "database.type not seeded"
grep -q "uri: \"file:$DATA/xmpp-bridge.db?_txlock=immediate\"" "$CFG" || fail "database.uri not seeded"
grep -q '"@admin:firstrun.localhost": admin' "$CFG" || fail "admin permission not seeded"
grep -q '"firstrun.localhost": user' "$CFG" || fail "user permission not seeded"
grep -q "filled in from the environment" "$WORK/run1.log" || fail "first start output does not say the env filled the config"
pass "env-seeded first start: config written (78), 0600, owner, homeserver/database/permissions seeded"

# --- 2. registration
rc=0
run_entry "$DATA" "$WORK/run2.log" || rc=$?
[[ $rc == 80 ]] || fail "second start: exit $rc, want 80"
REG=$DATA/registration.yaml
[[ -f $REG ]] || fail "registration.yaml not written"
# Readable by a homeserver running as another user (Synapse's image: UID 991).
[[ $(stat -c %a "$REG") == 644 ]] || fail "registration.yaml mode $(stat -c %a "$REG"), want 644"
AS_TOKEN=$(awk '$1 == "as_token:" { print $2; exit }' "$REG")
[[ -n $AS_TOKEN ]] || fail "registration has no as_token"
grep -q "as_token: \"\?$AS_TOKEN\"\?" "$CFG" || fail "config.yaml does not carry the registration's as_token"
grep -q "^url: \"\?http://127.0.0.1:$AS_PORT\"\?" "$REG" || fail "registration url is not APPSERVICE_ADDRESS"
for want in app_service_config_files "app_service_api:" config_files --ignore-unsupported-server; do
	grep -q -- "$want" "$WORK/run2.log" || fail "registration instructions lack $want"
done
pass "second start: registration written (80), tokens in config, Synapse and Dendrite instructions"

# --- 2b. docker-run.sh's own failure codes (69, 73, 81, 82) and the bridge's code passed through.
# fake_bridge NAME BODY: a stand-in bridge binary (a sh script) for the cases where the real one
# cannot be made to fail that way.
fake_bridge() {
	printf '#!/bin/sh\n%s\n' "$2" >"$WORK/$1"
	chmod 0755 "$WORK/$1"
}
# expect_exit WANT LOG PATTERN DATA BRIDGE [args...]: docker-run.sh exits WANT, LOG matches PATTERN.
expect_exit() {
	local want=$1 log=$2 pattern=$3 data=$4 bin=$5 rc=0
	shift 5
	DATA_DIR=$data BRIDGE_BIN=$bin "$REPO/docker-run.sh" "$@" >"$log" 2>&1 || rc=$?
	[[ $rc == "$want" ]] || fail "$(basename "$log" .log): exit $rc, want $want"
	grep -q -- "$pattern" "$log" || fail "$(basename "$log" .log): output lacks '$pattern'"
}

CODES=$WORK/codes
mkdir -m 0755 "$CODES"
expect_exit 69 "$WORK/no-binary.log" "no-such-bridge is missing or not executable" "$CODES" "$WORK/no-such-bridge"
: >"$WORK/not-executable"
chmod 0644 "$WORK/not-executable"
expect_exit 69 "$WORK/not-executable.log" "missing or not executable" "$CODES" "$WORK/not-executable"
[[ -z $(ls -A "$CODES") ]] || fail "docker-run.sh wrote into the data dir without a bridge binary"
pass "bridge binary missing or not executable: exit 69, data dir untouched"

expect_exit 73 "$WORK/no-data-dir.log" "must be a writable directory" "$WORK/no-such-dir" "$BIN"
[[ ! -e $WORK/no-such-dir ]] || fail "docker-run.sh created the missing data dir"
: >"$WORK/data-is-a-file"
expect_exit 73 "$WORK/data-file.log" "must be a writable directory" "$WORK/data-is-a-file" "$BIN"
# Not writable: root writes anywhere, so as root the script runs as nobody (like `docker run --user`)
# on a root-owned directory; otherwise the directory is made read-only.
RO=$WORK/ro-data
mkdir -m 0755 "$RO"
AS_OTHER=()
if [[ $(id -u) == 0 ]]; then
	AS_OTHER=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
else
	chmod 0555 "$RO"
fi
rc=0
"${AS_OTHER[@]}" env DATA_DIR="$RO" BRIDGE_BIN="$BIN" "$REPO/docker-run.sh" >"$WORK/ro-data.log" 2>&1 || rc=$?
[[ $rc == 73 ]] || fail "unwritable data dir: exit $rc, want 73"
grep -q "mount a volume there" "$WORK/ro-data.log" || fail "exit 73 does not say to mount a volume"
[[ -z $(ls -A "$RO") ]] || fail "something was written into the unwritable data dir"
pass "data dir missing, a file, or not writable: exit 73 with the volume hint"

# 82: the bridge cannot write the example config, writes none, or writes one of another layout.
fake_bridge fails-e 'echo "cannot write" >&2; exit 1'
mkdir -m 0755 "$CODES/82a" "$CODES/82b" "$CODES/82c"
expect_exit 82 "$WORK/82-fails.log" "failed to write the example config" "$CODES/82a" "$WORK/fails-e"
fake_bridge writes-nothing 'exit 0'
expect_exit 82 "$WORK/82-nothing.log" "did not write" "$CODES/82b" "$WORK/writes-nothing"
# shellcheck disable=SC2016 # expanded by the fake bridge
fake_bridge other-layout '[ "$3" = -e ] && printf "appservice:\n    port: 29320\n" >"$2"'
expect_exit 82 "$WORK/82-layout.log" "could not set appservice.hostname" "$CODES/82c" "$WORK/other-layout"
pass "example config not written (bridge failed / wrote nothing / unexpected layout): exit 82"

# 81: the registration cannot be generated. registration.yaml as a directory is what Docker
# leaves when a missing file is bind-mounted; an unparseable config fails -g too.
mkdir -m 0755 "$CODES/81a" "$CODES/81b"
cp "$CFG" "$CODES/81a/config.yaml"
mkdir "$CODES/81a/registration.yaml"
expect_exit 81 "$WORK/81-dir.log" "generating .*registration.yaml failed" "$CODES/81a" "$BIN"
grep -q "Failed to save registration" "$WORK/81-dir.log" || fail "exit 81 does not show the bridge's own message"
cp "$CFG" "$CODES/81b/config.yaml"
printf 'network: [unclosed\n' >>"$CODES/81b/config.yaml"
expect_exit 81 "$WORK/81-yaml.log" "generating .*registration.yaml failed" "$CODES/81b" "$BIN"
[[ ! -e $CODES/81b/registration.yaml ]] || fail "a registration was written from an unparseable config"
pass "registration generation failed (registration.yaml a directory / unparseable config): exit 81"

# The third start execs the bridge: its exit code and the arguments pass through unchanged.
mkdir -m 0755 "$CODES/run"
cp "$CFG" "$REG" "$CODES/run/"
# shellcheck disable=SC2016
fake_bridge exits-42 'echo "args: $*"; exit 42'
expect_exit 42 "$WORK/passthrough.log" "args: -c $CODES/run/config.yaml -r $CODES/run/registration.yaml --ignore-unsupported-server" \
	"$CODES/run" "$WORK/exits-42" --ignore-unsupported-server
pass "the bridge's own exit code (42) and arguments pass through docker-run.sh unchanged"

# --- 2c. another UID/GID (root only: the entrypoint chowns /data and drops to UID:GID)
if [[ $(id -u) == 0 ]]; then
	UDATA=$WORK/uid-data
	mkdir -m 0755 "$UDATA"
	: >"$UDATA/left-by-root" # chown -R takes over what is already there
	rc=0
	env UID=2345 GID=2346 HOMESERVER_ADDRESS="http://127.0.0.1:$HS_PORT" HOMESERVER_DOMAIN=firstrun.localhost \
		DATABASE_URI=sqlite DATA_DIR="$UDATA" BRIDGE_BIN="$BIN" "$REPO/docker-run.sh" >"$WORK/uid1.log" 2>&1 || rc=$?
	[[ $rc == 78 ]] || fail "UID=2345 GID=2346 first start: exit $rc, want 78"
	for f in "$UDATA" "$UDATA/config.yaml" "$UDATA/left-by-root"; do
		[[ $(stat -c %u:%g "$f") == 2345:2346 ]] || fail "$f owned by $(stat -c %u:%g "$f"), want 2345:2346"
	done
	[[ $(stat -c %a "$UDATA/config.yaml") == 600 ]] || fail "config.yaml for UID 2345 not mode 600"
	rc=0
	env UID=2345 GID=2346 DATA_DIR="$UDATA" BRIDGE_BIN="$BIN" "$REPO/docker-run.sh" >"$WORK/uid2.log" 2>&1 || rc=$?
	[[ $rc == 80 ]] || fail "UID=2345 GID=2346 second start: exit $rc, want 80"
	for f in "$UDATA/config.yaml" "$UDATA/registration.yaml"; do
		[[ $(stat -c %u:%g "$f") == 2345:2346 ]] || fail "$f owned by $(stat -c %u:%g "$f") after -g, want 2345:2346"
	done
	[[ $(stat -c %a "$UDATA/registration.yaml") == 644 ]] || fail "registration.yaml for UID 2345 not mode 644"
	# shellcheck disable=SC2016
	fake_bridge print-ids 'echo "ids $(id -u) $(id -g) $(id -G)"'
	env UID=2345 GID=2346 DATA_DIR="$UDATA" BRIDGE_BIN="$WORK/print-ids" "$REPO/docker-run.sh" >"$WORK/uid3.log" 2>&1 ||
		fail "UID=2345 GID=2346 third start: docker-run.sh failed"
	grep -q "ids 2345 2346 2346\$" "$WORK/uid3.log" || fail "the bridge does not run as 2345:2346 without other groups"
	# GID defaults to UID. (UID is read-only in bash, hence env.)
	: >"$UDATA/left-by-root"
	env UID=2345 DATA_DIR="$UDATA" BRIDGE_BIN="$WORK/print-ids" "$REPO/docker-run.sh" >"$WORK/uid4.log" 2>&1 ||
		fail "UID=2345 alone: docker-run.sh failed"
	grep -q "ids 2345 2345 2345\$" "$WORK/uid4.log" || fail "with UID=2345 alone the bridge does not run as 2345:2345"
	[[ $(stat -c %u:%g "$UDATA/left-by-root") == 2345:2345 ]] || fail "with UID=2345 alone /data is not chowned to 2345:2345"
	pass "UID=2345 GID=2346: /data and its files chowned, config/registration written as 2345:2346, bridge runs as 2345:2346 (no other groups); GID defaults to UID"
else
	echo "SKIPPED UID/GID case: needs root (docker-run.sh only chowns and drops privileges as root)"
fi

# --- 3. the bridge runs
# The stub homeserver has no device login, /sync or key endpoints: end-to-bridge encryption
# (on in the bridge's example config) is switched off here; the e2e suite covers it on Dendrite.
no_e2be() { sed -i '/^encryption:/,/^[a-z]/ { s/^    allow: true/    allow: false/; s/^    default: true/    default: false/ }' "$1"; }
sed -i "s/^    port: [0-9]*$/    port: $AS_PORT/" "$CFG"
no_e2be "$CFG"
HAVE_METRICS=0
if grep -q '^    metrics:' "$CFG"; then
	HAVE_METRICS=1
	sed -i "/^    metrics:/,/^    [a-z]/ { s/^        enabled: false/        enabled: true/; s/^        listen: .*/        listen: 127.0.0.1:$MX_PORT/ }" "$CFG"
elif [[ $REQUIRE_WIRING == 1 ]]; then
	fail "the bridge's config has no network.metrics block (bridge.Config lost its metrics.Config, or REQUIRE_WIRING=0)"
fi
BOT=$(awk '/^appservice:/ { a = 1 } a && $1 == "username:" { print $2; exit }' "$CFG")
[[ -n $BOT ]] || fail "no bot username in config"


stop_hs() {
	if [[ -n $HS_PID ]]; then
		kill "$HS_PID" 2>/dev/null || true
		wait "$HS_PID" 2>/dev/null || true
		HS_PID=""
	fi
}

start_hs() { # versions [as_token the homeserver accepts]
	stop_hs
	PORT=$HS_PORT VERSIONS=$1 BOT_MXID="@$BOT:firstrun.localhost" AS_TOKEN=${2:-$AS_TOKEN} \
		$PY "$REPO/deploy/testdata/stub_homeserver.py" 2>>"$WORK/hs.log" &
	HS_PID=$!
	for _ in $(seq 50); do
		$PY -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$HS_PORT/_matrix/client/versions')" 2>/dev/null && return
		sleep 0.1
	done
	fail "stub homeserver did not start"
}

http_code() { $PY - "$1" <<'EOF'
import sys, urllib.request, urllib.error
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=5).status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print(0)
EOF
}

wait_code() { # url code seconds
	for _ in $(seq $(($3 * 5))); do
		[[ $(http_code "$1") == "$2" ]] && return 0
		sleep 0.2
	done
	return 1
}

# start_bridge LOG [args...]: docker-run.sh execs (setpriv and) the bridge, so $! is the bridge.
start_bridge() {
	local log=$1
	shift
	DATA_DIR=$DATA BRIDGE_BIN=$BIN "$REPO/docker-run.sh" "$@" >"$log" 2>&1 &
	BRIDGE_PID=$!
}

start_hs v1.2,v1.3,v1.4,v1.11
start_bridge "$WORK/bridge.log"
wait_code "http://127.0.0.1:$AS_PORT/_matrix/mau/ready" 200 30 ||
	fail "bridge never became ready (/_matrix/mau/ready)"
DATA_DIR=$DATA "$REPO/docker-run.sh" healthcheck || fail "docker-run.sh healthcheck failed on a running bridge"
[[ $(http_code "http://127.0.0.1:$AS_PORT/_matrix/mau/live") == 200 ]] || fail "/_matrix/mau/live not 200"
if [[ $(id -u) == 0 ]]; then
	uid=$(ps -o uid= -p "$BRIDGE_PID" | tr -d ' ')
	[[ $uid == 1337 ]] || fail "bridge runs as uid $uid, want 1337"
fi
if [[ $HAVE_METRICS == 1 ]]; then
	M=http://127.0.0.1:$MX_PORT
	[[ $(http_code "$M/healthz") == 200 ]] || fail "metrics /healthz not 200"
	wait_code "$M/readyz" 200 10 || fail "metrics /readyz not 200 on a running bridge"
	$PY -c "import urllib.request,sys; b=urllib.request.urlopen('$M/metrics').read().decode(); sys.exit(0 if 'xmpp_bridge_messages_total{direction=\"xmpp_to_matrix\",outcome=\"ok\"} 0' in b and 'xmpp_bridge_logins_connected' in b else 1)" ||
		fail "metrics endpoint lacks the bridge's series"
fi
kill -TERM "$BRIDGE_PID"
rc=0
wait "$BRIDGE_PID" || rc=$?
BRIDGE_PID=""
[[ $rc == 0 ]] || fail "bridge exited $rc on SIGTERM, want 0"
rc=0
DATA_DIR=$DATA "$REPO/docker-run.sh" healthcheck || rc=$?
[[ $rc != 0 ]] || fail "healthcheck passes with the bridge stopped"
pass "third start: bridge up as $([[ $(id -u) == 0 ]] && echo 'uid 1337' || echo "uid $(id -u)"), healthcheck, mau/live+ready$([[ $HAVE_METRICS == 1 ]] && echo ', metrics /healthz /readyz /metrics'), clean SIGTERM"

# --- 4. homeserver below bridgev2's minimum spec version (what Dendrite 0.15 reports)
start_hs v1.1,v1.2
rc=0
timeout 60 env DATA_DIR="$DATA" BRIDGE_BIN="$BIN" "$REPO/docker-run.sh" >"$WORK/old-hs.log" 2>&1 || rc=$?
[[ $rc == 18 ]] || fail "outdated homeserver: exit $rc, want 18"
start_bridge "$WORK/old-hs-ignored.log" --ignore-unsupported-server
wait_code "http://127.0.0.1:$AS_PORT/_matrix/mau/ready" 200 30 ||
	fail "bridge with --ignore-unsupported-server never became ready"
kill -TERM "$BRIDGE_PID"
wait "$BRIDGE_PID" || true
BRIDGE_PID=""
pass "homeserver reporting v1.2: exit 18; docker-run.sh passes --ignore-unsupported-server through and it runs"

# --- 4b. the homeserver does not know our as_token (registration not loaded / out of step)
start_hs v1.11 not-the-bridges-token
rc=0
timeout 60 env DATA_DIR="$DATA" BRIDGE_BIN="$BIN" "$REPO/docker-run.sh" >"$WORK/bad-token.log" 2>&1 || rc=$?
[[ $rc == 16 ]] || fail "as_token rejected: exit $rc, want 16"
grep -q "as_token was not accepted" "$WORK/bad-token.log" || fail "as_token rejection is not explained in the log"
pass "as_token rejected by the homeserver: exit 16, 'The as_token was not accepted' (troubleshooting row)"

# --- 5. pointed at the homeserver's database
# Inside the data dir: SQLite in WAL mode needs a directory the bridge user may write.
SYN=$DATA/synapse.db
$PY -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('CREATE TABLE state_groups_state (state_group BIGINT, room_id TEXT)'); c.commit()" "$SYN"
[[ $(id -u) == 0 ]] && chown 1337:1337 "$SYN"
sed -i "s|^    uri: \"file:.*|    uri: \"file:$SYN?_txlock=immediate\"|" "$CFG"
rc=0
timeout 60 env DATA_DIR="$DATA" BRIDGE_BIN="$BIN" "$REPO/docker-run.sh" >"$WORK/foreign.log" 2>&1 || rc=$?
[[ $rc == 15 ]] || fail "homeserver database: exit $rc, want 15"
grep -q "foreign tables\|belongs to Synapse" "$WORK/foreign.log" || fail "no foreign-table message"
if grep -q "belongs to Synapse" "$WORK/foreign.log"; then
	grep -q "createdb" "$WORK/foreign.log" || fail "foreign-database help does not say how to create a database"
	pass "homeserver's database refused (15) with the bridge's help text"
elif [[ $REQUIRE_WIRING == 1 ]]; then
	fail "homeserver's database refused with mxmain's message only (cmd/bridge lost its deploy.MustUseOwnDatabase PostInit, or REQUIRE_WIRING=0)"
else
	pass "homeserver's database refused (15) with mxmain's message only (deploy.MustUseOwnDatabase not wired)"
fi
$PY -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); n=c.execute(\"SELECT COUNT(*) FROM sqlite_master WHERE type='table'\").fetchone()[0]; sys.exit(0 if n==1 else 1)" "$SYN" ||
	fail "the bridge wrote tables into the homeserver's database"

# --- 6. PostgreSQL as in docker-compose.example.yml: the bridge on its own database made by the
#        compose file's init SQL, and refused on the homeserver's database next to it.
PGBIN=/usr/lib/postgresql/15/bin
if [[ ! -x $PGBIN/initdb ]]; then
	echo "installing postgresql"
	apt-get install -y --no-install-recommends postgresql >/dev/null 2>&1 ||
		{ apt-get update >/dev/null && apt-get install -y --no-install-recommends postgresql >/dev/null; }
fi
PG_PORT=$(free_port)
PGDIR=$WORK/pg
mkdir -m 0700 "$PGDIR"
RUNAS=()
if [[ $(id -u) == 0 ]]; then
	chown postgres:postgres "$PGDIR"
	RUNAS=(runuser -u postgres --)
fi
"${RUNAS[@]}" "$PGBIN/initdb" -D "$PGDIR/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$WORK/pg-init.log" 2>&1 ||
	fail "initdb failed"
"${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w \
	-o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PGDIR -c fsync=off" start >/dev/null || fail "PostgreSQL did not start"
PG_STARTED=1
psql_as() { psql -h 127.0.0.1 -p "$PG_PORT" -v ON_ERROR_STOP=1 -qAt "$@"; }
# What the postgres image does with the compose file: POSTGRES_* env, then the init script.
psql_as -U postgres -c "CREATE USER synapse PASSWORD 'change-me-synapse'" \
	-c "CREATE DATABASE synapse OWNER synapse ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
$PY -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["configs"]["xmpp-bridge-db"]["content"])' \
	"$REPO/docker-compose.example.yml" >"$WORK/init.sql"
psql_as -U postgres -f "$WORK/init.sql" || fail "the compose file's init SQL failed"
psql_as -U synapse -d synapse -c "CREATE TABLE state_groups_state (state_group BIGINT, room_id TEXT, type TEXT, state_key TEXT, event_id TEXT)"

PGDATA_DIR=$WORK/pgdata
mkdir -m 0755 "$PGDATA_DIR"
BRIDGE_URI="postgres://xmpp_bridge:change-me-bridge@127.0.0.1:$PG_PORT/xmpp_bridge?sslmode=disable"
rc=0
HOMESERVER_ADDRESS=http://127.0.0.1:$HS_PORT HOMESERVER_DOMAIN=firstrun.localhost APPSERVICE_HOSTNAME=127.0.0.1 \
	APPSERVICE_ADDRESS=http://127.0.0.1:$AS_PORT DATABASE_URI=$BRIDGE_URI \
	run_entry "$PGDATA_DIR" "$WORK/pg1.log" || rc=$?
[[ $rc == 78 ]] || fail "PostgreSQL first start: exit $rc, want 78"
grep -q '^    type: postgres' "$PGDATA_DIR/config.yaml" || fail "database.type is not postgres"
rc=0
run_entry "$PGDATA_DIR" "$WORK/pg2.log" || rc=$?
[[ $rc == 80 ]] || fail "PostgreSQL second start: exit $rc, want 80"
sed -i "s/^    port: [0-9]*$/    port: $AS_PORT/" "$PGDATA_DIR/config.yaml"
no_e2be "$PGDATA_DIR/config.yaml"
AS_TOKEN=$(awk '$1 == "as_token:" { print $2; exit }' "$PGDATA_DIR/registration.yaml")
start_hs v1.11
DATA=$PGDATA_DIR start_bridge "$WORK/pg-bridge.log"
wait_code "http://127.0.0.1:$AS_PORT/_matrix/mau/ready" 200 30 || fail "bridge on PostgreSQL never became ready"
kill -TERM "$BRIDGE_PID"
wait "$BRIDGE_PID" || true
BRIDGE_PID=""
[[ $(psql_as -U xmpp_bridge -d xmpp_bridge -c "SELECT owner FROM database_owner") == megabridge/* ]] ||
	fail "the bridge did not initialise its own PostgreSQL database"
[[ $(psql_as -U synapse -d synapse -c "SELECT count(*) FROM information_schema.tables WHERE table_schema='public'") == 1 ]] ||
	fail "tables appeared in the homeserver's database"
pass "PostgreSQL: compose init SQL made the bridge's own database; 78 -> 80 -> running on it"

sed -i "s|^    uri: \".*|    uri: \"postgres://synapse:change-me-synapse@127.0.0.1:$PG_PORT/synapse?sslmode=disable\"|" "$PGDATA_DIR/config.yaml"
rc=0
timeout 60 env DATA_DIR="$PGDATA_DIR" BRIDGE_BIN="$BIN" "$REPO/docker-run.sh" >"$WORK/pg-foreign.log" 2>&1 || rc=$?
[[ $rc == 15 ]] || fail "PostgreSQL homeserver database: exit $rc, want 15"
grep -q "belongs to Synapse\|foreign tables" "$WORK/pg-foreign.log" || fail "no foreign-table message on PostgreSQL"
[[ $(psql_as -U synapse -d synapse -c "SELECT count(*) FROM information_schema.tables WHERE table_schema='public'") == 1 ]] ||
	fail "the bridge wrote tables into the homeserver's PostgreSQL database"
pass "PostgreSQL: the homeserver's database next to it refused (15), nothing written"

# --- 7. a real Dendrite
if [[ ${FIRSTRUN_DENDRITE:-1} == 0 ]]; then
	echo "SKIPPED step 7 (real Dendrite): FIRSTRUN_DENDRITE=0"
else
	DBIN=$("$REPO/scripts/build-dendrite.sh" | tail -1)
	[[ -x $DBIN/dendrite ]] || fail "scripts/build-dendrite.sh gave no dendrite binary"
	D_PORT=$(free_port)
	DDIR=$WORK/dendrite
	DDATA=$WORK/ddata
	mkdir -m 0755 "$DDIR" "$DDATA"
	rc=0
	HOMESERVER_ADDRESS=http://127.0.0.1:$D_PORT HOMESERVER_DOMAIN=localhost APPSERVICE_HOSTNAME=127.0.0.1 \
		APPSERVICE_ADDRESS=http://127.0.0.1:$AS_PORT DATABASE_URI=sqlite \
		run_entry "$DDATA" "$WORK/d1.log" || rc=$?
	[[ $rc == 78 ]] || fail "Dendrite first start: exit $rc, want 78"
	sed -i "s/^    port: [0-9]*$/    port: $AS_PORT/" "$DDATA/config.yaml"
	rc=0
	run_entry "$DDATA" "$WORK/d2.log" || rc=$?
	[[ $rc == 80 ]] || fail "Dendrite second start: exit $rc, want 80"
	cat >"$DDIR/dendrite.yaml" <<-EOF
		version: 2
		global:
		  server_name: localhost
		  private_key: matrix_key.pem
		  disable_federation: true
		  jetstream: { in_memory: true, storage_path: ./ }
		  report_stats: { enabled: false }
		app_service_api:
		  config_files: [ "$DDATA/registration.yaml" ]
		client_api:
		  registration_disabled: true
		  rate_limiting: { enabled: false }
		federation_api: { database: { connection_string: "file:federationapi.db" } }
		key_server: { database: { connection_string: "file:keyserver.db" } }
		media_api: { database: { connection_string: "file:mediaapi.db" }, base_path: ./media }
		room_server: { default_room_version: "10", database: { connection_string: "file:roomserver.db" } }
		sync_api: { database: { connection_string: "file:syncapi.db" }, search: { enabled: false } }
		user_api: { bcrypt_cost: 4, account_database: { connection_string: "file:userapi.db" } }
		relay_api: { database: { connection_string: "file:relayapi.db" } }
		mscs: { database: { connection_string: "file:mscs.db" } }
		logging: [ { type: std, level: warn } ]
	EOF
	(cd "$DDIR" && "$DBIN/generate-keys" -private-key matrix_key.pem >/dev/null)
	stop_hs
	(cd "$DDIR" && exec "$DBIN/dendrite" -config dendrite.yaml -http-bind-address "127.0.0.1:$D_PORT") >"$WORK/dendrite.log" 2>&1 &
	HS_PID=$!
	wait_code "http://127.0.0.1:$D_PORT/_matrix/client/versions" 200 30 || fail "Dendrite did not start"
	rc=0
	timeout 60 env DATA_DIR="$DDATA" BRIDGE_BIN="$BIN" "$REPO/docker-run.sh" >"$WORK/d-noflag.log" 2>&1 || rc=$?
	[[ $rc == 18 ]] || fail "on Dendrite without --ignore-unsupported-server: exit $rc, want 18"
	grep -q "homeserver is outdated" "$WORK/d-noflag.log" || fail "exit 18 without the 'outdated' message"
	E2BE=$(awk '/^encryption:/ { e = 1; next } /^[a-z]/ { e = 0 } e && /^    (allow|default|appservice|msc4190):/ { printf "%s%s ", $1, $2 }' "$DDATA/config.yaml")
	DATA=$DDATA start_bridge "$WORK/d-bridge.log" --ignore-unsupported-server
	wait_code "http://127.0.0.1:$AS_PORT/_matrix/mau/ready" 200 60 || fail "bridge on Dendrite never became ready"
	DATA_DIR=$DDATA "$REPO/docker-run.sh" healthcheck >/dev/null || fail "healthcheck failed on Dendrite"
	sleep 2 # let the bot's /sync loop and profile update run
	if grep -q 'FTL\|"level":"fatal"' "$WORK/d-bridge.log"; then
		fail "fatal error in the bridge log on Dendrite"
	fi
	# /sync mode: the bot logged its own device in with the appservice login.
	E2BE_NOTE="(end-to-bridge encryption off in this bridge's example config)"
	if [[ $E2BE == *"allow:true"* ]]; then
		grep -q "Logged in as bridge bot" "$WORK/d-bridge.log" || fail "end-to-bridge encryption did not log the bot's device in on Dendrite"
		E2BE_NOTE="(bot device logged in, /sync mode)"
		# encryption.self_sign (on in the example config): cross-signed on the first start.
		if grep -q '^    self_sign: true' "$DDATA/config.yaml"; then
			grep -q "Generated new recovery key and self-signed bot device" "$WORK/d-bridge.log" ||
				fail "encryption.self_sign is on but the bot's device was not cross-signed on Dendrite"
			E2BE_NOTE="(bot device logged in, /sync mode, cross-signed)"
		fi
	fi
	kill -TERM "$BRIDGE_PID"
	rc=0
	wait "$BRIDGE_PID" || rc=$?
	BRIDGE_PID=""
	[[ $rc == 0 ]] || fail "bridge on Dendrite exited $rc on SIGTERM"
	pass "real Dendrite: registration from docker-run.sh loaded; exit 18 without the flag; ready with --ignore-unsupported-server; encryption ${E2BE}${E2BE_NOTE}"
fi

echo "firstrun-test: all checks passed"
