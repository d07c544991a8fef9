"""The compose stack end to end (issue 9): booted once by conftest.py with the README's quick start, then
taken through what an operator does to it. Tests run in file order and each leaves the stack serving:
the contract through nginx, the worker on the compose network and the data volume, migrations, scaling,
a MySQL restart, a killed api container, down and up, a backup restored into a fresh volume, an upgrade
from the previous schema revision, and the log volume."""

import json
import re
import threading
import time
from pathlib import Path

import pytest
import requests
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory

from tests.compose.conftest import MAX_REPORT_BYTES, ROOT, docker
from tests.waiting import wait_until

pytestmark = pytest.mark.compose

SECURITY_HEADERS = ("X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy", "Content-Security-Policy")
APP_SERVICES = ("api", "sync")
NUCLEI_SAMPLE = ROOT / "tests" / "samples" / "nuclei.jsonl"


def assert_json_error(response, status):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["status"] == status and body["title"]
    return body


def services_state(stack, *extra) -> dict[str, list[dict]]:
    _, _, stdout = stack.compose("ps", "-a", "--format", "json", *extra)
    text = stdout.decode().strip()
    rows = json.loads(text) if text.startswith("[") else [json.loads(line) for line in text.splitlines()]
    state: dict[str, list[dict]] = {}
    for row in rows:
        state.setdefault(row["Service"], []).append(row)
    return state


def all_healthy(stack, expected: dict[str, int]):
    state = services_state(stack)
    for service, count in expected.items():
        running = [row for row in state.get(service, []) if row["State"] == "running"]
        if len(running) != count or any(row.get("Health") != "healthy" for row in running):
            return None
    return state


def wait_healthy(stack, timeout: float = 180, **counts):
    expected = {"mysql": 1, "redis": 1, "api": 1, "sync": 1, "nginx": 1, **counts}
    return wait_until(
        lambda: all_healthy(stack, expected), timeout=timeout, interval=1, message=f"{expected}"
    )


def create_site(stack, name: str, url: str, interval: int = 3600, timeout: float = 30):
    return requests.post(
        stack.api("/sites"),
        json={
            "name": name,
            "url": url,
            "check_interval_s": interval,
            "timeout_s": 5,
            "tamper_enabled": False,
        },
        headers=stack.auth,
        timeout=timeout,
    )


def site_names(stack) -> set[str]:
    rows = stack.sql("SELECT name FROM sites")
    return {row[0] for row in rows}


def check_total(stack, site_id: int) -> int:
    response = requests.get(
        stack.api(f"/usability/checks?site_id={site_id}&per_page=1"), headers=stack.auth, timeout=30
    )
    assert response.status_code == 200, response.text
    return response.json()["total"]


def target_hits(stack) -> list[tuple[str, str]]:
    """(client address, path) of every request the target site answered."""
    _, _, stdout = stack.compose("logs", "--no-log-prefix", "target")
    return re.findall(r"^hit (\S+) (\S+)$", stdout.decode(), flags=re.MULTILINE)


def container_addresses(stack, service: str) -> dict[str, str]:
    network = f"{stack.project}_default"
    addresses = {}
    for container in stack.containers(service):
        template = '{{ (index .NetworkSettings.Networks "' + network + '").IPAddress }}'
        addresses[container] = docker("inspect", "-f", template, container).stdout.strip()
    return addresses


# --- make env && make base-images && make up -------------------------------------------------------------


def test_make_up_reaches_healthy_and_the_migrate_job_ran_once(stack):
    print(f"make up (build, migrate, start, wait) took {stack.outputs['up_seconds']} s")
    state = wait_healthy(stack, timeout=60)
    assert set(state) >= {"mysql", "redis", "api", "sync", "nginx"}
    up = stack.outputs["up"]
    # make up ran the one-shot job with `run --rm`: once, every revision applied once, the admin created.
    assert up.count("compose run --rm migrate") == 1
    revisions = ScriptDirectory.from_config(alembic_config()).walk_revisions()
    for revision in revisions:
        assert len(re.findall(rf"Running upgrade \S* ?-> {revision.revision}\b", up)) == 1, revision.revision
    assert "admin 'admin' created" in up
    assert "migrate" not in state  # removed after it exited 0 (make stops on any other exit)
    assert stack.sql("SELECT COUNT(*) FROM users")[0] == ["1"]
    # mysql-init ran in the first start of the volume: the app's user has only what it needs.
    grants = [row[0] for row in stack.sql("SHOW GRANTS FOR 'cloudeye'@'%'")]
    assert grants[0].startswith("GRANT USAGE ON *.* TO `cloudeye`@`%`") and len(grants) == 2, grants
    assert grants[1].startswith(
        "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, REFERENCES, INDEX, ALTER ON"
    )
    ready = requests.get(f"{stack.url}/readyz", timeout=10).json()
    assert ready["db"] == "ok" and ready["redis"] == "ok"


