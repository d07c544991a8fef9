#!/bin/sh
# Entrypoint of the cloudeye image. Shortcuts for its processes, anything else runs as given
# (`docker compose run --rm api flask user create ...`). Always `exec`, so the process gets the signals.
set -eu

case "${1:-api}" in
api)
	# No arguments at all also means api. (`shift` without one would end a POSIX sh such as dash.)
	if [ "$#" -gt 0 ]; then shift; fi
	exec gunicorn -c api/gunicorn.conf.py "$@" cloudeye:app
	;;
sync)
	shift
	exec python sync_main.py "$@"
	;;
migrate)
	shift
	exec flask setup "$@"
	;;
agent)
	# A remote probe agent: only CLOUDEYE_API_URL and CLOUDEYE_API_TOKEN, no database (compose.agent.yaml).
	shift
	exec python sync_main.py --agent "$@"
	;;
*)
	exec "$@"
	;;
esac
