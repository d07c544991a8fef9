#!/usr/bin/env bash
# Operate a running `make stack`:
#   scripts/stack-ctl.sh status                 supervisorctl status
#   scripts/stack-ctl.sh reload-nginx           re-render nginx's configuration (deny list...) and reload it
#   scripts/stack-ctl.sh restart PROGRAM        restart dataapi, apisync or nginx
#   scripts/stack-ctl.sh stop|start PROGRAM     stop or start one of them (e.g. the API, for maintenance)
#   scripts/stack-ctl.sh exec COMMAND...        run a command with the stack's environment,
#                                               e.g. `exec .venv/bin/flask user create --username bob`
set -euo pipefail
# shellcheck source=scripts/stack-lib.sh
source "$(dirname "$0")/stack-lib.sh"
stack_load_env
cd "$CLOUDEYE_HOME"

case "${1:-status}" in
status) stack_ctl status ;;
reload-nginx)
	stack_render_nginx
	nginx -t -q -p "$CLOUDEYE_RUN_DIR/nginx" -c "$CLOUDEYE_RUN_DIR/nginx/nginx.conf" -e "$LOG_DIR/nginx-error.log"
	stack_ctl signal HUP nginx
	;;
restart | stop | start) stack_ctl "$1" "${2:?which program: dataapi, apisync or nginx}" ;;
exec)
	shift
	exec "$@"
	;;
*)
	sed -n '2,8p' "$0" >&2
	exit 2
	;;
esac
