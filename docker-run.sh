#!/bin/sh
# Entrypoint of the xmpp-bridge container. Three steps, one per start, so an admin
# sees exactly what to do next:
#   1. no config.yaml       -> write the example config with container defaults, say what to edit, exit 78
#   2. no registration.yaml -> generate it, say how to register it with the homeserver, exit 80
#   3. otherwise            -> fix ownership of the data dir and exec the bridge as the non-root user
# `docker-run.sh healthcheck` is the image's HEALTHCHECK (asks /_matrix/mau/live).
#
# Exit codes of this script (the bridge's own codes pass through unchanged, see docs/troubleshooting.md):
#   69  bridge binary not found or not executable
#   73  data directory missing or not writable
#   78  config.yaml was just written: edit it, then start again
#   79  config.yaml still has placeholder values (listed on stderr)
#   80  registration.yaml was just generated: register it with the homeserver, then start again
#   81  generating the registration failed (the bridge's message is above)
#   82  writing the example config failed
#    1  healthcheck failed
#
# Environment (all optional):
#   UID, GID            user the bridge runs as (default 1337:1337)
#   DATA_DIR            data directory (default /data); BRIDGE_BIN: binary (default /usr/bin/xmpp-bridge)
#   Used only when config.yaml is first written:
#   HOMESERVER_ADDRESS  e.g. http://synapse:8008          HOMESERVER_DOMAIN  e.g. example.org
#   APPSERVICE_ADDRESS  how the homeserver reaches the bridge (default http://xmpp-bridge:<port>)
#   APPSERVICE_HOSTNAME address the bridge listens on (default 0.0.0.0)
#   DATABASE_URI        postgres://user:pass@host/db?sslmode=disable, or "sqlite" for $DATA_DIR/xmpp-bridge.db
#   ADMIN_MXID          Matrix user given admin permission, e.g. @alice:example.org
# Arguments are passed to the bridge, e.g. `--ignore-unsupported-server` on Dendrite.
set -eu

DATA_DIR=${DATA_DIR:-/data}
BRIDGE_BIN=${BRIDGE_BIN:-/usr/bin/xmpp-bridge}
CONFIG="$DATA_DIR/config.yaml"
REGISTRATION="$DATA_DIR/registration.yaml"
UID=${UID:-1337}
GID=${GID:-$UID}

EXIT_NO_BINARY=69
EXIT_DATA_DIR=73
EXIT_CONFIG_WRITTEN=78
EXIT_CONFIG_PLACEHOLDERS=79
EXIT_REGISTRATION_WRITTEN=80
EXIT_REGISTRATION_FAILED=81
EXIT_CONFIG_FAILED=82

say() { printf '%s\n' "$*"; }
err() { printf '%s\n' "$*" >&2; }

# as_bridge_user runs a command as UID:GID when we are root; as ourselves otherwise
# (rootless runs, `docker run --user`, the first-run test).
as_bridge_user() {
	if [ "$(id -u)" = 0 ]; then
		exec_prefix="setpriv --reuid=$UID --regid=$GID --clear-groups --"
	else
		exec_prefix=""
	fi
	# shellcheck disable=SC2086
	$exec_prefix "$@"
}

fix_ownership() {
	if [ "$(id -u)" = 0 ]; then
		chown -R "$UID:$GID" "$DATA_DIR"
	fi
}

# config_value SECTION KEY prints the value of a two-level key ("appservice" "port").
config_value() {
	SEC="$1" KEY="$2" awk '
		/^[A-Za-z_]+:/ { cur = substr($0, 1, index($0, ":") - 1); next }
		cur == ENVIRON["SEC"] && $0 ~ "^    " ENVIRON["KEY"] ":" {
			sub("^    " ENVIRON["KEY"] ":[ ]*", ""); gsub(/^"|"$/, ""); print; exit
		}' "$CONFIG"
}

