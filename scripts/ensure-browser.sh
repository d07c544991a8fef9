#!/usr/bin/env bash
# The browser tests (tests/console) drive Debian's Chromium through Playwright: install it when missing.
# (Playwright's own browser download is not used: Playwright is pointed at /usr/bin/chromium.)
set -euo pipefail

log() { echo "[ensure-browser] $*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if [ -x /usr/bin/chromium ]; then
  log "chromium is installed"
  exit 0
fi
log "installing chromium"
as_root apt-get update -qq
DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium >/dev/null
log "chromium is installed"
