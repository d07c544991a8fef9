"""Real `sync_main.py` processes against the test database: replicas, kill -9, SIGTERM, healthcheck."""

import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from services.config import API_PREFIX
from services.extensions import db
from services.models import Finding, FindingImport, Site, UsabilityCheck
from tests import settings
from tests.factories import create_site

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def wait_for(condition, timeout_s=30.0, what="condition"):
    """Poll until `condition()` is true; a test that waits forever would hide the failure."""
    give_up = time.monotonic() + timeout_s
    while time.monotonic() < give_up:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


class Workers:
    """Starts sync_main.py processes with the test environment; kills leftovers at the end of the test."""

    def __init__(self, test_env, data_dir: Path, log_dir: Path):
        self.env = {
            **os.environ,
            **test_env,
            "DATA_DIR": str(data_dir),
            "LOG_DIR": str(log_dir),
            "LOG_LEVEL": "info",
            "SYNC_POLL_INTERVAL_S": "1",
            "SYNC_INBOX_INTERVAL_S": "1",
            "SYNC_INBOX_SETTLE_S": "1",
            "SYNC_HEARTBEAT_TTL_S": "6",
            "SYNC_GRACE_PERIOD_S": "10",
            "SYNC_CONCURRENCY": "50",
        }
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen] = []

    def start(self, **env) -> subprocess.Popen:
        log = open(self.log_dir / f"worker-{len(self.procs)}.out", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "sync_main.py"],
            cwd=ROOT,
            env={**self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        proc.log_file = log
        self.procs.append(proc)
        return proc

    def healthcheck(self, **env) -> int:
        return subprocess.run(
            [sys.executable, "sync_main.py", "--healthcheck"],
            cwd=ROOT,
            env={**self.env, **env},
            capture_output=True,
            timeout=60,
        ).returncode

    def stop(self, proc, timeout_s=60) -> int:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout_s)
        proc.log_file.close()
        return code

    def output(self, proc) -> str:
        if not proc.log_file.closed:
            proc.log_file.flush()
        return Path(proc.log_file.name).read_text(errors="replace")

    def cleanup(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
            proc.log_file.close()


@pytest.fixture
def workers(app, ctx, test_env, tmp_path):
    data_dir, log_dir = tmp_path / "data", tmp_path / "log"
    log_dir.mkdir()
    group = Workers(test_env, data_dir, log_dir)
    yield group
    group.cleanup()


def _count(model, *where) -> int:
    db.session.rollback()  # see what the workers committed
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def test_three_workers_never_run_a_check_twice(workers, operator, web):
    sites = [create_site(operator.user, url=web.set(f"/s{i}"), check_interval_s=10) for i in range(40)]
    site_ids = [site.id for site in sites]
    procs = [workers.start() for _ in range(3)]
    stop_requests = threading.Event()

    def request_checks():
        # Users asking for checks now and then: more due times, more races between the claims.
        while not stop_requests.wait(1.5):
            for site_id in site_ids[::3]:
                operator.client.post(f"{API_PREFIX}/sites/{site_id}/check", headers=operator.headers)

    try:
        wait_for(lambda: _count(UsabilityCheck) >= 40, 60, "the first round of checks")
        requester = threading.Thread(target=request_checks)
        requester.start()
        time.sleep(15)  # more than one interval: every site is due again, some several times
    finally:
        stop_requests.set()
    requester.join()
    codes = [workers.stop(proc) for proc in procs]
    assert codes == [0, 0, 0]

    db.session.rollback()
    rows = db.session.execute(sa.select(UsabilityCheck.site_id, UsabilityCheck.due_at)).all()
    per_slot = Counter(rows)
    assert per_slot and max(per_slot.values()) == 1
    per_site = Counter(site_id for site_id, _ in rows)
    for index, site_id in enumerate(site_ids):
        # Every probe the servers saw was recorded once: no due time was probed by two workers.
        assert web.hits[f"/s{index}"] == per_site[site_id], site_id
        assert per_site[site_id] >= 2
    # What the workers say they stored adds up to what the database holds.
    stored = sum(
        int(line.rsplit("(", 1)[1].split()[0])
        for proc in procs
        for line in workers.output(proc).splitlines()
        if "checks stored since start" in line
    )
    assert stored == len(rows)
    assert _count(Site, Site.claimed_until.is_not(None)) == 0  # every claim finished or given back


def test_a_check_lost_with_a_killed_worker_is_run_again_for_the_same_slot(workers, operator, web):
    gate = threading.Event()
    site = create_site(operator.user, url=web.set("/", gate=gate), timeout_s=5)
    due_at = site.next_check_at
    first = workers.start(SYNC_LEASE_MARGIN_S="1")
    wait_for(lambda: web.hits["/"] == 1, 60, "the probe to start")
    first.kill()
    first.wait(30)
    gate.set()
    db.session.expire_all()
    assert db.session.get(Site, site.id).claimed_until is not None  # the dead worker's claim remains

    second = workers.start(SYNC_LEASE_MARGIN_S="1")
    wait_for(lambda: _count(UsabilityCheck) == 1, 60, "the slot to be checked again")
    assert workers.stop(second) == 0
    [check] = db.session.scalars(sa.select(UsabilityCheck)).all()
    assert check.due_at == due_at and check.status == "up"  # the same slot, once
    assert web.hits["/"] == 2


def _inbox_lock_in_use(data_dir: Path, site_id: int) -> bool:
    """Whether a worker holds the inbox lock of the site (it is importing): sync/inbox.py's lock."""
    scope = f"{db.engine.url.database}:{site_id}"
    name = "cloudeye-inbox-" + hashlib.sha256(scope.encode()).hexdigest()[:40]
    if db.engine.dialect.name == "mysql":
        with db.engine.connect() as connection:
            return connection.scalar(sa.text("SELECT IS_USED_LOCK(:name)"), {"name": name}) is not None
    lock_file = data_dir / "inbox" / ".locks" / f"{name}.lock"
    if not lock_file.exists():
        return False
    with open(lock_file, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def test_kill_9_during_an_inbox_import_then_restart(workers, operator, tmp_path):
    site = create_site(operator.user)
    total = 20_000
    findings = [
        {
            "title": f"Issue {i}",
            "severity": "medium",
            "rule_id": f"rule-{i % 40}",
            "location": f"https://a.test/p{i}",
        }
        for i in range(total)
    ]
    inbox = tmp_path / "data" / "inbox" / str(site.id)
    inbox.mkdir(parents=True)
    (inbox / "big.json.part").write_text(json.dumps({"findings": findings}))
    os.replace(inbox / "big.json.part", inbox / "big.json")  # the drop convention: write, then rename

    first = workers.start()
    wait_for(lambda: _inbox_lock_in_use(tmp_path / "data", site.id), 60, "the import to start")
    first.kill()
    first.wait(30)
    # Killed mid-import: the transaction never committed and the file waits in the inbox.
    assert (inbox / "big.json").exists()
    assert _count(FindingImport) == 0 and _count(Finding) == 0

    second = workers.start()
    processed = tmp_path / "data" / "processed" / str(site.id) / "big.json"
    wait_for(processed.exists, 120, "the file to be processed")
    assert workers.stop(second) == 0
    [record] = operator.get(f"/bugs/imports?site_id={site.id}").get_json()["items"]
    assert (
        record["source"] == "inbox" and record["created"] == total and record["findings_in_report"] == total
    )
    assert _count(Finding, Finding.site_id == site.id) == total
    assert not (inbox / "big.json").exists() and not (tmp_path / "data" / "failed").exists()


def test_sigterm_finishes_in_flight_work_and_exits_0(workers, operator, web):
    gate = threading.Event()
    slow = create_site(operator.user, url=web.set("/slow", gate=gate), timeout_s=30)
    proc = workers.start(SYNC_GRACE_PERIOD_S="20")
    wait_for(lambda: web.hits["/slow"] == 1, 60, "the slow probe to start")
    proc.send_signal(signal.SIGTERM)
    time.sleep(1)  # the worker is now draining: the probe is still waiting for its answer
    assert proc.poll() is None
    gate.set()
    assert proc.wait(30) == 0
    proc.log_file.close()
    assert [c.status for c in db.session.scalars(sa.select(UsabilityCheck))] == ["up"]
    db.session.expire_all()
    site = db.session.get(Site, slow.id)
    assert site.claimed_until is None and site.state == "up"


def test_sigterm_gives_back_what_does_not_finish_within_the_grace_period(workers, operator, web):
    gate = threading.Event()
    slow = create_site(operator.user, url=web.set("/slow", gate=gate), timeout_s=60)
    proc = workers.start(SYNC_GRACE_PERIOD_S="2")
    try:
        wait_for(lambda: web.hits["/slow"] == 1, 60, "the slow probe to start")
        assert workers.stop(proc, timeout_s=30) == 0
    finally:
        gate.set()
    assert "gave back 1 unfinished checks" in workers.output(proc)
    assert _count(UsabilityCheck) == 0
    db.session.expire_all()
    site = db.session.get(Site, slow.id)
    assert site.claimed_until is None  # due again at once for the other workers


@pytest.mark.parametrize("redis_url", [settings.REDIS_URL, ""], ids=["redis", "database"])
def test_healthcheck_follows_the_worker(workers, redis_url):
    assert workers.healthcheck(REDIS_URL=redis_url) != 0
    proc = workers.start(REDIS_URL=redis_url)
    wait_for(lambda: workers.healthcheck(REDIS_URL=redis_url) == 0, 60, "a healthy worker")
    assert workers.stop(proc) == 0
    assert workers.healthcheck(REDIS_URL=redis_url) != 0
