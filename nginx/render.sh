#!/bin/sh
# Renders cloudeye's nginx configuration from nginx/templates/ into NGINX_OUT_DIR.
#
# One script for both places nginx runs:
#   - the nginx image runs it at start as /docker-entrypoint.d/40-cloudeye-render.sh (NGINX_OUT_DIR=/etc/nginx);
#   - `make stack` (scripts/stack-up.sh) runs it with paths and ports under .stack/.
# Only the variables listed in VARS below are substituted, so nginx's own `$host`, `$request_id`... stay.
# POSIX sh on purpose: the nginx image (alpine) has no bash. Needs envsubst (gettext).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
NGINX_CONF_SRC=${NGINX_CONF_SRC:-$here}
NGINX_OUT_DIR=${NGINX_OUT_DIR:-/etc/nginx}

# --- listening and TLS -----------------------------------------------------------------------------
NGINX_LISTEN=${NGINX_LISTEN:-80}
NGINX_TLS=${NGINX_TLS:-off}
NGINX_TLS_LISTEN=${NGINX_TLS_LISTEN:-443}
NGINX_TLS_CERT=${NGINX_TLS_CERT:-/etc/nginx/certs/fullchain.pem}
NGINX_TLS_KEY=${NGINX_TLS_KEY:-/etc/nginx/certs/privkey.pem}
NGINX_SERVER_NAME=${NGINX_SERVER_NAME:-_}

# --- upstream: the api (gunicorn) ------------------------------------------------------------------
NGINX_UPSTREAM=${NGINX_UPSTREAM:-api:8000}
# With a resolver (Docker's DNS is 127.0.0.11) the upstream name is re-resolved while nginx runs, so
# `docker compose up --scale api=N` is picked up without a reload (`resolve` needs nginx >= 1.27.3).
NGINX_RESOLVER=${NGINX_RESOLVER:-}

# --- limits and timeouts ---------------------------------------------------------------------------
# Derived from the app's and gunicorn's settings below (after they are checked to be numbers):
# - client_max_body_size: MAX_REQUEST_BYTES everywhere, and on the report upload alone MAX_REPORT_BYTES plus
#   1 MiB of multipart overhead (what the app accepts there);
# - proxy timeouts: at least gunicorn's timeout, so nginx does not give up on a request gunicorn still serves;
# - upstream keepalive_timeout: shorter than gunicorn's keepalive, so nginx drops an idle connection before
#   gunicorn does and never sends a request on one gunicorn is closing (a 502 a POST is not retried from).
MAX_REQUEST_BYTES=${MAX_REQUEST_BYTES:-1048576}
MAX_REPORT_BYTES=${MAX_REPORT_BYTES:-209715200}
GUNICORN_TIMEOUT=${GUNICORN_TIMEOUT:-60}
GUNICORN_KEEPALIVE=${GUNICORN_KEEPALIVE:-75}
NGINX_LOGIN_RATE=${NGINX_LOGIN_RATE:-10r/m}
NGINX_LOGIN_BURST=${NGINX_LOGIN_BURST:-5}
NGINX_WORKER_PROCESSES=${NGINX_WORKER_PROCESSES:-auto}
NGINX_WORKER_CONNECTIONS=${NGINX_WORKER_CONNECTIONS:-1024}

# --- client addresses ------------------------------------------------------------------------------
# Proxies/load balancers in front of nginx whose X-Forwarded-For is believed (space or comma separated).
NGINX_REAL_IP_FROM=${NGINX_REAL_IP_FROM:-}
NGINX_DENY_FILE=${NGINX_DENY_FILE:-$NGINX_CONF_SRC/access/deny.conf}

# --- files -----------------------------------------------------------------------------------------
NGINX_STATIC_ROOT=${NGINX_STATIC_ROOT:-$NGINX_CONF_SRC/static}
# The console's assets (console/static of the checkout; the nginx image carries a copy).
NGINX_CONSOLE_STATIC_ROOT=${NGINX_CONSOLE_STATIC_ROOT:-$NGINX_CONF_SRC/../console/static}
NGINX_MIME_TYPES=${NGINX_MIME_TYPES:-/etc/nginx/mime.types}
NGINX_PID=${NGINX_PID:-/var/run/nginx.pid}
NGINX_ACCESS_LOGS=${NGINX_ACCESS_LOGS:-/dev/stdout}
NGINX_ERROR_LOGS=${NGINX_ERROR_LOGS:-/dev/stderr}
NGINX_TEMP_DIR=${NGINX_TEMP_DIR:-}
NGINX_USER=${NGINX_USER:-}