# set_config SECTION KEY VALUE replaces a two-level key in place; fails if the key is absent,
# so a change in the example config's layout is caught by scripts/firstrun-test.sh.
set_config() {
	SEC="$1" KEY="$2" VAL="$3" awk '
		/^[A-Za-z_]+:/ { cur = substr($0, 1, index($0, ":") - 1) }
		!done && cur == ENVIRON["SEC"] && $0 ~ "^    " ENVIRON["KEY"] ":" {
			print "    " ENVIRON["KEY"] ": " ENVIRON["VAL"]; done = 1; next
		}
		{ print }
		END { if (!done) exit 3 }' "$CONFIG" >"$CONFIG.tmp" || {
		rm -f "$CONFIG.tmp"
		err "docker-run.sh: could not set $1.$2 in $CONFIG (unexpected example config layout)"
		exit $EXIT_CONFIG_FAILED
	}
	# cat keeps the file's owner and 0600 mode.
	cat "$CONFIG.tmp" >"$CONFIG"
	rm -f "$CONFIG.tmp"
}

# replace_line OLD NEW replaces a whole line (leading spaces kept) if present.
replace_line() {
	OLD="$1" NEW="$2" awk '
		{ line = $0; sub(/^ +/, "", line); ind = substr($0, 1, length($0) - length(line)) }
		line == ENVIRON["OLD"] { print ind ENVIRON["NEW"]; next }
		{ print }' "$CONFIG" >"$CONFIG.tmp"
	cat "$CONFIG.tmp" >"$CONFIG"
	rm -f "$CONFIG.tmp"
}

yaml_quote() {
	printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"
}

# placeholders prints the fields of config.yaml that still hold example values.
placeholders() {
	[ "$(config_value homeserver address)" = "http://example.localhost:8008" ] &&
		say "  homeserver.address  - URL of your homeserver as the bridge reaches it (e.g. http://synapse:8008)"
	[ "$(config_value homeserver domain)" = "example.com" ] &&
		say "  homeserver.domain   - your server name, the part after ':' in user IDs"
	[ "$(config_value database uri)" = "postgres://user:password@host/database?sslmode=disable" ] &&
		say "  database.uri        - a PostgreSQL database of the bridge's own (never the homeserver's)"
	grep -q '"@admin:example.com": admin' "$CONFIG" &&
		say "  bridge.permissions  - who may use the bridge (replace @admin:example.com / example.com)"
	return 0
}

write_config() {
	if ! as_bridge_user "$BRIDGE_BIN" -c "$CONFIG" -e >/dev/null; then
		err "docker-run.sh: '$BRIDGE_BIN -e' failed to write the example config"
		exit $EXIT_CONFIG_FAILED
	fi
	[ -f "$CONFIG" ] || {
		err "docker-run.sh: the bridge did not write $CONFIG"
		exit $EXIT_CONFIG_FAILED
	}

	port=$(config_value appservice port)
	set_config appservice hostname "${APPSERVICE_HOSTNAME:-0.0.0.0}"
	set_config appservice address "$(yaml_quote "${APPSERVICE_ADDRESS:-http://xmpp-bridge:$port}")"
	if [ -n "${HOMESERVER_ADDRESS:-}" ]; then
		set_config homeserver address "$(yaml_quote "$HOMESERVER_ADDRESS")"
	fi
	if [ -n "${HOMESERVER_DOMAIN:-}" ]; then
		set_config homeserver domain "$(yaml_quote "$HOMESERVER_DOMAIN")"
		replace_line '"example.com": user' "$(yaml_quote "$HOMESERVER_DOMAIN"): user"
		replace_line '"@admin:example.com": admin' "$(yaml_quote "${ADMIN_MXID:-@admin:$HOMESERVER_DOMAIN}"): admin"
	elif [ -n "${ADMIN_MXID:-}" ]; then
		replace_line '"@admin:example.com": admin' "$(yaml_quote "$ADMIN_MXID"): admin"
	fi
	case "${DATABASE_URI:-}" in
	"") ;; # PostgreSQL is the container default: leave the placeholder for the admin.
	postgres://* | postgresql://*)
		set_config database type postgres
		set_config database uri "$(yaml_quote "$DATABASE_URI")"
		;;
	sqlite)
		set_config database type sqlite3-fk-wal
		set_config database uri "$(yaml_quote "file:$DATA_DIR/xmpp-bridge.db?_txlock=immediate")"
		;;
	file:*)
		set_config database type sqlite3-fk-wal
		set_config database uri "$(yaml_quote "$DATABASE_URI")"
		;;
	*)
		err "docker-run.sh: DATABASE_URI must be postgres://…, file:… or \"sqlite\"; leaving database.uri unset"
		;;
	esac
}

