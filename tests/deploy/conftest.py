"""Shared fixtures of the static deployment checks: the parsed compose files, gunicorn's settings, the
variables .env.example documents, and nginx configurations rendered by nginx/render.sh."""

import os
import re
import runpy
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def load_yaml(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


def env_example_names() -> set[str]:
    """Every variable .env.example documents, set (`X=...`) or shown with its default (`# X=...`)."""
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def gunicorn_settings(**env) -> dict:
    """api/gunicorn.conf.py evaluated with only `env` among the GUNICORN_* variables."""
    saved = {key: value for key, value in os.environ.items() if key.startswith("GUNICORN_")}
    for key in saved:
        del os.environ[key]
    os.environ.update(env)
    try:
        return runpy.run_path(str(ROOT / "api" / "gunicorn.conf.py"))
    finally:
        for key in env:
            os.environ.pop(key, None)
        os.environ.update(saved)


def render_nginx(out_dir: Path, **env) -> Path:
    """Runs nginx/render.sh into out_dir with paths a non-root nginx -t can use; returns nginx.conf."""
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "NGINX_OUT_DIR": str(out_dir),
        "NGINX_LISTEN": "127.0.0.1:18098",
        "NGINX_UPSTREAM": "127.0.0.1:18198",
        "NGINX_PID": str(out_dir / "nginx.pid"),
        "NGINX_ACCESS_LOGS": str(out_dir / "access.log"),
        "NGINX_ERROR_LOGS": str(out_dir / "error.log"),
        "NGINX_TEMP_DIR": str(out_dir / "tmp"),
    }
    base.update(env)
    result = subprocess.run(
        ["sh", str(ROOT / "nginx" / "render.sh")], env=base, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    return out_dir / "nginx.conf"


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if not found:
        pytest.fail("nginx is not installed: scripts/ensure-services.sh installs it (make test runs it)")
    return found


def nginx_test(conf: Path) -> subprocess.CompletedProcess:
    prefix = conf.parent
    return subprocess.run(
        [nginx_binary(), "-t", "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.fixture(scope="session")
def compose() -> dict:
    return load_yaml("compose.yaml")


@pytest.fixture(scope="session")
def staging() -> dict:
    return load_yaml("compose.staging.yaml")
