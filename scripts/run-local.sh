#!/usr/bin/env bash
# `make run`: the product on the embedded default (SQLite under ./data, no Redis, no Docker).
# Migrates, bootstraps the admin, then runs gunicorn (gevent) and, when present, the sync worker.
set -euo pipefail
cd "$(dirname "$0")/.."

export FLASK_APP=cloudeye.py
export CLOUDEYE_ENV=${CLOUDEYE_ENV:-development}
export DATA_DIR=${DATA_DIR:-./data}
export LOG_DIR=${LOG_DIR:-./log}
PORT=${PORT:-8000}
VENV=${VENV:-.venv}

CLOUDEYE_ROLE=migrate "$VENV/bin/flask" setup

pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait || true
}
trap cleanup INT TERM EXIT

# One gevent worker: the in-process cache stays coherent without Redis (set REDIS_URL for more).
GUNICORN_BIND="127.0.0.1:${PORT}" GUNICORN_WORKERS=${GUNICORN_WORKERS:-1} \
  "$VENV/bin/gunicorn" -c api/gunicorn.conf.py cloudeye:app &
pids+=($!)
if [ -f sync_main.py ]; then
  "$VENV/bin/python" sync_main.py &
  pids+=($!)
fi
echo "cloudeye is running: the console on http://127.0.0.1:${PORT}/, the API on http://127.0.0.1:${PORT}/api/cloudeye/v1 (Ctrl-C stops it)"
wait -n "${pids[@]}"
