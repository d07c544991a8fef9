"""Under gunicorn with ONE gevent worker, a request stuck on the database does not stall the others.

Another connection holds a row lock on a site (SELECT ... FOR UPDATE), so `PATCH /sites/{id}` waits
inside MariaDB. While it waits, the same worker answers /healthz, /users/me and /sites; only when the
lock is released does the PATCH complete. Nothing here measures time: the proof is the order of events
(the other answers arrive while the PATCH is still blocked and the lock still held).
"""

import os
import select
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pymysql
import pytest
import requests
from sqlalchemy.engine import make_url

from services.config import API_PREFIX
from tests import settings
from tests.factories import create_site, create_user, token_for
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(settings.BACKEND != "mysql", reason="row locks need MariaDB/MySQL")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server(app, test_env, tmp_path):
    """The real app under gunicorn, one gevent worker, on a free loopback port."""
    port = _free_port()
    env = {
        **os.environ,
        **test_env,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "1",
        "GUNICORN_WORKER_CLASS": "gevent",
        "GUNICORN_ACCESSLOG": "-",
        "GUNICORN_PIDFILE": "",
        # Every report is imported within its request here (what these tests prove about the loop); the
        # queued path of big reports has its own tests (tests/api/test_queued_imports.py).
        "IMPORT_QUEUE_BYTES": "0",
    }
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 - closed in the finally below
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "api/gunicorn.conf.py", "cloudeye:app"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"

    def ready():
        if process.poll() is not None:
            raise AssertionError(f"gunicorn exited: {(tmp_path / 'gunicorn.log').read_text()[-3000:]}")
        try:
            return requests.get(f"{base}/healthz", timeout=1).status_code == 200
        except requests.RequestException:  # not listening yet, or the worker still loading the app
            return False

    try:
        wait_until(ready, 60, "gunicorn to answer /healthz", interval=0.05)
        yield base, process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        log.close()


def _lock_connection(database_url: str):
    url = make_url(database_url)
    return pymysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        database=url.database,
        autocommit=False,
    )


def _worker_pids(master_pid: int) -> list[int]:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    return [int(pid) for pid in children]


def test_a_request_blocked_on_a_row_lock_does_not_stall_the_worker(server, test_env, ctx):
    base, process = server
    operator = create_user("operator")
    site = create_site(operator, name="before")
    headers = {"Authorization": f"Bearer {token_for(operator)}"}
    assert len(_worker_pids(process.pid)) == 1, "the proof needs exactly one worker"
    # Warm the worker (database pool, Redis, lazy imports) so the timed part only waits on the lock.
    assert requests.get(f"{base}{API_PREFIX}/sites", headers=headers, timeout=60).status_code == 200

    locker = _lock_connection(test_env["DATABASE_URL"])
    patch_result = {}
    try:
        with locker.cursor() as cursor:
            cursor.execute("SELECT @@GLOBAL.innodb_lock_wait_timeout")
            (lock_wait_timeout,) = cursor.fetchone()
            # Every client timeout below stays well inside the server's lock wait, so the PATCH can only
            # end by our releasing the lock, never by MariaDB giving up on it.
            assert lock_wait_timeout >= 20, f"innodb_lock_wait_timeout={lock_wait_timeout} is too short"
            # Once the PATCH waits, the three other requests must be done before MariaDB would give up.
            budget = (lock_wait_timeout - 5) / 3
            cursor.execute("START TRANSACTION")
            cursor.execute("SELECT id FROM sites WHERE id = %s FOR UPDATE", (site.id,))

        def patch():
            try:
                response = requests.patch(
                    f"{base}{API_PREFIX}/sites/{site.id}",
                    json={"name": "after"},
                    headers=headers,
                    timeout=lock_wait_timeout + 10,
                )
                patch_result["status"] = response.status_code
                patch_result["body"] = response.json()
            except Exception as exc:  # reported by the assertions below
                patch_result["error"] = exc

        patcher = threading.Thread(target=patch, daemon=True)
        patcher.start()

        def patch_waits_on_our_lock():
            if not patcher.is_alive():
                raise AssertionError(f"the PATCH finished without waiting on the lock: {patch_result}")
            with locker.cursor() as cursor:  # a fresh statement on the locking connection keeps the lock
                # The test database is this test's own and the row is locked by us alone: an UPDATE of
                # sites executing in it cannot finish before we release the lock, so it is waiting on us.
                cursor.execute(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST"
                    " WHERE db = DATABASE() AND id <> CONNECTION_ID() AND info LIKE 'UPDATE sites%'"
                )
                return cursor.fetchone()[0] > 0

        # Reaching the UPDATE may take a while on a busy machine; the lock wait only starts there.
        wait_until(patch_waits_on_our_lock, 60, "the PATCH to wait on the row lock", interval=0.05)

        # The worker is busy with a PATCH stuck in the database; these go to the same worker.
        answers = {
            "/healthz": requests.get(f"{base}/healthz", timeout=budget),
            "/users/me": requests.get(f"{base}{API_PREFIX}/users/me", headers=headers, timeout=budget),
            "/sites": requests.get(f"{base}{API_PREFIX}/sites", headers=headers, timeout=budget),
        }
        assert {path: r.status_code for path, r in answers.items()} == dict.fromkeys(answers, 200)
        assert answers["/users/me"].json()["id"] == operator.id
        assert [s["name"] for s in answers["/sites"].json()["items"]] == ["before"]  # no dirty read
        # ... and all of that happened while the PATCH was still waiting on the lock we still hold.
        assert patcher.is_alive() and not patch_result
        assert patch_waits_on_our_lock()
    finally:
        locker.rollback()  # releases the row lock
        locker.close()

    patcher.join(timeout=lock_wait_timeout + 15)
    assert not patcher.is_alive(), "the PATCH did not finish after the lock was released"
    assert "error" not in patch_result, patch_result.get("error")
    assert patch_result["status"] == 200, patch_result
    assert patch_result["body"]["name"] == "after"
    assert process.poll() is None  # the worker survived all of it


