#!/usr/bin/env bash
# `make env`: writes .env from .env.example with fresh random secrets. Never overwrites an existing file.
#   scripts/make-env.sh [TARGET]     (default: .env at the repository root)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=${1:-$root/.env}
example=$root/.env.example

if [ -e "$target" ]; then
	echo "[env] $target already exists: left untouched (delete it first to generate a new one)"
	exit 0
fi
umask 077 # the file holds secrets
python3 - "$example" "$target" <<'PY'
import os
import re
import secrets
import sys

example, target = sys.argv[1], sys.argv[2]
SECRETS = {"SECRET_KEY": 48, "MYSQL_PASSWORD": 24, "MYSQL_ROOT_PASSWORD": 24, "CLOUDEYE_ADMIN_PASSWORD": 18}
lines, filled = [], set()
with open(example, encoding="utf-8") as source:
    for line in source:
        match = re.match(r"^([A-Z][A-Z0-9_]*)=\s*$", line)
        if match and match.group(1) in SECRETS:
            name = match.group(1)
            # token_urlsafe: letters, digits, - and _ only, so the value is safe inside DATABASE_URL.
            line = f"{name}={secrets.token_urlsafe(SECRETS[name])}\n"
            filled.add(name)
        lines.append(line)
missing = set(SECRETS) - filled
if missing:
    sys.exit(f"[env] {example} lacks empty lines for {sorted(missing)}")
# O_EXCL: never replace a file that appeared meanwhile.
fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
with os.fdopen(fd, "w", encoding="utf-8") as out:
    out.writelines(lines)
print(f"[env] wrote {target} with generated {', '.join(sorted(filled))}")
PY
