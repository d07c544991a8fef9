#!/usr/bin/env bash
# `make stack-down`: stops what `make stack` started (supervisord and its programs), gracefully:
# supervisor sends each program its stop signal and waits its stopwaitsecs before KILL.
# Keeps STACK_DIR (logs, data, generated secrets); `make stack-clean` removes it.
set -euo pipefail
# shellcheck source=scripts/stack-lib.sh
source "$(dirname "$0")/stack-lib.sh"

if [ ! -f "$STACK_ENV_FILE" ]; then
	stack_log "no stack in $STACK_DIR"
	exit 0
fi
stack_load_env
if ! pid=$(stack_supervisord_pid); then
	stack_log "not running"
	exit 0
fi
stack_log "stopping (supervisord pid $pid)"
stack_ctl shutdown >/dev/null || kill -TERM "$pid" 2>/dev/null || true
# The longest stopwaitsecs is 45 s; leave a margin before giving up on a graceful stop.
for _ in $(seq 1 120); do
	kill -0 "$pid" 2>/dev/null || {
		rm -rf "$(stack_nginx_public_dir)" # the static copy and nginx's temporary files
		stack_log "stopped"
		exit 0
	}
	sleep 0.5
done
stack_log "supervisord $pid still running after 60 s: sending KILL to it and its programs"
pkill -KILL -P "$pid" 2>/dev/null || true
kill -KILL "$pid" 2>/dev/null || true
exit 1