def _multipart(fields: dict, filename: str, content: bytes) -> tuple[str, bytes]:
    boundary = "cloudeye-test-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + content
        + b"\r\n"
    )
    return f"multipart/form-data; boundary={boundary}", b"".join(parts) + f"--{boundary}--\r\n".encode()


def test_health_is_answered_while_a_big_report_is_parsed(server, ctx):
    """Parsing a report is CPU work that never yields; on the worker's one event loop it would hold every
    other request of the process until it is done. The upload is read and parsed in a thread instead: the
    worker answers /healthz over and over while the import is still running. The report repeats one finding,
    so the import does no database work (which would yield anyway) until it has parsed everything."""
    base, process = server
    operator = create_user("operator")
    site = create_site(operator)
    token = token_for(operator)
    assert len(_worker_pids(process.pid)) == 1, "the proof needs exactly one worker"
    line = (
        b'{"template-id": "exposed-panel", "info": {"name": "Exposed panel", "severity": "high", '
        b'"description": "' + b"d" * 600 + b'"}, "host": "https://big.example.test", '
        b'"matched-at": "https://big.example.test/admin", "type": "http"}\n'
    )
    content_type, body = _multipart({"site_id": site.id}, "scan.jsonl", line * 40_000)
    host, port = base.removeprefix("http://").split(":")
    headers = {"Authorization": f"Bearer {token}"}
    assert requests.get(f"{base}/healthz", timeout=60).status_code == 200  # the worker is warm

    upload = socket.create_connection((host, int(port)), timeout=120)
    try:
        upload.sendall(
            (
                f"POST {API_PREFIX}/bugs/imports HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode()
            + body
        )
        answered_meanwhile = 0
        while not select.select([upload], [], [], 0)[0]:  # the import has not answered yet
            assert requests.get(f"{base}/healthz", timeout=120).status_code == 200
            answered_meanwhile += int(not select.select([upload], [], [], 0)[0])
        response = b""
        while chunk := upload.recv(65536):
            response += chunk
    finally:
        upload.close()
    assert response.startswith(b"HTTP/1.1 201"), response[:500]
    assert b'"created": 1' in response or b'"created":1' in response
    # Answers all along the parse, not only while the body was still arriving (about 10-20 of them when
    # the parse held the loop; 100-200 here): the loop was never held for the whole parse.
    assert answered_meanwhile >= 50, answered_meanwhile
    assert requests.get(f"{base}{API_PREFIX}/users/me", headers=headers, timeout=60).status_code == 200
