#!/usr/bin/env bash
# What the benchmarks in bench/ need beyond the test suite: wrk (load generator) and the mysqlclient
# driver (bench_drivers.py compares it with PyMySQL; it builds against Debian's libmysqlclient headers).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

packages=()
command -v wrk >/dev/null 2>&1 || packages+=(wrk)
"$VENV/bin/python" -c 'import MySQLdb' 2>/dev/null || packages+=(default-libmysqlclient-dev pkg-config)
if [ "${#packages[@]}" -gt 0 ]; then
	echo "[bench-tools] installing ${packages[*]}"
	as_root apt-get update -qq
	DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${packages[@]}" >/dev/null
fi
if ! "$VENV/bin/python" -c 'import MySQLdb' 2>/dev/null; then
	echo "[bench-tools] installing the mysqlclient extra"
	"$VENV/bin/pip" install -q -e '.[mysqlclient]'
fi
echo "[bench-tools] wrk and mysqlclient are installed"