def test_the_images_run_as_a_user_without_build_tools_and_carry_healthchecks(stack):
    tag = stack.env["CLOUDEYE_TAG"]
    image = f"cloudeye:{tag}"
    report = docker(
        "run", "--rm", "--entrypoint", "sh", image, "-c",
        "id -u; for tool in gcc cc make g++ git curl; do command -v $tool || true; done; ls -A /app;"
        "echo --; ls -A /app/log /app/data",
    ).stdout.split("--")  # fmt: skip
    uid, *tools_and_app = report[0].split()
    assert uid == "10001"
    assert not [word for word in tools_and_app if word.startswith("/")], report  # no compiler, no git
    # .dockerignore: the image's /app is the code, nothing of the checkout's state or tests; the log and
    # data directories (volumes) start empty.
    assert set(tools_and_app) >= {"services", "api", "sync", "migrations", "docker", "cloudeye.py"}
    assert not set(tools_and_app) & {"tests", ".env", ".git", ".venv", "bench", "docs", "node_modules"}
    assert report[1].split() == ["/app/data:", "/app/log:"]
    for name in (image, f"cloudeye-nginx:{tag}"):
        config = json.loads(docker("image", "inspect", "-f", "{{json .Config}}", name).stdout)
        assert config["Healthcheck"]["Test"][0] == "CMD", name
    sizes = {
        name: int(docker("image", "inspect", "-f", "{{.Size}}", name).stdout) // 1_000_000
        for name in (image, f"cloudeye-nginx:{tag}")
    }
    print(f"image sizes (MB): {sizes}")


# --- the API contract through nginx ----------------------------------------------------------------------


def test_login_sites_import_and_lists_through_nginx(stack):
    me = requests.get(stack.api("/users/me"), headers=stack.auth, timeout=30)
    assert me.status_code == 200 and me.json()["username"] == "admin"

    created = create_site(stack, "e2e contract", "http://target:8000/s/contract")
    assert created.status_code == 201, created.text
    site_id = created.json()["id"]
    listed = requests.get(stack.api("/sites?per_page=100"), headers=stack.auth, timeout=30)
    assert listed.status_code == 200 and site_id in [site["id"] for site in listed.json()["items"]]

    with NUCLEI_SAMPLE.open("rb") as report:
        imported = requests.post(
            stack.api("/bugs/imports"),
            headers=stack.auth,
            data={"site_id": str(site_id)},
            files={"file": ("nuclei.jsonl", report, "application/octet-stream")},
            timeout=60,
        )
    assert imported.status_code == 201, imported.text
    assert imported.json()["created"] > 0 and imported.json()["source"] == "api"
    # The sync worker may add its own findings (missing security headers) to the site meanwhile.
    findings = requests.get(
        stack.api(f"/bugs?site_id={site_id}&scanner=nuclei&per_page=100"), headers=stack.auth, timeout=30
    )
    assert findings.status_code == 200
    body = findings.json()
    assert body["total"] == imported.json()["created"] == len(body["items"])
    assert set(body) >= {"items", "total", "page", "per_page"}
    imports = requests.get(stack.api(f"/bugs/imports?site_id={site_id}"), headers=stack.auth, timeout=30)
    assert [item["id"] for item in imports.json()["items"]] == [imported.json()["id"]]


def test_too_large_upload_gets_413_json_from_nginx(stack):
    response = requests.post(
        stack.api("/bugs/imports"),
        headers={**stack.auth, "Content-Type": "application/octet-stream"},
        data=b"x" * (MAX_REPORT_BYTES + 2 * 1024 * 1024),
        timeout=60,
    )
    body = assert_json_error(response, 413)
    assert body["request_id"] and "X-Request-ID" not in response.headers  # nginx's answer, not the app's


