"""`make run` on the embedded default: SQLite under DATA_DIR, no Redis, migrations and admin first."""

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from services.config import API_PREFIX

ROOT = Path(__file__).resolve().parent.parent

ADMIN_PASSWORD = "first-run-passphrase"  # one the password rules accept


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def running(tmp_path):
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CLOUDEYE_", "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "GUNICORN_"))
    }
    env.update(
        PORT=str(port),
        VENV=str(ROOT / ".venv"),
        DATA_DIR=str(tmp_path / "data"),
        LOG_DIR=str(tmp_path / "log"),
        CLOUDEYE_ADMIN_USERNAME="admin",
        CLOUDEYE_ADMIN_PASSWORD=ADMIN_PASSWORD,
    )
    output = open(tmp_path / "run.out", "wb")  # noqa: SIM115 - closed in the teardown
    process = subprocess.Popen(
        [str(ROOT / "scripts" / "run-local.sh")],
        cwd=ROOT,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(base + "/readyz", timeout=10).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or busy starting up
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    "make run did not become ready:\n" + (tmp_path / "run.out").read_text()[-3000:]
                )
            time.sleep(0.3)
        yield base, tmp_path
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        output.close()


def test_make_run_serves_the_api_on_sqlite_without_redis(running):
    base, workdir = running
    assert (workdir / "data" / "cloudeye.db").exists()
    ready = requests.get(base + "/readyz").json()
    assert ready == {"status": "ready", "db": "ok", "redis": "disabled", "migrations": "ok"}
    login = requests.post(
        base + API_PREFIX + "/users/login", json={"username": "admin", "password": ADMIN_PASSWORD}
    )
    assert login.status_code == 200
    # no nginx in front: the app's own security headers, and no cache may keep the token
    assert login.headers["X-Content-Type-Options"] == "nosniff" and login.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'none'" in login.headers["Content-Security-Policy"]
    assert login.headers["Cache-Control"] == "no-store"
    headers = {"Authorization": "Bearer " + login.json()["token"]}
    site = requests.post(
        base + API_PREFIX + "/sites", json={"name": "self", "url": base + "/healthz"}, headers=headers
    )
    assert site.status_code == 201
    assert requests.get(base + API_PREFIX + "/sites", headers=headers).json()["total"] == 1
    # the sync worker runs beside the API and checks the new site
    site_id = site.json()["id"]
    deadline = time.monotonic() + 60
    checks = {}
    while time.monotonic() < deadline:
        checks = requests.get(
            base + f"{API_PREFIX}/usability/checks?site_id={site_id}", headers=headers, timeout=10
        ).json()
        if checks["total"]:
            break
        time.sleep(0.5)
    assert checks["total"] >= 1 and checks["items"][0]["status"] == "up", checks
    for role in ("api", "sync", "migrate"):
        assert list((workdir / "log").glob(f"{role}.*.log")), f"no {role} log file"
    # The console works from the same process, its catalogs and assets as committed (no build step).
    console = requests.Session()
    form = console.get(base + "/login", headers={"Accept-Language": "zh-CN"})
    assert "登录 cloudeye" in form.text
    token = re.search(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"', form.text).group(1)
    console.post(base + "/login", data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": token})
    overview = console.get(base + "/", headers={"Accept-Language": "en"})
    assert overview.status_code == 200 and ">self</a>" in overview.text
    for asset in re.findall(r'(?:href|src)="(/assets/[^"]+)"', overview.text):
        assert console.get(base + asset).status_code == 200, asset
