#!/usr/bin/env bash
# Make sure a Docker engine with Compose v2 runs on this host: installs Debian's docker.io and the Compose
# plugin when they are missing, starts dockerd when none answers (and leaves it running). `make
# base-images` and `make up` on a host without a registry start here. See scripts/docker-lib.sh.
set -euo pipefail
# shellcheck source=scripts/docker-lib.sh
source "$(dirname "$0")/docker-lib.sh"
docker_ensure_engine
docker_log "engine $(docker version -f '{{.Server.Version}}') answers; compose: $COMPOSE ($($COMPOSE version --short))"
