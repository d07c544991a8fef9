#!/usr/bin/env bash
# `make stack`: the production topology without Docker, on this host.
#
# supervisord (deploy/supervisor/) runs nginx on 127.0.0.1:STACK_PORT, gunicorn (gevent) on
# 127.0.0.1:STACK_API_PORT behind it, and the sync worker, against the host's MariaDB/MySQL and Redis.
# Before them, the migrate step (`flask setup`: migrations + admin bootstrap) runs once. Returns when
# /readyz answers 200 through nginx (and the worker's heartbeat is fresh); `make stack-down` stops it all.
#
# Without DATABASE_URL, a `cloudeye_stack` database and user are created on the local server with the
# same grants as mysql-init/ (the password is generated into the stack directory). Runtime files
# (rendered nginx configuration, pid files, socket, logs, data, generated secrets) live in STACK_DIR
# (.stack/, git-ignored). STACK_WITHOUT_SYNC=1 leaves the worker stopped.
set -euo pipefail
# shellcheck source=scripts/stack-lib.sh
source "$(dirname "$0")/stack-lib.sh"
cd "$CLOUDEYE_HOME"

STACK_BIND=127.0.0.1
STACK_PORT=${STACK_PORT:-8080}
STACK_API_PORT=${STACK_API_PORT:-8081}
STACK_READY_TIMEOUT=${STACK_READY_TIMEOUT:-90}
STACK_WITHOUT_SYNC=${STACK_WITHOUT_SYNC:-0}
CLOUDEYE_VENV=${CLOUDEYE_VENV:-$CLOUDEYE_HOME/.venv}
CLOUDEYE_RUN_DIR=$STACK_DIR/run
LOG_DIR=${LOG_DIR:-$STACK_DIR/log}
DATA_DIR=${DATA_DIR:-$STACK_DIR/data}

if pid=$(stack_supervisord_pid); then
	stack_log "already running (supervisord pid $pid); make stack-down stops it"
	exit 0
fi
[ -x "$CLOUDEYE_VENV/bin/gunicorn" ] || stack_die "no virtualenv at $CLOUDEYE_VENV (make venv)"
command -v nginx >/dev/null || stack_die "nginx is not installed (scripts/ensure-services.sh installs it)"
for port in "$STACK_PORT" "$STACK_API_PORT"; do
	stack_port_open "$STACK_BIND" "$port" && stack_die "port $port is already in use on $STACK_BIND"
done
mkdir -p "$CLOUDEYE_RUN_DIR" "$LOG_DIR" "$DATA_DIR"

# --- settings ----------------------------------------------------------------------------------------
CLOUDEYE_ENV=${CLOUDEYE_ENV:-production}
SECRET_KEY=${SECRET_KEY:-$(stack_secret secret_key)}
CLOUDEYE_ADMIN_USERNAME=${CLOUDEYE_ADMIN_USERNAME:-admin}
admin_note="password from CLOUDEYE_ADMIN_PASSWORD"
if [ -z "${CLOUDEYE_ADMIN_PASSWORD:-}" ]; then
	CLOUDEYE_ADMIN_PASSWORD=$(stack_secret admin_password)
	admin_note="password in $STACK_DIR/admin_password"
fi
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:${STACK_REDIS_PORT:-6379}/${STACK_REDIS_DB:-0}}

if [ -z "${DATABASE_URL:-}" ]; then
	mysql_host=${STACK_MYSQL_HOST:-127.0.0.1}
	mysql_port=${STACK_MYSQL_PORT:-3306}
	client=$(command -v mariadb || command -v mysql) || stack_die "no mariadb/mysql client to create the database"
	db_password=$(stack_secret db_password)
	stack_log "database ${STACK_DATABASE:-cloudeye_stack} on $mysql_host:$mysql_port (created if missing)"
	MYSQL_DATABASE=${STACK_DATABASE:-cloudeye_stack} MYSQL_USER=${STACK_DB_USER:-cloudeye_stack} \
		MYSQL_PASSWORD=$db_password MYSQL_USER_HOSTS="localhost 127.0.0.1" \
		MYSQL_PWD=${STACK_MYSQL_ADMIN_PASSWORD:-} \
		MYSQL_CLIENT="$client --protocol=TCP -h $mysql_host -P $mysql_port -u ${STACK_MYSQL_ADMIN_USER:-root}" \
		bash mysql-init/10-cloudeye-app-user.sh
	DATABASE_URL="mysql+pymysql://${STACK_DB_USER:-cloudeye_stack}:$db_password@$mysql_host:$mysql_port/${STACK_DATABASE:-cloudeye_stack}?charset=utf8mb4"
fi

