#!/bin/bash
# Libervia 0.9 OMEMO peer (OMEMO 0.3 and 2, Syndace's python-omemo) for the bridge's e2e tests,
# against the test Prosody. One backend hosts any number of profiles (one per XMPP account); it talks
# to libervia-cli over a UNIX socket (PB bridge), so no D-Bus session is needed.
#
# Env: LIBERVIA_DIR  state dir (default: /tmp/libervia-peer-$UID); one backend per dir
#      XMPP_HOST, XMPP_PORT  the Prosody c2s address (default: from .testenv/env, else 127.0.0.1:5222)
#
#   start                                start the backend (waits for "Backend is ready")
#   stop                                 stop the backend, keep the state
#   destroy                              stop and remove LIBERVIA_DIR
#   profile NAME JID PASSWORD            create a profile for an existing account (does not connect)
#   connect PROFILE...                   connect profiles (once per backend run, see below)
#   subscribe PROFILE JID                add JID to the roster and ask for its presence subscription
#   approve PROFILE JID                  approve JID's subscription request (and ask back)
#   befriend PROFILE_A JID_A PROFILE_B JID_B   mutual subscription between two profiles
#   ensure PROFILE PEER_JID [ns...]      make sure PROFILE can encrypt to PEER_JID's devices in every
#                                        namespace given (default: both; see devices); restarts the
#                                        backend until it can
#   devices PROFILE PEER_JID [ns...]     print what PROFILE stored for each of PEER_JID's devices (its
#                                        namespaces and active flags) and exit 1 unless every device
#                                        but PROFILE's own is known and active in every namespace
#                                        given (default: both) and has an active flag for each of its
#                                        namespaces (python-omemo's encrypt raises KeyError otherwise)
#   send PROFILE twomemo|oldmemo TO_JID TEXT   send an OMEMO 2 / 0.3 message; exit 1 if Libervia refuses
#   muc-join PROFILE ROOM NICK           join a group chat (waits until joined)
#   history PROFILE OWN_JID PEER_JID [N] print the last N (default 20) messages with PEER_JID as JSON lines:
#                                        {"from","to","body","timestamp","encrypted","type"}
#   wait-message PROFILE OWN_JID PEER_JID TEXT [SECONDS]   wait until history has a message with body TEXT
#   log                                  print the backend log (debug level: python-omemo decisions)
#
# Known Libervia 0.9 bugs worked around here:
#  * reconnecting a profile inside a running backend leaves OMEMO with a stale client (bundle
#    downloads then fail silently -> NoEligibleDevices): never reconnect, restart the backend instead
#    (`ensure` does; `connect` refuses to reconnect);
#  * sending OMEMO to a group chat fails in Libervia 0.9 (AttributeError: 'JID' object has no
#    attribute 'jid' in the XEP-0384 plugin's participant list); receiving works;
#  * the OMEMO 2 and 0.3 device-list notifications race (python-omemo's update_device_list
#    interleaves its read-modify-writes): a device can lose one namespace, or keep it in its
#    namespaces without an active flag for it, and then every encryption of that profile to the
#    device's account fails with KeyError: 'urn:xmpp:omemo:2' (is_valid_recipient_device).
#    `ensure` checks each device's stored record and restarts the backend (which receives both
#    lists again and fills in what is missing) until every device is complete.
# Always runs Debian's /usr/bin/python3 (a pyenv python3 first on PATH lacks the Debian modules).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if [ -f "$ROOT/.testenv/env" ] && { [ -z "${XMPP_HOST:-}" ] || [ -z "${XMPP_PORT:-}" ]; }; then
	# shellcheck disable=SC1091
	. "$ROOT/.testenv/env"
fi
XMPP_HOST=${XMPP_HOST:-127.0.0.1}
XMPP_PORT=${XMPP_PORT:-5222}
LIB=${LIBERVIA_DIR:-/tmp/libervia-peer-$(id -u)}
export HOME=$LIB/home XDG_CONFIG_HOME=$LIB/home/.config XDG_DATA_HOME=$LIB/home/.local/share XDG_CACHE_HOME=$LIB/home/.cache

li() {
	timeout 60 /usr/bin/python3 /usr/bin/libervia-cli "$@" 2>&1 |
		grep -vE "ProgressBar|Progress bar|^--$|^$|sat_templates" || true
}

