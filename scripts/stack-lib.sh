# shellcheck shell=bash
# Settings and helpers shared by scripts/stack-up.sh, stack-down.sh and stack-ctl.sh (`make stack*`).
# Sourced, not executed. Every STACK_* variable can be set in the environment; see .env.example.

CLOUDEYE_HOME=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK_DIR=${STACK_DIR:-$CLOUDEYE_HOME/.stack}
mkdir -p "$STACK_DIR"
STACK_DIR=$(cd "$STACK_DIR" && pwd)
STACK_ENV_FILE=$STACK_DIR/stack.env
SUPERVISOR_CONF=$CLOUDEYE_HOME/deploy/supervisor/supervisord.conf
# nginx and mariadb live in sbin on Debian; supervisord looks `nginx` up in this PATH.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

stack_log() { echo "[stack] $*"; }
stack_die() {
	echo "[stack] error: $*" >&2
	exit 1
}

# A secret kept in the stack directory: read it when it exists, generate it once otherwise.
stack_secret() {
	local file=$STACK_DIR/$1
	if [ ! -s "$file" ]; then
		(umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(32))' >"$file")
	fi
	cat "$file"
}

stack_load_env() {
	[ -f "$STACK_ENV_FILE" ] || stack_die "no stack in $STACK_DIR (run make stack)"
	# shellcheck disable=SC1090
	source "$STACK_ENV_FILE"
}

stack_supervisord_pid() {
	local pidfile=${CLOUDEYE_RUN_DIR:-$STACK_DIR/run}/supervisord.pid pid
	[ -f "$pidfile" ] || return 1
	pid=$(cat "$pidfile")
	kill -0 "$pid" 2>/dev/null || return 1
	echo "$pid"
}

stack_ctl() { "$CLOUDEYE_VENV/bin/supervisorctl" -c "$SUPERVISOR_CONF" "$@"; }

# What nginx's worker processes touch themselves: the static files they serve (nginx's own and the
# console's assets) and the temporary files of buffered request bodies. Run as root, nginx's workers are another user (www-data), who may not be able
# to enter the checkout at all (a clone in a 0700 home directory): these then live under /run, which every
# user may enter, in a directory of this stack's own. Otherwise the workers are the checkout's user.
stack_nginx_public_dir() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "$CLOUDEYE_RUN_DIR/nginx-public"
		return
	fi
	local base=${TMPDIR:-/tmp}/cloudeye-stack
	if [ -d /run ] && [ -w /run ]; then base=/run/cloudeye-stack; fi
	echo "$base/$(printf '%s' "$STACK_DIR" | sha256sum | cut -c1-16)"
}

# A readable copy of the directory $1 as $public/$2 (replaced whole: files removed from $1 go too).
stack_publish() {
	rm -rf "$public/$2.new" && cp -R "$1" "$public/$2.new"
	chmod -R a+rX "$public/$2.new"
	rm -rf "${public:?}/$2" && mv "$public/$2.new" "$public/$2"
}

stack_render_nginx() {
	local public
	public=$(stack_nginx_public_dir)
	mkdir -p "$public/tmp"
	chmod 0755 "$(dirname "$public")" "$public"
	stack_publish "$CLOUDEYE_HOME/nginx/static" static
	stack_publish "$CLOUDEYE_HOME/console/static" console-static
	NGINX_OUT_DIR=$CLOUDEYE_RUN_DIR/nginx \
		NGINX_LISTEN=$STACK_BIND:$STACK_PORT \
		NGINX_UPSTREAM=$STACK_BIND:$STACK_API_PORT \
		NGINX_PID=$CLOUDEYE_RUN_DIR/nginx/nginx.pid \
		NGINX_TEMP_DIR=$public/tmp \
		NGINX_STATIC_ROOT=$public/static \
		NGINX_CONSOLE_STATIC_ROOT=$public/console-static \
		NGINX_ACCESS_LOGS=$LOG_DIR/nginx-access.log \
		NGINX_ERROR_LOGS=$LOG_DIR/nginx-error.log \
		sh "$CLOUDEYE_HOME/nginx/render.sh" >/dev/null
}

# 0 when something accepts connections on HOST PORT.
stack_port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
