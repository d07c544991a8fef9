#!/usr/bin/env bash
# `scripts/with-docker.sh COMMAND...` (make test, make e2e): runs COMMAND with a Docker engine and Compose
# v2 at hand, installing and starting them as scripts/docker-lib.sh does. A dockerd started here is
# stopped when COMMAND ends, once no other with-docker.sh run still uses it (a shared lock). When no
# engine can run at all, COMMAND still runs, with CLOUDEYE_DOCKER_UNAVAILABLE set to the reason: the
# compose tests then skip, saying why. COMPOSE is exported (`docker compose`, or v1's `docker-compose`).
set -uo pipefail
# shellcheck source=scripts/docker-lib.sh
source "$(dirname "$0")/docker-lib.sh"

lock=/tmp/cloudeye-docker.lock
exec 9>>"$lock"
flock -s 9

reason_file=$(mktemp)
if docker_ensure_engine 2> >(tee "$reason_file" >&2); then
	export COMPOSE
	unset CLOUDEYE_DOCKER_UNAVAILABLE
else
	CLOUDEYE_DOCKER_UNAVAILABLE="no Docker engine could run here: $(tail -n 3 "$reason_file" | tr '\n' ' ')"
	export CLOUDEYE_DOCKER_UNAVAILABLE
	echo "!!! $CLOUDEYE_DOCKER_UNAVAILABLE" >&2
	echo "!!! The compose tests will be SKIPPED." >&2
fi
rm -f "$reason_file"

"$@" 9>&-
status=$?

if [ -n "${DOCKERD_STARTED:-}" ]; then
	# Wait for the other runs on this engine to finish, then stop it.
	flock -u 9
	flock -x -w 3600 9 || docker_log "other runs still hold $lock: stopping dockerd anyway"
	docker_stop_started
fi
exit "$status"