running() { [ -f "$LIB/backend.pid" ] && kill -0 "$(cat "$LIB/backend.pid")" 2>/dev/null; }

start_backend() {
	if running; then echo "backend already running" >&2; return 0; fi
	mkdir -p "$XDG_CONFIG_HOME/libervia" "$LIB/local"
	cat > "$XDG_CONFIG_HOME/libervia/libervia.conf" <<CONF
[DEFAULT]
bridge = pb
# python-omemo decisions are only logged at debug level
log_level = debug
local_dir = $LIB/local
[bridge_pb]
connection_type = unix_socket
CONF
	local mark
	mark=0; [ -f "$LIB/backend.log" ] && mark=$(wc -l < "$LIB/backend.log")
	setsid /usr/bin/python3 /usr/bin/libervia-backend fg >> "$LIB/backend.log" 2>&1 < /dev/null &
	echo $! > "$LIB/backend.pid"
	for _ in $(seq 1 300); do
		if tail -n +"$((mark + 1))" "$LIB/backend.log" | grep -q "Backend is ready"; then
			rm -f "$LIB/connected"; return 0
		fi
		running || break
		sleep 0.1
	done
	echo "libervia backend did not start; log tail:" >&2
	tail -n 40 "$LIB/backend.log" >&2
	return 1
}

stop_backend() {
	if running; then
		local pid
		pid=$(cat "$LIB/backend.pid")
		kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 -- "-$pid" 2>/dev/null || true
	fi
	rm -f "$LIB/backend.pid" "$LIB/local/bridge_pb" "$LIB/connected"
}

connect_profiles() {
	local p
	for p in "$@"; do
		if grep -qx "$p" "$LIB/connected" 2>/dev/null; then continue; fi
		li profile connect -c -p "$p"
		echo "$p" >> "$LIB/connected"
	done
	sleep 2
}

# devices_ready PROFILE PEER_JID NS... -> one line per device of PEER_JID as PROFILE stored it;
# status 0 when PROFILE can encrypt to all of them in every NS (see `devices` above). python-omemo
# keeps its records in Libervia's private_ind_bin table, pickled; the backend writes them through.
devices_ready() {
	/usr/bin/python3 - "$LIB/local/libervia.db" "$@" <<'PY'
import pickle, sqlite3, sys
db, profile, peer, want = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
try:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    rows = con.execute("select b.key, b.value from private_ind_bin b join profiles p on p.id=b.profile_id"
                       " where p.name=? and b.namespace='XEP-0384'", (profile,)).fetchall()
except sqlite3.Error as e:
    sys.exit(f"no OMEMO records yet: {e}")
rec = {k: pickle.loads(v.encode() if isinstance(v, str) else v, encoding="utf-8") for k, v in rows if v is not None}
own = rec.get("/own_device_id")
# PROFILE's own device (when PEER_JID is its account) is never a recipient.
ids = [d for d in rec.get(f"/devices/{peer}/list") or [] if d != own]
ok = bool(ids)
if not ids:
    print(f"no device of {peer} known")
for d in sorted(ids):
    ns = rec.get(f"/devices/{peer}/{d}/namespaces") or []
    active = rec.get(f"/devices/{peer}/{d}/active") or {}
    bad = [f"{n} without an active flag" for n in ns if n not in active]
    bad += [f"{n} unknown" for n in want if n not in ns]
    bad += [f"{n} inactive" for n in want if n in ns and active.get(n) is False]
    ok = ok and not bad
    print(f"device {d}: namespaces {sorted(ns)} active {active}" + (" -- " + "; ".join(bad) if bad else ""))
sys.exit(0 if ok else 1)
PY
}

need_backend() { running || { echo "backend not running: $0 start" >&2; exit 1; }; }

cmd=${1:-}
shift || true
case "$cmd" in
start) start_backend ;;
stop) stop_backend ;;
destroy) stop_backend; rm -rf "${LIB:?}" ;;
profile)
	need_backend
	[ $# -eq 3 ] || { echo "usage: $0 profile NAME JID PASSWORD" >&2; exit 2; }
	li profile create "$1" -j "$2" -x "$3" -p ""
	li param set -p "$1" Connection "Force server" "$XMPP_HOST"
	li param set -p "$1" Connection "Force port" "$XMPP_PORT"
	li param set -p "$1" Connection check_certificate false ;;
connect) need_backend; connect_profiles "$@" ;;
subscribe)
	need_backend
	li debug bridge method -p "$1" addContact "\"$2\"" ;;