def test_a_burst_of_logins_gets_429_json(stack):
    # Its own client address (X-Forwarded-For, believed from Docker's proxy), new usernames each time: the
    # session's admin token and the app's own per-username limit stay out of it.
    statuses = []
    for attempt in range(15):
        response = requests.post(
            stack.api("/users/login"),
            json={"username": f"burst{attempt}", "password": "wrong-password"},
            headers={"X-Forwarded-For": "198.51.100.20"},
            timeout=30,
        )
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert_json_error(response, 429)
            assert response.headers["Retry-After"]
    assert statuses[0] == 401 and 429 in statuses, statuses
    other = requests.post(
        stack.api("/users/login"),
        json={"username": "someone", "password": "wrong-password"},
        headers={"X-Forwarded-For": "198.51.100.21"},
        timeout=30,
    )
    assert other.status_code == 401


def test_the_deny_list_gives_403_json_after_make_nginx_reload(stack):
    deny = stack.directory / "nginx" / "access" / "deny.conf"
    original = deny.read_text()
    (target_address,) = container_addresses(stack, "target").values()
    probe = (
        "import urllib.request, urllib.error\n"
        "try:\n    print(urllib.request.urlopen('http://nginx/healthz', timeout=10).status)\n"
        "except urllib.error.HTTPError as error:\n    print(error.code)\n"
    )
    assert stack.exec_python("target", probe).strip() == "200"
    deny.write_text(original + f"deny 203.0.113.66;\ndeny {target_address};\n")
    try:
        stack.make("nginx-reload", timeout=60)

        def denied_now():
            response = requests.get(
                f"{stack.url}/healthz", headers={"X-Forwarded-For": "203.0.113.66"}, timeout=10
            )
            return [response] if response.status_code == 403 else None  # a 4xx Response is falsy

        (denied,) = wait_until(denied_now, timeout=20, message="the new deny rule")
        assert_json_error(denied, 403)
        for header in SECURITY_HEADERS:
            assert header in denied.headers
        allowed = requests.get(
            f"{stack.url}/healthz", headers={"X-Forwarded-For": "203.0.113.67"}, timeout=10
        )
        assert allowed.status_code == 200
        # A peer on the compose network, by its own address.
        assert stack.exec_python("target", probe).strip() == "403"
    finally:
        deny.write_text(original)
        stack.make("nginx-reload", timeout=60)
    wait_until(
        lambda: stack.exec_python("target", probe).strip() == "200", timeout=20, message="allowed again"
    )


def test_security_headers_on_answers_errors_and_static_files(stack):
    responses = [
        requests.get(stack.api("/users/me"), headers=stack.auth, timeout=30),
        requests.get(stack.api("/users/me"), timeout=30),  # the app's 401
        requests.get(f"{stack.url}/static/robots.txt", timeout=30),
        requests.get(f"{stack.url}/static/missing.css", timeout=30),  # nginx's 404
    ]
    assert [r.status_code for r in responses] == [200, 401, 200, 404]
    for response in responses:
        for header in SECURITY_HEADERS:
            assert header in response.headers, (response.url, header)
        assert response.headers["Server"] == "nginx"  # no version
        assert "Strict-Transport-Security" not in response.headers  # plain HTTP
    assert "default-src 'none'" in responses[0].headers["Content-Security-Policy"]
    assert len(responses[0].headers["X-Request-ID"]) == 32  # nginx's id, echoed by the app
    assert_json_error(responses[3], 404)


# --- the worker on the compose network and the data volume ----------------------------------------------


def test_sync_probes_a_site_on_another_container_and_ingests_a_dropped_report(stack):
    created = create_site(stack, "e2e target", "http://target:8000/s/probe", interval=10)
    assert created.status_code == 201, created.text
    site_id = created.json()["id"]

    def up_check():
        response = requests.get(
            stack.api(f"/usability/checks?site_id={site_id}"), headers=stack.auth, timeout=30
        )
        items = response.json()["items"] if response.status_code == 200 else []
        return next((item for item in items if item["status"] == "up"), None)

    check = wait_until(up_check, timeout=90, interval=1, message="a check of the target")
    assert check["http_status"] == 200
    (sync_address,) = container_addresses(stack, "sync").values()
    assert (sync_address, "/s/probe") in target_hits(stack)  # from the sync container, over the network

    # A report dropped into the data volume the way docs/sync.md says: a temporary name, then a rename.
    inbox = f"/app/data/inbox/{site_id}"
    stack.compose(
        "exec", "-T", "sync", "sh", "-c",
        f"mkdir -p {inbox} && cat > {inbox}/.scan.jsonl.part && mv {inbox}/.scan.jsonl.part {inbox}/scan.jsonl",
        stdin=NUCLEI_SAMPLE.read_bytes(),
    )  # fmt: skip

    def ingested():
        response = requests.get(stack.api(f"/bugs/imports?site_id={site_id}"), headers=stack.auth, timeout=30)
        return [item for item in response.json()["items"] if item["source"] == "inbox"]

    (imported,) = wait_until(ingested, timeout=90, interval=1, message="the inbox import")
    assert imported["filename"] == "scan.jsonl" and imported["created"] > 0
    processed = stack.compose("exec", "-T", "api", "ls", f"/app/data/processed/{site_id}")[1]
    assert "scan.jsonl" in processed  # moved, and visible from the api container: one shared volume
    assert stack.compose("exec", "-T", "api", "ls", "-A", inbox)[1].strip() == ""


