#!/usr/bin/env bash
# The browser tests (tests/console) drive Debian's Chromium through Playwright: install it when missing.
# (Playwright's own browser download is not used: Playwright is pointed at /usr/bin/chromium.)
set -euo pipefail

log() { echo "[ensure-browser] $*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# A CJK font too, so that the Chinese pages (and the language switch in the screenshots) have glyphs.
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi
log "chromium and a CJK font are installed"