fail() { echo "render.sh: $*" >&2; exit 1; }
for number in "MAX_REQUEST_BYTES=$MAX_REQUEST_BYTES" "MAX_REPORT_BYTES=$MAX_REPORT_BYTES" "GUNICORN_TIMEOUT=$GUNICORN_TIMEOUT" \
	"GUNICORN_KEEPALIVE=$GUNICORN_KEEPALIVE"; do
	case "${number#*=}" in '' | *[!0-9]*) fail "${number%%=*} must be a whole number, got '${number#*=}'" ;; esac
done
NGINX_CLIENT_MAX_BODY_SIZE=${NGINX_CLIENT_MAX_BODY_SIZE:-$MAX_REQUEST_BYTES}
NGINX_UPLOAD_MAX_BODY_SIZE=${NGINX_UPLOAD_MAX_BODY_SIZE:-$((MAX_REPORT_BYTES + 1048576))}
NGINX_PROXY_TIMEOUT=${NGINX_PROXY_TIMEOUT:-$((GUNICORN_TIMEOUT + 5))s}
keepalive=$((GUNICORN_KEEPALIVE - 5))
[ "$keepalive" -gt 60 ] && keepalive=60
[ "$keepalive" -lt 1 ] && keepalive=1
NGINX_UPSTREAM_KEEPALIVE_TIMEOUT=${NGINX_UPSTREAM_KEEPALIVE_TIMEOUT:-${keepalive}s}
case "$NGINX_TLS" in on | off) ;; *) fail "NGINX_TLS must be on or off, got '$NGINX_TLS'" ;; esac
case "$NGINX_UPSTREAM" in *' '* | '') fail "NGINX_UPSTREAM must be one host:port or unix:/path" ;; esac
[ -d "$NGINX_CONSOLE_STATIC_ROOT" ] || fail "the console's assets are not at $NGINX_CONSOLE_STATIC_ROOT (NGINX_CONSOLE_STATIC_ROOT)"
NGINX_CONSOLE_STATIC_ROOT=$(cd "$NGINX_CONSOLE_STATIC_ROOT" && pwd)
[ -f "$NGINX_DENY_FILE" ] || fail "deny list $NGINX_DENY_FILE does not exist (an empty file is fine)"
command -v envsubst >/dev/null 2>&1 || fail "envsubst is missing (Debian: gettext-base)"

nl='
'
lines() { # lines FORMAT WORDS...: one directive per word, e.g. lines 'access_log %s cloudeye;' a b
	format=$1
	shift
	out=
	for word in "$@"; do
		# shellcheck disable=SC2059 # the format is ours
		out="$out$(printf "$format" "$word")$nl"
	done
	printf '%s' "$out"
}

# shellcheck disable=SC2086 # word splitting of the lists is intended
{
	NGINX_ACCESS_LOG_LINES=$(lines 'access_log %s cloudeye;' $NGINX_ACCESS_LOGS)
	NGINX_ERROR_LOG_LINES=$(lines 'error_log %s warn;' $NGINX_ERROR_LOGS)
	NGINX_REAL_IP_LINES=$(lines 'set_real_ip_from %s;' $(echo "$NGINX_REAL_IP_FROM" | tr ',' ' '))
}
NGINX_USER_LINE=
[ -n "$NGINX_USER" ] && NGINX_USER_LINE="user $NGINX_USER;"
NGINX_RESOLVER_LINE=
NGINX_UPSTREAM_PARAMS=
if [ -n "$NGINX_RESOLVER" ]; then
	NGINX_RESOLVER_LINE="resolver $NGINX_RESOLVER valid=10s ipv6=off;"
	NGINX_UPSTREAM_PARAMS=" resolve"