healthcheck() {
	[ -f "$CONFIG" ] || exit 1
	url=${HEALTHCHECK_URL:-}
	if [ -z "$url" ]; then
		host=$(config_value appservice hostname)
		case "$host" in "" | 0.0.0.0 | "::" | "[::]") host=127.0.0.1 ;; esac
		url="http://$host:$(config_value appservice port)/_matrix/mau/live"
	fi
	# No curl in the image: plain HTTP/1.0 over bash's /dev/tcp, success on status 200.
	exec bash -c '
		rest=${1#http://}; hostport=${rest%%/*}; path=/${rest#*/}
		host=${hostport%:*}; port=${hostport##*:}
		{ exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null || { echo "healthcheck: nothing listens at $1"; exit 1; }
		printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$path" "$hostport" >&3
		IFS=" " read -r _ status _ <&3 || exit 1
		[ "$status" = 200 ] || { echo "healthcheck: $1 answered $status"; exit 1; }' healthcheck "$url"
}

if [ "${1:-}" = healthcheck ]; then
	healthcheck
fi

if [ ! -x "$BRIDGE_BIN" ]; then
	err "docker-run.sh: bridge binary $BRIDGE_BIN is missing or not executable"
	exit $EXIT_NO_BINARY
fi
if [ ! -d "$DATA_DIR" ] || [ ! -w "$DATA_DIR" ]; then
	err "docker-run.sh: $DATA_DIR must be a writable directory (mount a volume there: -v xmpp-bridge-data:/data)"
	exit $EXIT_DATA_DIR
fi
fix_ownership
cd "$DATA_DIR"

if [ ! -f "$CONFIG" ]; then
	write_config
	say "No config found: wrote an example config to $CONFIG."
	todo=$(placeholders)
	if [ -n "$todo" ]; then
		say "Edit these fields before starting again:"
		say "$todo"
	else
		say "The homeserver and database were filled in from the environment; review the file anyway."
	fi
	say "Also worth a look: the 'network:' section (XMPP settings), 'encryption:' (end-to-bridge encryption),"
	say "and appservice.address (how the homeserver reaches the bridge, now $(config_value appservice address))."
	say "Then start the container again to generate the appservice registration."
	exit $EXIT_CONFIG_WRITTEN
fi

if [ ! -f "$REGISTRATION" ]; then
	todo=$(placeholders)
	if [ -n "$todo" ]; then
		err "$CONFIG still has example values; edit these fields first:"
		err "$todo"
		exit $EXIT_CONFIG_PLACEHOLDERS
	fi
	if ! as_bridge_user "$BRIDGE_BIN" -g -c "$CONFIG" -r "$REGISTRATION"; then
		err "docker-run.sh: generating $REGISTRATION failed (see the message above)"
		exit $EXIT_REGISTRATION_FAILED
	fi
	# The homeserver (another container, another user) must read it; it holds the tokens,
	# so keep the data directory itself private.
	chmod 0644 "$REGISTRATION"
	say ""
	say "Generated the appservice registration: $REGISTRATION"
	say "Register it with your homeserver, restart the homeserver, then start this container again:"
	say "  Synapse  (homeserver.yaml):"
	say "    app_service_config_files:"
	say "      - /path/as/synapse/sees/it/xmpp-registration.yaml"
	say "  Dendrite (dendrite.yaml):"
	say "    app_service_api:"
	say "      config_files:"
	say "        - /path/as/dendrite/sees/it/xmpp-registration.yaml"
	say "    and start the bridge with --ignore-unsupported-server (Dendrite reports Matrix v1.2)."
	say "The homeserver will call the bridge at $(config_value appservice address); that must be reachable from it."
	exit $EXIT_REGISTRATION_WRITTEN
fi

if [ "$(id -u)" = 0 ]; then
	exec setpriv --reuid="$UID" --regid="$GID" --clear-groups -- "$BRIDGE_BIN" -c "$CONFIG" -r "$REGISTRATION" "$@"
fi
exec "$BRIDGE_BIN" -c "$CONFIG" -r "$REGISTRATION" "$@"