def test_make_migrate_again_is_a_no_op(stack):
    version = stack.sql("SELECT version_num FROM alembic_version")
    users, sites = stack.sql("SELECT (SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM sites)")[0]
    _, output = stack.make("migrate", timeout=300)
    assert "Running upgrade" not in output
    assert stack.sql("SELECT version_num FROM alembic_version") == version
    assert stack.sql("SELECT (SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM sites)")[0] == [users, sites]


# --- scaling -----------------------------------------------------------------------------------------------


def test_scaled_up_the_stack_serves_without_error_and_no_check_is_made_twice(stack):
    # Due times spread over the interval, so both workers' polls find due sites.
    sites = []
    for index in range(12):
        created = create_site(stack, f"e2e scale {index}", f"http://target:8000/s/scale-{index}", interval=10)
        assert created.status_code == 201, created.text
        sites.append(created.json()["id"])
        time.sleep(0.4)

    statuses: list[int] = []
    stop = threading.Event()

    def load():
        session = requests.Session()
        while not stop.is_set():
            try:
                statuses.append(session.get(stack.api("/sites"), headers=stack.auth, timeout=30).status_code)
            except requests.RequestException as error:
                statuses.append(-1)
                print(f"request failed while scaling: {error}")
            time.sleep(0.05)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    try:
        stack.compose("up", "-d", "--wait", "--scale", "api=3", "--scale", "sync=2", timeout=600)
        wait_healthy(stack, api=3, sync=2)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert statuses and set(statuses) == {200}, [s for s in statuses if s != 200]

    # nginx re-resolves `api` by itself: every replica gets requests.
    api_containers = stack.containers("api")
    assert len(api_containers) == 3

    def served_by_all():
        ids = set()
        for _ in range(30):
            response = requests.get(stack.api("/sites"), headers=stack.auth, timeout=30)
            assert response.status_code == 200
            ids.add(response.headers["X-Request-ID"])
        _, _, stdout = stack.compose("logs", "--since", "5m", "api")
        serving = {line.split("|", 1)[0].strip() for line in stdout.decode().splitlines() if "rid=" in line
                   and line.rsplit("rid=", 1)[1].strip() in ids}  # fmt: skip
        return serving if len(serving) == 3 else None

    wait_until(served_by_all, timeout=60, interval=2, message="requests reaching all three api replicas")

    # Two workers claim the same due sites; every due check is made once: the probes the target answered
    # equal the checks stored, site by site.
    scaled_at = len(target_hits(stack))
    sync_addresses = set(container_addresses(stack, "sync").values())
    assert len(sync_addresses) == 2
    for site_id in sites:
        wait_until(lambda site_id=site_id: check_total(stack, site_id) >= 4, timeout=120, interval=2,
                   message=f"checks of site {site_id}")  # fmt: skip
    stack.compose("stop", "sync", timeout=120)  # in-flight probes finish and are stored first
    try:
        hits = target_hits(stack)
        probes_by = {address: 0 for address in sync_addresses}
        for address, path in hits[scaled_at:]:
            if path.startswith("/s/scale-"):
                probes_by[address] += 1  # a KeyError: a probe from anything but the two workers
        print(f"probes per sync replica since scaling: {probes_by}")
        for index, site_id in enumerate(sites):
            probes = sum(1 for _, path in hits if path == f"/s/scale-{index}")
            checks = requests.get(
                stack.api(f"/usability/checks?site_id={site_id}&per_page=100"), headers=stack.auth, timeout=30
            ).json()
            assert probes == checks["total"], (site_id, probes, checks["items"], hits[-40:])
    finally:
        stack.compose("start", "sync", timeout=120)
    wait_healthy(stack, api=3, sync=2)


