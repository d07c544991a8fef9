#!/usr/bin/env bash
# Make sure the MariaDB and Redis servers the tests talk to are running on this host.
# Installs them from Debian's packages when they are missing and starts them when they are stopped.
# Never touches existing databases: the tests create and drop only their own (cloudeye_test*).
set -euo pipefail

MYSQL_HOST=${CLOUDEYE_TEST_MYSQL_HOST:-127.0.0.1}
MYSQL_PORT=${CLOUDEYE_TEST_MYSQL_PORT:-3306}
REDIS_PORT=${CLOUDEYE_TEST_REDIS_PORT:-6379}

log() { echo "[ensure-services] $*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 60); do port_open "$1" "$2" && return 0; sleep 0.5; done
  return 1
}

# --- MariaDB ---------------------------------------------------------------------------------------
if ! port_open "$MYSQL_HOST" "$MYSQL_PORT"; then
  command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || apt_install mariadb-server
  log "starting MariaDB"
  as_root mkdir -p /run/mysqld && as_root chown mysql:mysql /run/mysqld 2>/dev/null || true
  as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  wait_port "$MYSQL_HOST" "$MYSQL_PORT" || { log "MariaDB did not come up on $MYSQL_HOST:$MYSQL_PORT"; exit 1; }
  # A fresh Debian install lets root in over the socket only; the tests connect over TCP.
  as_root mariadb -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket" 2>/dev/null || true
fi
log "MariaDB is up on $MYSQL_HOST:$MYSQL_PORT"

# --- Redis -----------------------------------------------------------------------------------------
if ! port_open 127.0.0.1 "$REDIS_PORT"; then
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  log "starting Redis"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/cloudeye-tests.log
  wait_port 127.0.0.1 "$REDIS_PORT" || { log "Redis did not come up on port $REDIS_PORT"; exit 1; }
fi
log "Redis is up on 127.0.0.1:$REDIS_PORT"

# --- nginx and the tools of `make stack` and its tests (no server started: the stack runs its own) -----
missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v envsubst >/dev/null 2>&1 || missing+=(gettext-base)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi
log "nginx, envsubst and curl are installed"
