#!/bin/bash
# Profanity 0.13.1 (Debian; legacy OMEMO eu.siacs.conversations.axolotl via libsignal-protocol-c)
# driven in tmux, as a second independent OMEMO 0.3 peer for the bridge's e2e tests. Each user
# runs in a session of a private tmux server (socket "mxomemo-profanity"), with its own HOME.
#
# Env: PROFANITY_DIR  state dir (default: /tmp/profanity-peer-$UID)
#      PROFANITY_TMUX tmux server socket name (default: mxomemo-profanity)
#      XMPP_HOST, XMPP_PORT, XMPP_DOMAIN  the test Prosody (default: from .testenv/env)
#
#   up USER PASSWORD          start USER@DOMAIN (account must exist), generate OMEMO keys, publish
#                             the device (blind trust, OMEMO automatic); waits until online
#   subscribe USER JID        ask JID for presence subscription (and allow JID's)
#   approve USER JID          allow JID's subscription request
#   pair USER_A USER_B        mutual subscription between two profanity users
#   send USER JID TEXT        send TEXT to JID with OMEMO (opens the chat window, /omemo start)
#   wait USER TEXT [SECONDS]  wait until TEXT is in USER's chat logs (messages received or sent)
#   log USER [JID]            print USER's chat logs (all, or with JID)
#   fingerprint USER          print USER's own OMEMO fingerprint
#   screen USER               print the visible tmux screen
#   down USER                 quit and remove USER's state;  down-all: every user
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
if [ -f "$ROOT/.testenv/env" ] && { [ -z "${XMPP_HOST:-}" ] || [ -z "${XMPP_PORT:-}" ]; }; then
	# shellcheck disable=SC1091
	. "$ROOT/.testenv/env"
fi
XMPP_HOST=${XMPP_HOST:-127.0.0.1}
XMPP_PORT=${XMPP_PORT:-5222}
XMPP_DOMAIN=${XMPP_DOMAIN:-localhost}
BASE=${PROFANITY_DIR:-/tmp/profanity-peer-$(id -u)}
T=(tmux -L "${PROFANITY_TMUX:-mxomemo-profanity}")

k() { "${T[@]}" send-keys -t "$1" -l "$2"; "${T[@]}" send-keys -t "$1" Enter; }
screen() { "${T[@]}" capture-pane -p -J -S -200 -t "$1" | grep -v '^\s*$' || true; }
# wait_screen USER REGEX SECONDS
wait_screen() {
	local end=$((SECONDS + $3))
	while [ $SECONDS -lt "$end" ]; do
		screen "$1" | grep -qE "$2" && return 0
		sleep 0.2
	done
	echo "profanity $1: timeout waiting for /$2/ on screen:" >&2
	screen "$1" | tail -n 20 >&2
	return 1
}
chatlogs() { echo "$BASE/$1/data/profanity/chatlogs"; }

cmd=${1:-}
shift || true
case "$cmd" in
up)
	[ $# -eq 2 ] || { echo "usage: $0 up USER PASSWORD" >&2; exit 2; }
	u=$1 d=$BASE/$1 jid=$1@$XMPP_DOMAIN
	if "${T[@]}" has-session -t "$u" 2>/dev/null; then echo "$u already up" >&2; exit 1; fi
	rm -rf "$d"; mkdir -p "$d/data/profanity" "$d/config/profanity"
	printf '[%s]\nenabled=true\njid=%s\nserver=%s\nport=%s\nresource=prof\npassword=%s\ntls.policy=trust\n' \
		"$jid" "$jid" "$XMPP_HOST" "$XMPP_PORT" "$2" > "$d/data/profanity/accounts"
	chmod 600 "$d/data/profanity/accounts"
	printf '[omemo]\npolicy=automatic\ntrustmode=blind\n[logging]\nchlog=true\n[ui]\nsplash=false\n' > "$d/config/profanity/profrc"
	/usr/bin/python3 "$HERE/seed_devicelist.py" "$jid" "$2" "$XMPP_HOST" "$XMPP_PORT" 2>/dev/null
	"${T[@]}" new-session -d -s "$u" -x 220 -y 50 \
		"env HOME=$d XDG_DATA_HOME=$d/data XDG_CONFIG_HOME=$d/config TERM=xterm-256color profanity -a $jid"
	wait_screen "$u" "$jid.*(online|logged in)|Connected|connected" 20 || true
	k "$u" "/omemo gen"
	wait_screen "$u" "OMEMO crytographic materials generated|OMEMO cryptographic materials generated|already generated|OMEMO: generat" 30
	# Profanity publishes its device on (re)connect only: reconnect once.
	k "$u" "/disconnect"; sleep 1; k "$u" "/connect $jid"
	sleep 3
	echo "profanity $u up as $jid" ;;
subscribe) k "$1" "/sub request $2"; k "$1" "/sub allow $2"; sleep 1 ;;
approve) k "$1" "/sub allow $2"; sleep 1 ;;
pair)
	k "$1" "/sub request $2@$XMPP_DOMAIN"; k "$2" "/sub request $1@$XMPP_DOMAIN"; sleep 2
	k "$1" "/sub allow $2@$XMPP_DOMAIN"; k "$2" "/sub allow $1@$XMPP_DOMAIN"; sleep 2 ;;
send)
	[ $# -eq 3 ] || { echo "usage: $0 send USER JID TEXT" >&2; exit 2; }
	k "$1" "/msg $2"; sleep 0.5
	k "$1" "/omemo start"; sleep 2
	k "$1" "$3"; sleep 1
	if screen "$1" | grep -qiE "unable to|cannot|failed|no .*device"; then
		echo "profanity $1: send may have failed:" >&2; screen "$1" | tail -n 8 >&2; exit 1
	fi ;;
wait)
	end=$((SECONDS + ${3:-20}))
	while [ $SECONDS -lt $end ]; do
		grep -rqF -- "$2" "$(chatlogs "$1")" 2>/dev/null && { echo "found: $2"; exit 0; }
		sleep 0.5
	done
	echo "profanity $1: timeout waiting for '$2' in chat logs" >&2
	screen "$1" | tail -n 15 >&2
	exit 1 ;;
log)
	dir=$(chatlogs "$1")
	if [ $# -ge 2 ]; then dir=$dir/*/${2//@/_at_}; fi
	# shellcheck disable=SC2086
	find $dir -type f 2>/dev/null | sort | xargs -r cat ;;
fingerprint) k "$1" "/omemo fingerprint"; sleep 1; screen "$1" | grep -iE "fingerprint" | tail -n 3 ;;
screen) screen "$1" ;;
down)
	"${T[@]}" kill-session -t "$1" 2>/dev/null || true
	rm -rf "${BASE:?}/$1" ;;
down-all)
	"${T[@]}" kill-server 2>/dev/null || true
	rm -rf "${BASE:?}" ;;
*) sed -n '2,22p' "$0" >&2; exit 2 ;;
esac