# --- failures -----------------------------------------------------------------------------------------------


def test_restarting_mysql_gives_503_then_recovers_with_nothing_lost(stack):
    results: list[tuple[str, int, str]] = []  # (what, status, name or body)
    stop = threading.Event()

    def load():
        session = requests.Session()
        counter = 0
        while not stop.is_set():
            counter += 1
            name = f"e2e during restart {counter}"
            try:
                response = create_site(stack, name, "http://target:8000/s/restart", timeout=60)
                results.append(("post", response.status_code, name))
                if response.status_code == 503:
                    assert_json_error(response, 503)
                listed = session.get(stack.api("/sites"), headers=stack.auth, timeout=60)
                results.append(("get", listed.status_code, listed.text[:200]))
            except requests.RequestException as error:
                results.append(("error", -1, str(error)))
            time.sleep(0.05)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(results) >= 6, timeout=60, message="load before the restart")
        # Stopped until the API has said so, then started: a quick restart can fall between two requests
        # (or inside a request's wait for a connection), and then there is nothing to observe.
        stack.compose("stop", "mysql", timeout=300)
        stopped_at = len(results)
        wait_until(
            lambda: any(status == 503 for _, status, _ in results[stopped_at:]),
            timeout=120,
            message="a 503 while the database is stopped",
        )
        stack.compose("start", "mysql", timeout=300)
        restarted_at = len(results)
        wait_until(
            lambda: [status for _, status, _ in results[restarted_at:]][-4:] == [201, 200, 201, 200],
            timeout=120,
            message="the API back on the database",
        )
    finally:
        stop.set()
        thread.join(timeout=120)

    statuses = [status for _, status, _ in results]
    print(f"during the restart: {len(results)} requests, statuses {sorted(set(statuses))}")
    if not set(statuses) <= {200, 201, 503}:
        _, _, logs = stack.compose("logs", "--since", "10m", "api", check=False)
        errors = [
            line for line in logs.decode(errors="replace").splitlines() if "ERROR" in line or "Error" in line
        ]
        print("api errors during the restart:\n" + "\n".join(errors[-60:]))
    assert set(statuses) <= {200, 201, 503}, [r for r in results if r[1] not in (200, 201, 503)]
    assert 503 in statuses  # the app says the database is away (JSON, Retry-After), nothing worse
    stored = site_names(stack)
    accepted = {name for what, status, name in results if what == "post" and status == 201}
    refused = {name for what, status, name in results if what == "post" and status == 503}
    assert accepted <= stored  # nothing acknowledged is lost
    # A 503 write may still be stored, whole: the database went away after its commit (reading the new
    # row back for the answer failed) or during it (the outcome never reached the app). Never twice.
    print(f"answered 503 yet stored: {sorted(refused & stored)}")
    assert int(stack.sql("SELECT COUNT(*) FROM sites WHERE name LIKE 'e2e during restart %'")[0][0]) == len(
        (accepted | refused) & stored
    )
    wait_healthy(stack, api=3, sync=2)


def test_kill_9_of_an_api_container_under_load_loses_only_in_flight_requests(stack):
    clients, per_client = 8, 40
    results: list[list[tuple[str, int, str]]] = [[] for _ in range(clients)]
    started = threading.Barrier(clients + 1)

    def client(index: int):
        session = requests.Session()
        started.wait()
        for number in range(per_client):
            name = f"e2e kill {index}-{number}"
            try:
                if number % 2:
                    response = session.get(stack.api("/sites"), headers=stack.auth, timeout=60)
                    results[index].append(("get", response.status_code, ""))
                else:
                    response = session.post(
                        stack.api("/sites"),
                        json={"name": name, "url": "http://target:8000/s/kill", "check_interval_s": 3600},
                        headers=stack.auth,
                        timeout=60,
                    )
                    results[index].append(("post", response.status_code, name))
            except requests.RequestException:
                results[index].append(("error", -1, name))

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    started.wait()
    wait_until(lambda: sum(map(len, results)) >= clients * 5, timeout=120, interval=0.01, message="load")
    victim = stack.containers("api")[1]
    docker("kill", "--signal", "KILL", victim)
    for thread in threads:
        thread.join(timeout=600)
    assert not any(thread.is_alive() for thread in threads)

    flat = [entry for result in results for entry in result]
    failed = [entry for entry in flat if entry[1] not in (200, 201)]
    print(f"kill -9 of api container {victim[:12]}: {len(failed)} of {len(flat)} requests lost: {failed}")
    assert len(flat) == clients * per_client
    # Each client has one request in flight at most: the killed container held at most `clients`.
    assert len(failed) <= clients, failed
    assert {status for _, status, _ in failed} <= {502, 504}, failed  # nginx answers for them
    assert all(result[-1][1] in (200, 201) for result in results), [result[-3:] for result in results]
    accepted = {
        name for result in results for what, status, name in result if what == "post" and status == 201
    }
    assert accepted <= site_names(stack)
    # The killed replica comes back (restart: unless-stopped) or is replaced; the stack is whole again.
    stack.compose("up", "-d", "--wait", "--scale", "api=3", "--scale", "sync=2", timeout=600)
    wait_healthy(stack, api=3, sync=2)