fi
NGINX_TEMP_PATH_LINES=
if [ -n "$NGINX_TEMP_DIR" ]; then
	for kind in client_body proxy fastcgi uwsgi scgi; do
		NGINX_TEMP_PATH_LINES="$NGINX_TEMP_PATH_LINES    ${kind}_temp_path $NGINX_TEMP_DIR/$kind;$nl"
	done
fi
NGINX_HSTS_LINE=
[ "$NGINX_TLS" = on ] && NGINX_HSTS_LINE='add_header Strict-Transport-Security "max-age=31536000; includeSubDomains" always;'

export NGINX_OUT_DIR NGINX_LISTEN NGINX_TLS_LISTEN NGINX_TLS_CERT NGINX_TLS_KEY NGINX_SERVER_NAME \
	NGINX_UPSTREAM NGINX_UPSTREAM_PARAMS NGINX_UPSTREAM_KEEPALIVE_TIMEOUT NGINX_RESOLVER_LINE NGINX_CLIENT_MAX_BODY_SIZE \
	NGINX_UPLOAD_MAX_BODY_SIZE NGINX_PROXY_TIMEOUT \
	NGINX_LOGIN_RATE NGINX_LOGIN_BURST NGINX_WORKER_PROCESSES NGINX_WORKER_CONNECTIONS NGINX_REAL_IP_LINES \
	NGINX_DENY_FILE NGINX_STATIC_ROOT NGINX_CONSOLE_STATIC_ROOT NGINX_MIME_TYPES NGINX_PID NGINX_ACCESS_LOG_LINES NGINX_ERROR_LOG_LINES \
	NGINX_TEMP_PATH_LINES NGINX_USER_LINE NGINX_HSTS_LINE
VARS='${NGINX_OUT_DIR} ${NGINX_LISTEN} ${NGINX_TLS_LISTEN} ${NGINX_TLS_CERT} ${NGINX_TLS_KEY}
${NGINX_SERVER_NAME} ${NGINX_UPSTREAM} ${NGINX_UPSTREAM_PARAMS} ${NGINX_UPSTREAM_KEEPALIVE_TIMEOUT} ${NGINX_RESOLVER_LINE}
${NGINX_CLIENT_MAX_BODY_SIZE} ${NGINX_UPLOAD_MAX_BODY_SIZE} ${NGINX_PROXY_TIMEOUT} ${NGINX_LOGIN_RATE} ${NGINX_LOGIN_BURST}
${NGINX_WORKER_PROCESSES} ${NGINX_WORKER_CONNECTIONS} ${NGINX_REAL_IP_LINES} ${NGINX_DENY_FILE}
${NGINX_STATIC_ROOT} ${NGINX_CONSOLE_STATIC_ROOT} ${NGINX_MIME_TYPES} ${NGINX_PID} ${NGINX_ACCESS_LOG_LINES} ${NGINX_ERROR_LOG_LINES}
${NGINX_TEMP_PATH_LINES} ${NGINX_USER_LINE} ${NGINX_HSTS_LINE}'

render() { # render TEMPLATE OUTPUT
	envsubst "$VARS" <"$NGINX_CONF_SRC/templates/$1" >"$NGINX_OUT_DIR/$2.tmp"
	mv "$NGINX_OUT_DIR/$2.tmp" "$NGINX_OUT_DIR/$2"
}

mkdir -p "$NGINX_OUT_DIR"
[ -n "$NGINX_TEMP_DIR" ] && mkdir -p "$NGINX_TEMP_DIR"
render nginx.conf.template nginx.conf
render cloudeye.conf.template cloudeye.conf
render locations.conf.template cloudeye-locations.conf
render proxy.conf.template cloudeye-proxy.conf
render headers.conf.template cloudeye-headers.conf
render hsts.conf.template cloudeye-hsts.conf
if [ "$NGINX_TLS" = on ]; then
	render server-tls.conf.template cloudeye-server.conf
else
	render server-http.conf.template cloudeye-server.conf
fi
echo "render.sh: nginx configuration written to $NGINX_OUT_DIR (TLS $NGINX_TLS, upstream $NGINX_UPSTREAM)"