approve)
	need_backend
	li debug bridge method -p "$1" subscription '"subscribed"' "\"$2\""
	li debug bridge method -p "$1" addContact "\"$2\"" ;;
befriend)
	need_backend
	li debug bridge method -p "$1" addContact "\"$4\""; sleep 1
	li debug bridge method -p "$3" subscription '"subscribed"' "\"$2\""
	li debug bridge method -p "$3" addContact "\"$2\""; sleep 1
	li debug bridge method -p "$1" subscription '"subscribed"' "\"$4\""; sleep 3 ;;
devices)
	prof=$1 peer=$2; shift 2
	want=("$@"); [ ${#want[@]} -gt 0 ] || want=(urn:xmpp:omemo:2 eu.siacs.conversations.axolotl)
	devices_ready "$prof" "$peer" "${want[@]}" ;;
ensure)
	need_backend
	prof=$1 peer=$2; shift 2
	want=("$@"); [ ${#want[@]} -gt 0 ] || want=(urn:xmpp:omemo:2 eu.siacs.conversations.axolotl)
	profiles=$(cat "$LIB/connected" 2>/dev/null || echo "$prof")
	for i in 1 2 3 4 5 6; do
		# After a (re)start the lists come in over a few seconds: poll before restarting again.
		for _ in $(seq 1 $((10 * (2 + i)))); do
			if state=$(devices_ready "$prof" "$peer" "${want[@]}"); then
				echo "$prof can encrypt to every device of $peer in ${want[*]}:"; echo "$state"; exit 0
			fi
			sleep 0.1
		done
		echo "devices of $peer incomplete for $prof (try $i), restarting backend:" >&2; echo "$state" >&2
		stop_backend; start_backend
		# shellcheck disable=SC2086
		connect_profiles $profiles
	done
	exit 1 ;;
send)
	need_backend
	[ $# -eq 4 ] || { echo "usage: $0 send PROFILE twomemo|oldmemo TO_JID TEXT" >&2; exit 2; }
	out=$(printf '%s' "$4" | li message send -p "$1" -e "$2" "$3")
	[ -z "$out" ] || echo "$out"
	[[ $out != *"can't send"* && $out != *"rror"* ]] ;;
muc-join)
	need_backend
	[ $# -eq 3 ] || { echo "usage: $0 muc-join PROFILE ROOM NICK" >&2; exit 2; }
	out=$(li debug bridge method -p "$1" mucJoin "\"$2\"" "\"$3\"" '{}' "\"$1\"")
	[ -z "$out" ] || echo "$out"
	[[ $out != *"rror"* ]] ;;
history)
	need_backend
	li debug bridge method -p "$1" historyGet "\"$2\"" "\"$3\"" "${4:-20}" True '{}' |
		/usr/bin/python3 -c '
import ast, json, sys
raw = sys.stdin.read().strip()
try:
    rows = ast.literal_eval(raw)
except Exception:
    sys.exit("cannot parse history: " + raw[:500])
for r in rows:
    uid, ts, frm, to, msg, subj, typ, extra = r[:8]
    body = msg.get("") if isinstance(msg, dict) else msg
    if body is None and isinstance(msg, dict) and msg:
        body = next(iter(msg.values()))
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except ValueError:
            extra = {}
    print(json.dumps({"from": frm, "to": to, "body": body, "timestamp": ts, "type": typ,
                      "encrypted": bool(extra.get("encrypted")), "stanza_id": extra.get("stanza_id"),
                      "origin_id": extra.get("origin_id")}))
' ;;
wait-message)
	need_backend
	deadline=$((SECONDS + ${5:-20}))
	while [ $SECONDS -lt $deadline ]; do
		if "$0" history "$1" "$2" "$3" 50 | /usr/bin/python3 -c '
import json, sys
want = sys.argv[1]
sys.exit(0 if any(json.loads(l).get("body") == want for l in sys.stdin if l.strip()) else 1)' "$4"; then
			echo "received: $4"; exit 0
		fi
		sleep 1
	done
	echo "timeout waiting for $4 in $1's history with $3" >&2; exit 1 ;;
log) cat "$LIB/backend.log" ;;
*) sed -n '2,30p' "$0" >&2; exit 2 ;;
esac
