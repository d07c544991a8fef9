"""The production topology booted by `make stack` (supervisor: nginx, gunicorn, sync) on a private MariaDB
and Redis: what reaches the API through nginx, nginx's limits and lists, and how the stack lives through a
killed worker, a database outage and a Redis outage. Tests run in file order; the outage tests restore
what they stop, and the last one stops the stack."""

import http.client
import json
import os
import signal
import threading
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from services.config import API_PREFIX
from tests.stack.conftest import DENIED_FORWARDED, DENIED_PEER, MAX_REPORT_BYTES
from tests.waiting import wait_until

pytestmark = pytest.mark.stack

SECURITY_HEADERS = ("X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy", "Content-Security-Policy")


def assert_json_error(response, status):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["status"] == status and body["title"]
    return body


def request_from(address: str, port: int, path: str, headers: dict | None = None):
    """A GET whose source address is `address` (any 127.x address is local)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(address, 0))
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


# --- through nginx to the API and the database ------------------------------------------------------------


def test_requests_through_nginx_reach_the_api_and_the_database(stack):
    ready = requests.get(f"{stack.url}/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json()["db"] == "ok" and ready.json()["redis"] == "ok"

    created = requests.post(
        stack.api("/sites"),
        json={"name": "stack probe target", "url": "http://127.0.0.1:9/", "check_interval_s": 3600},
        headers=stack.auth,
        timeout=10,
    )
    assert created.status_code == 201, created.text
    site_id = created.json()["id"]
    listed = requests.get(stack.api("/sites"), headers=stack.auth, timeout=10)
    assert listed.status_code == 200 and site_id in [site["id"] for site in listed.json()["items"]]

    engine = sa.create_engine(stack.mariadb.root_url("cloudeye_stack"))
    try:
        with engine.connect() as connection:
            name = connection.execute(
                sa.text("SELECT name FROM sites WHERE id = :id"), {"id": site_id}
            ).scalar()
    finally:
        engine.dispose()
    assert name == "stack probe target"


def test_static_files_and_uploads_work_from_a_checkout_nobody_else_may_enter(stack):
    """The checkout sits in a 0700 directory, as a clone in a home directory does; nginx's workers (another
    user when the stack runs as root) still serve the static files and buffer request bodies to disk."""
    assert stack.root.parent.stat().st_mode & 0o777 == 0o700
    robots = requests.get(f"{stack.url}/robots.txt", timeout=10)
    assert robots.status_code == 200 and robots.text.startswith("User-agent")
    # Beyond nginx's in-memory buffer (256 KiB): written to its temporary directory on the way.
    report = (
        b'{"findings": ['
        + b",".join(
            b'{"title": "t%d", "severity": "low", "rule_id": "r%d", "location": "https://x.example.test/%d"}'
            % (n, n, n)
            for n in range(4000)
        )
        + b"]}"
    )
    assert len(report) > 256 * 1024
    site = requests.post(
        stack.api("/sites"),
        json={"name": "uploads", "url": "http://127.0.0.1:9/"},
        headers=stack.auth,
        timeout=10,
    ).json()["id"]
    imported = requests.post(
        stack.api("/bugs/imports"), headers=stack.auth, data={"site_id": site},
        files={"file": ("report.json", report)}, timeout=60,
    )  # fmt: skip
    assert imported.status_code == 201, imported.text
    assert imported.json()["created"] == 4000


def test_every_program_runs_under_supervisor(stack):
    status = stack.supervisor_status()
    for program in ("dataapi", "apisync", "nginx"):
        assert f"{program} " in status and "RUNNING" in status.split(program, 1)[1].splitlines()[0], status
    assert len(stack.gunicorn_workers()) == 2


def test_the_request_id_travels_from_nginx_to_the_app(stack):
    response = requests.get(stack.api("/users/me"), headers=stack.auth, timeout=10)
    assert response.status_code == 200
    request_id = response.headers["X-Request-ID"]
    assert len(request_id) == 32  # nginx's $request_id, echoed by the app
    # Both access logs carry it (each is written once the response is out, hence the wait).
    for log in ("nginx-access.log", "dataapi.out.log"):
        path = stack.directory / "log" / log
        wait_until(
            lambda path=path: f"rid={request_id}" in path.read_text(), timeout=10, message=f"{log} line"
        )


def test_security_headers_on_answers_errors_and_static_files(stack):
    responses = [
        requests.get(stack.api("/users/me"), headers=stack.auth, timeout=10),
        requests.get(stack.api("/users/me"), timeout=10),  # the app's 401
        requests.get(f"{stack.url}/static/robots.txt", timeout=10),
        requests.get(f"{stack.url}/static/missing.css", timeout=10),  # nginx's 404
    ]
    assert [r.status_code for r in responses] == [200, 401, 200, 404]
    for response in responses:
        for header in SECURITY_HEADERS:
            assert header in response.headers, (response.url, header)
        assert response.headers["Server"] == "nginx"  # server_tokens off: no version
        assert "Strict-Transport-Security" not in response.headers  # plain HTTP
    for response in responses:  # one copy of each: the app's on its answers, nginx's on its own
        assert response.headers["X-Frame-Options"] == "DENY", response.url
        assert response.headers["X-Content-Type-Options"] == "nosniff", response.url
    assert "default-src 'none'" in responses[0].headers["Content-Security-Policy"]
    assert responses[2].text.startswith("User-agent")
    assert_json_error(responses[3], 404)
    docs = requests.get(stack.api("/docs"), timeout=10)
    policy = docs.headers["Content-Security-Policy"]
    assert docs.status_code == 200 and "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert requests.get(stack.api("/docs.js"), timeout=10).status_code == 200


def test_json_is_compressed(stack):
    response = requests.get(stack.api("/openapi.json"), headers={"Accept-Encoding": "gzip"}, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.json()["openapi"].startswith("3.")


# --- nginx's limits and lists ----------------------------------------------------------------------------


def test_too_large_upload_gets_413_json_from_nginx(stack):
    too_large = b"x" * (MAX_REPORT_BYTES + 2 * 1024 * 1024)
    response = requests.post(
        stack.api("/bugs/imports"),
        headers={**stack.auth, "Content-Type": "application/octet-stream"},
        data=too_large,
        timeout=30,
    )
    body = assert_json_error(response, 413)
    assert "X-Request-ID" not in response.headers  # answered by nginx, the app never saw it
    assert body["request_id"]

    # Within the limit, nginx lets it through to the app (which answers with its own error for this body).
    within = requests.post(
        stack.api("/bugs/imports"),
        headers={**stack.auth, "Content-Type": "application/octet-stream"},
        data=b"x" * (MAX_REPORT_BYTES // 2),
        timeout=30,
    )
    assert within.status_code != 413 and "X-Request-ID" in within.headers


def test_every_other_route_has_the_small_body_limit(stack):
    """A login body of a megabyte and a half is refused by nginx (MAX_REQUEST_BYTES) before the app reads
    it, while the report upload takes that much (above)."""
    response = requests.post(
        stack.api("/users/login"),
        headers={"Content-Type": "application/json"},
        data=b'{"username": "' + b"x" * (3 * 512 * 1024) + b'", "password": "y"}',
        timeout=30,
    )
    assert_json_error(response, 413)
    assert "X-Request-ID" not in response.headers  # nginx's answer


def test_a_burst_of_logins_gets_429_json(stack):
    # From its own client address (X-Forwarded-For from the trusted 127.0.0.1), so the session's
    # admin login keeps its allowance; a new username each time, so the app's own limit stays out of it.
    headers = {"X-Forwarded-For": "198.51.100.20"}
    statuses = []
    for attempt in range(15):
        response = requests.post(
            stack.api("/users/login"),
            json={"username": f"burst{attempt}", "password": "wrong-password"},
            headers=headers,
            timeout=10,
        )
        statuses.append(response.status_code)
        if response.status_code == 429:
            body = assert_json_error(response, 429)
            assert response.headers["Retry-After"] and "X-Request-ID" not in response.headers
            assert "login" in body["message"]
    assert statuses[0] == 401
    assert 429 in statuses, statuses
    # Another client address is not affected.
    other = requests.post(
        stack.api("/users/login"),
        json={"username": "someone", "password": "wrong-password"},
        headers={"X-Forwarded-For": "198.51.100.21"},
        timeout=10,
    )
    assert other.status_code == 401
    # The app counts failures against the client nginx names (X-Real-IP from its trusted loopback peer),
    # not against nginx's own address.
    log = stack.directory / "log" / "dataapi.out.log"
    wait_until(
        lambda: "from 198.51.100.21" in log.read_text(), timeout=10, message="the client in the app's log"
    )
    assert "username='someone' from 127.0.0.1" not in log.read_text()


def test_a_denied_peer_gets_403_json(stack):
    status, headers, body = request_from(DENIED_PEER, stack.port, API_PREFIX + "/users/me")
    assert status == 403 and headers["Content-Type"] == "application/json"
    assert json.loads(body)["status"] == 403
    for header in SECURITY_HEADERS:
        assert header in headers
    # 127.0.0.3 is not listed.
    assert request_from("127.0.0.3", stack.port, "/healthz")[0] == 200


def test_the_deny_list_applies_to_the_real_client_address(stack):
    denied = requests.get(f"{stack.url}/healthz", headers={"X-Forwarded-For": DENIED_FORWARDED}, timeout=10)
    assert_json_error(denied, 403)
    allowed = requests.get(f"{stack.url}/healthz", headers={"X-Forwarded-For": "203.0.113.10"}, timeout=10)
    assert allowed.status_code == 200
    # Only trusted proxies are believed: the denied peer cannot claim another address.
    status, _, _ = request_from(DENIED_PEER, stack.port, "/healthz", {"X-Forwarded-For": "203.0.113.10"})
    assert status == 403


def test_operators_add_an_address_and_reload(stack):
    address = "203.0.113.77"
    assert (
        requests.get(f"{stack.url}/healthz", headers={"X-Forwarded-For": address}, timeout=10).status_code
        == 200
    )
    original = stack.deny_file.read_text()
    stack.deny_file.write_text(original + f"deny {address};\n")
    try:
        result = stack.script("stack-ctl.sh", "reload-nginx", timeout=60)
        assert result.returncode == 0, result.stderr
        wait_until(
            lambda: (
                requests.get(
                    f"{stack.url}/healthz", headers={"X-Forwarded-For": address}, timeout=10
                ).status_code
                == 403
            ),
            timeout=15,
            message="the new deny rule",
        )
    finally:
        stack.deny_file.write_text(original)
        stack.script("stack-ctl.sh", "reload-nginx", timeout=60)


def test_app_user_has_only_the_privileges_it_needs(stack):
    engine = sa.create_engine(stack.mariadb.root_url())
    try:
        with engine.connect() as connection:
            grants = [
                row[0] for row in connection.execute(sa.text("SHOW GRANTS FOR 'cloudeye_stack'@'127.0.0.1'"))
            ]
    finally:
        engine.dispose()
    assert grants[0].startswith("GRANT USAGE ON *.* TO `cloudeye_stack`@`127.0.0.1`")
    database_grant = grants[1]
    assert database_grant.startswith(
        "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, REFERENCES, INDEX, ALTER ON"
    )
    assert "`cloudeye_stack`.*" in database_grant and len(grants) == 2

    password = (stack.directory / "db_password").read_text().strip()
    app_engine = sa.create_engine(
        f"mysql+pymysql://cloudeye_stack:{password}@127.0.0.1:{stack.mariadb.port}/cloudeye_stack"
    )
    try:
        with app_engine.connect() as connection:
            assert connection.execute(sa.text("SELECT COUNT(*) FROM users")).scalar() >= 1
            denied = (sa.exc.OperationalError, sa.exc.ProgrammingError)
            with pytest.raises(denied, match="1044|denied"):
                connection.execute(sa.text("CREATE DATABASE cloudeye_stack_other"))
            with pytest.raises(denied, match="1142|denied"):
                connection.execute(sa.text("SELECT COUNT(*) FROM mysql.user"))
    finally:
        app_engine.dispose()


# --- living through failures -----------------------------------------------------------------------------


def test_a_killed_worker_loses_only_its_requests_and_is_replaced(stack):
    workers_before = stack.gunicorn_workers()
    clients, per_client = 8, 60
    results: list[list[int]] = [[] for _ in range(clients)]
    started = threading.Barrier(clients + 1)

    def client(index: int):
        session = requests.Session()
        started.wait()
        for _ in range(per_client):
            try:
                status = session.get(stack.api("/sites"), headers=stack.auth, timeout=30).status_code
            except requests.RequestException:
                status = -1
            results[index].append(status)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    started.wait()
    wait_until(lambda: sum(map(len, results)) >= clients * 5, timeout=60, interval=0.01, message="load")
    victim = min(workers_before)
    os.kill(victim, signal.SIGKILL)
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)

    statuses = [status for result in results for status in result]
    failed = [status for status in statuses if status != 200]
    print(f"kill -9 of worker {victim}: {len(failed)} of {len(statuses)} requests lost")
    # Each client has at most one request in flight: the killed worker held at most `clients` of them.
    assert len(failed) <= clients, failed
    assert set(failed) <= {502}, failed  # nginx answers for the lost ones (JSON 502)
    assert len(statuses) == clients * per_client
    # Every client ends with successes: the service recovered while the load went on.
    assert all(result[-1] == 200 for result in results), [result[-5:] for result in results]

    def replaced():
        workers = stack.gunicorn_workers()
        return workers if len(workers) == 2 and victim not in workers else None

    workers_after = wait_until(replaced, timeout=30, message="the replacement worker")
    assert workers_after - workers_before  # a new worker, started by the same master


def test_redis_stopped_reads_still_work(stack):
    stack.redis.stop()
    try:
        for path in ("/sites", "/users/me", "/usability/summary"):
            response = requests.get(stack.api(path), headers=stack.auth, timeout=15)
            if path == "/usability/summary":
                assert response.status_code in (200, 422), response.text  # 422: site_id is required
            else:
                assert response.status_code == 200, response.text
        ready = requests.get(f"{stack.url}/readyz", timeout=15)
        assert ready.status_code == 200 and ready.json()["redis"] == "down"  # degraded, still serving
    finally:
        stack.redis.start()
    wait_until(
        lambda: requests.get(f"{stack.url}/readyz", timeout=10).status_code == 200,
        timeout=60,
        message="readiness",
    )


def test_database_outage_gives_503_and_recovers_without_a_restart(stack):
    master = stack.pid("gunicorn.pid")
    workers = stack.gunicorn_workers()
    stack.mariadb.stop()
    try:
        response = requests.get(stack.api("/sites"), headers=stack.auth, timeout=30)
        body = assert_json_error(response, 503)
        assert "database" in body["message"] and response.headers["Retry-After"]
        assert "X-Request-ID" in response.headers  # the app's own answer, not nginx's
        assert requests.get(f"{stack.url}/readyz", timeout=30).status_code == 503
        assert requests.get(f"{stack.url}/healthz", timeout=30).status_code == 200  # alive, not ready
    finally:
        stack.mariadb.start()
    wait_until(
        lambda: requests.get(stack.api("/sites"), headers=stack.auth, timeout=30).status_code == 200,
        timeout=60,
        message="the API back on the database",
    )
    assert stack.pid("gunicorn.pid") == master and stack.gunicorn_workers() == workers
    # The worker lived through it too: its heartbeat is fresh again.
    wait_until(
        lambda: stack.script("stack-ctl.sh", "exec", str(Path(stack.env["CLOUDEYE_VENV"]) / "bin/python"), "sync_main.py",
                             "--healthcheck", timeout=60).returncode == 0,
        timeout=60, interval=1, message="the sync heartbeat",
    )  # fmt: skip


def test_stack_down_stops_every_program(stack):
    supervisord = stack.pid("supervisord.pid")
    gunicorn = stack.pid("gunicorn.pid")
    nginx = stack.pid("nginx/nginx.pid")
    result = stack.script("stack-down.sh", timeout=120)
    assert result.returncode == 0, result.stderr
    for pid in (supervisord, gunicorn, nginx):
        status = Path(f"/proc/{pid}/status")
        assert not status.exists() or "zombie" in status.read_text().lower(), pid
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{stack.url}/healthz", timeout=5)
    log = (stack.directory / "log" / "dataapi.out.log").read_text()
    assert "Handling signal: term" in log  # a graceful stop, not a KILL
