"""Healthcheck of the cloudeye image: `python docker/healthcheck.py [URL]`.

With a URL (compose's api service): exit 0 when it answers 2xx within the timeout, 1 otherwise.
Without one (the image's HEALTHCHECK), ready means what the container runs: the api (gunicorn) its
/readyz, the sync worker a fresh heartbeat (`sync_main.py --healthcheck`), a one-shot command (migrate,
`flask ...`) simply running. The command is read from PID 1's command line, which is the process itself
or, under `init: true`, tini with the process's command after it.
The image has no curl; this needs only the standard library.
"""

import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8000/readyz"


def check(url: str, timeout: float = 4.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own URL
            return 0 if 200 <= response.status < 300 else 1
    except urllib.error.HTTPError as exc:
        print(f"{url}: {exc.code} {exc.read(300).decode(errors='replace')}", file=sys.stderr)
    except (urllib.error.URLError, OSError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
    return 1


def container_command(cmdline: Path = Path("/proc/1/cmdline")) -> list[str]:
    return [arg.decode(errors="replace") for arg in cmdline.read_bytes().split(b"\0") if arg]


def role(command: list[str]) -> str:
    """api, sync or other, from the container's command (the entrypoint's shortcuts included)."""
    words = {Path(arg).name for arg in command}
    if "sync_main.py" in words or "sync" in words:
        return "sync"
    if "gunicorn" in words or "api" in words or words <= {"entrypoint.sh", "docker-init", "tini", "--"}:
        return "api"  # no command at all is the image's CMD: api
    return "other"


def check_container() -> int:
    kind = role(container_command())
    if kind == "api":
        return check(DEFAULT_URL)
    if kind == "sync":
        return subprocess.run([sys.executable, "sync_main.py", "--healthcheck"], timeout=30).returncode
    return 0


if __name__ == "__main__":
    sys.exit(check(sys.argv[1]) if len(sys.argv) > 1 else check_container())