# Everything the programs (and `make stack-ctl`) need, in one file only its owner can read.
(
	umask 077
	{
		echo "# written by scripts/stack-up.sh; source it to run commands against the stack"
		for name in CLOUDEYE_HOME CLOUDEYE_VENV CLOUDEYE_RUN_DIR STACK_DIR STACK_BIND STACK_PORT STACK_API_PORT \
			LOG_DIR DATA_DIR CLOUDEYE_ENV SECRET_KEY DATABASE_URL REDIS_URL CLOUDEYE_ADMIN_USERNAME \
			CLOUDEYE_ADMIN_PASSWORD; do
			printf 'export %s=%q\n' "$name" "${!name}"
		done
		printf 'export FLASK_APP=cloudeye.py\n'
		printf 'export GUNICORN_BIND=%q\n' "$STACK_BIND:$STACK_API_PORT"
		printf 'export GUNICORN_PIDFILE=%q\n' "$CLOUDEYE_RUN_DIR/gunicorn.pid"
		printf 'export GUNICORN_CONTROL_SOCKET=%q\n' "$CLOUDEYE_RUN_DIR/gunicorn.ctl"
		printf 'export GUNICORN_FORWARDED_ALLOW_IPS=%q\n' "$STACK_BIND"
		# Pass through whatever else configures the app, gunicorn or nginx.
		while IFS= read -r name; do
			printf 'export %s=%q\n' "$name" "${!name}"
		done < <(compgen -e | grep -E '^(GUNICORN_|NGINX_|LOG_LEVEL$|LOG_TYPE$|LOGIN_|TRUSTED_PROXIES$|MAX_REQUEST_BYTES$|MAX_REPORT_BYTES$|CACHE_TTL_S$|USABILITY_|ALLOW_PRIVATE_TARGETS$|SYNC_|DB_POOL_SIZE$|DB_MAX_OVERFLOW$|CLOUDEYE_ADMIN_EMAIL$|CLOUDEYE_LOCATION$|PROBE_)' |
			grep -vE '^(GUNICORN_BIND|GUNICORN_PIDFILE|GUNICORN_CONTROL_SOCKET|NGINX_OUT_DIR|NGINX_LISTEN|NGINX_UPSTREAM|NGINX_PID|NGINX_TEMP_DIR|NGINX_STATIC_ROOT|NGINX_CONSOLE_STATIC_ROOT)$')
		if [ "$(id -u)" -eq 0 ] && [ -z "${NGINX_USER:-}" ] && id www-data >/dev/null 2>&1; then
			echo "export NGINX_USER=www-data" # nginx workers never run as root
		fi
	} >"$STACK_ENV_FILE"
)
stack_load_env

# --- migrate, then the programs ------------------------------------------------------------------------
stack_log "migrating ($CLOUDEYE_ENV)"
CLOUDEYE_ROLE=migrate "$CLOUDEYE_VENV/bin/flask" setup >"$LOG_DIR/migrate.out.log" 2>&1 ||
	{
		tail -n 30 "$LOG_DIR/migrate.out.log" >&2
		stack_die "flask setup failed (log: $LOG_DIR/migrate.out.log)"
	}

stack_render_nginx
"$CLOUDEYE_VENV/bin/supervisord" -c "$SUPERVISOR_CONF"
if [ "$STACK_WITHOUT_SYNC" = 1 ]; then
	stack_ctl stop apisync >/dev/null || true
	stack_log "STACK_WITHOUT_SYNC=1: apisync stopped"
fi

# --- ready? ------------------------------------------------------------------------------------------------
# Ready: every program RUNNING for supervisor (past its startsecs), /readyz 200 through nginx, and the
# worker's heartbeat fresh.
url="http://$STACK_BIND:$STACK_PORT/readyz"
programs=(dataapi nginx)
[ "$STACK_WITHOUT_SYNC" = 1 ] || programs+=(apisync)
deadline=$((SECONDS + STACK_READY_TIMEOUT))
ready=0
while [ "$SECONDS" -lt "$deadline" ]; do
	# Not the exit code: supervisorctl answers 0 for STARTING too, before startsecs have passed.
	if stack_ctl status "${programs[@]}" 2>/dev/null | awk '$2 != "RUNNING" { bad = 1 } END { exit bad || NR == 0 }' &&
		[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$url" || true)" = 200 ] &&
		{ [ "$STACK_WITHOUT_SYNC" = 1 ] || "$CLOUDEYE_VENV/bin/python" sync_main.py --healthcheck >/dev/null 2>&1; }; then
		ready=1
		break
	fi
	sleep 0.5
done
if [ "$ready" != 1 ]; then
	stack_ctl status >&2 || true
	for file in dataapi.out.log apisync.out.log nginx-error.log; do
		[ -f "$LOG_DIR/$file" ] && { echo "--- $file" >&2 && tail -n 20 "$LOG_DIR/$file" >&2; }
	done
	stack_die "not ready after ${STACK_READY_TIMEOUT}s ($url); logs in $LOG_DIR; make stack-down stops what started"
fi
stack_ctl status || true
stack_log "ready: http://$STACK_BIND:$STACK_PORT/api/cloudeye/v1 (admin $CLOUDEYE_ADMIN_USERNAME, $admin_note)"