# --- state across restarts, backups, upgrades -------------------------------------------------------------


def test_make_down_and_make_up_keep_every_row(stack):
    stack.compose("stop", "api", "sync", timeout=180)  # nothing writes while the state is compared
    orphans_before = set(docker("volume", "ls", "-q", "--filter", "dangling=true").stdout.split())
    before = stack.dump()
    assert "INSERT INTO `sites`" in before and "INSERT INTO `usability_checks`" in before
    stack.make("down", timeout=300)
    assert not any(services_state(stack).values())
    stack.compose("up", "-d", "--wait", "mysql", timeout=300)
    assert stack.dump() == before  # a new mysql container, the same volume, every row
    stack.make("up", timeout=900)
    wait_healthy(stack)
    # No anonymous volume left behind by the removed containers (redis' /data is a tmpfs).
    assert set(docker("volume", "ls", "-q", "--filter", "dangling=true").stdout.split()) <= orphans_before
    stack.compose("up", "-d", "--wait", "target", timeout=300)
    listed = requests.get(stack.api("/sites?per_page=1"), headers=stack.auth, timeout=30)  # the token too
    assert listed.status_code == 200
    assert listed.json()["total"] == int(stack.sql("SELECT COUNT(*) FROM sites")[0][0])


def readme_block(containing: str, path: Path) -> str:
    """The shell code block of a doc that contains `containing`, as one command line."""
    for block in re.findall(r"```sh\n(.*?)```", path.read_text(), flags=re.DOTALL):
        if containing in block:
            return block.replace("\\\n", " ").strip()
    raise AssertionError(f"no sh block with {containing!r} in {path.name}")


def test_the_readme_backup_restores_into_a_fresh_volume_with_identical_data(stack):
    backup = readme_block("mysqldump --single-transaction", stack.directory / "README.md")
    assert (
        backup.startswith("docker compose exec -T mysql") and "| gzip > cloudeye-$(date +%F).sql.gz" in backup
    )
    restore = readme_block("gunzip -c", stack.directory / "docs" / "deployment.md")
    (restore_line,) = [line for line in restore.splitlines() if line.startswith("gunzip -c")]

    stack.compose("stop", "api", "sync", timeout=180)
    try:
        reference = stack.dump()
        stack.shell(backup, timeout=300)  # the README's command, word for word
        (dump_file,) = list(stack.directory.glob("cloudeye-*.sql.gz"))
        assert dump_file.stat().st_size > 1000

        fresh = {**stack.env, "COMPOSE_PROJECT_NAME": f"{stack.project}-restore"}
        stack.compose("up", "-d", "--wait", "mysql", env=fresh, timeout=300)
        volumes = docker("volume", "ls", "-q", "--filter", f"name={stack.project}-restore_mysql-data").stdout
        assert volumes.strip() == f"{stack.project}-restore_mysql-data"
        assert stack.sql("SHOW TABLES", project_env=fresh) == []  # a fresh volume: the database, no tables
        restore_command = re.sub(r"cloudeye-\S+\.sql\.gz", dump_file.name, restore_line)
        stack.run(["bash", "-o", "pipefail", "-c", restore_command], env=fresh, timeout=300)
        assert stack.dump(project_env=fresh) == reference
        stack.compose("down", "-v", env=fresh, timeout=300)
    finally:
        stack.compose("up", "-d", "--wait", "--no-deps", "api", "sync", timeout=300)
    wait_healthy(stack)


def alembic_config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(ROOT / "migrations"))
    return config


def test_upgrade_from_the_previous_schema_revision_on_a_populated_database(stack):
    """The schema one revision back (the previous release's), with this session's rows in it, then the
    upgrade as an operator runs it: `make migrate`, `make up`. Nothing is lost on the way."""
    scripts = ScriptDirectory.from_config(alembic_config())
    head = scripts.get_current_head()
    previous = scripts.get_revision(head).down_revision
    assert isinstance(previous, str), "the head must have one previous revision"

    stack.compose("stop", "api", "sync", timeout=180)
    counts_before = stack.row_counts()
    assert (
        counts_before["sites"] > 10
        and counts_before["usability_checks"] > 10
        and counts_before["findings"] > 0
    )
    stack.compose("run", "--rm", "migrate", "flask", "db", "downgrade", previous, timeout=300)
    assert stack.sql("SELECT version_num FROM alembic_version") == [[previous]]
    tables_at_previous = set(stack.row_counts())

    _, output = stack.make("migrate", timeout=300)
    assert f"Running upgrade {previous} -> {head}" in output
    assert stack.sql("SELECT version_num FROM alembic_version") == [[head]]
    counts_after = stack.row_counts()
    assert {name: counts_after[name] for name in tables_at_previous} == {
        name: counts_before[name] for name in tables_at_previous
    }
    stack.make("up", timeout=900)
    wait_healthy(stack)
    assert requests.get(f"{stack.url}/readyz", timeout=10).status_code == 200  # schema at head


# --- the log volume -----------------------------------------------------------------------------------------

PROCESSES = """
import json, os, socket
processes = {}
for pid in filter(str.isdigit, os.listdir('/proc')):
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as handle:
            command = handle.read().replace(b'\\0', b' ').decode().strip()
        with open(f'/proc/{pid}/stat') as handle:
            parent = handle.read().rsplit(')', 1)[1].split()[1]
    except OSError:
        continue
    processes[pid] = [command, parent]
files = {name: os.stat('/app/log/' + name).st_uid for name in os.listdir('/app/log')}
print(json.dumps({'host': socket.gethostname(), 'processes': processes, 'files': files}))
"""


def test_every_process_writes_its_own_log_file_in_the_log_volume(stack):
    files: dict[str, int] = {}  # log file -> owner uid (one volume: every container sees them all)
    expected: dict[str, str] = {}  # log file -> the command of the process that must write it
    for service in APP_SERVICES:
        for index in range(1, len(stack.containers(service)) + 1):
            seen = json.loads(stack.exec_python(service, PROCESSES, index=index))
            files = seen["files"]
            processes = seen["processes"]
            for pid, (command, parent) in processes.items():
                parent_command = processes.get(parent, [""])[0]
                if service == "api" and "bin/gunicorn" in command and "bin/gunicorn" in parent_command:
                    expected[f"api.{seen['host']}.{pid}.log"] = command  # a gunicorn worker
                elif service == "sync" and re.fullmatch(r"\S*python3? sync_main\.py", command):
                    expected[f"sync.{seen['host']}.{pid}.log"] = command
    assert len([name for name in expected if name.startswith("api.")]) == 2  # one api container, 2 workers
    assert len([name for name in expected if name.startswith("sync.")]) == 1
    missing = set(expected) - set(files)
    assert not missing, f"processes without their log file: {missing} (files: {sorted(files)})"
    # One file per process: every per-process name is <role>.<host>.<pid>.log, written by the app's user.
    per_process = {name: uid for name, uid in files.items() if not name.startswith("nginx-")}
    assert all(re.fullmatch(r"(api|sync|migrate)\.[0-9a-f]{12}\.\d+\.log", name) for name in per_process), (
        files
    )
    assert set(per_process.values()) == {10001}
    assert len([name for name in files if name.startswith("migrate.")]) >= 3  # make up, make migrate, ...
    assert {"nginx-access.log", "nginx-error.log"} <= set(files)
    access = stack.compose("exec", "-T", "nginx", "tail", "-n", "5", "/var/log/cloudeye/nginx-access.log")[1]
    assert "rid=" in access
    worker_log = next(name for name in expected if name.startswith("api."))
    content = stack.compose("exec", "-T", "api", "cat", f"/app/log/{worker_log}")[1]
    assert re.search(r" INFO \d+ ", content), content[:500]
