"""A remote probe agent (`python sync_main.py --agent`, a real process with no database or Redis settings)
against the `make stack` API through nginx: it claims and sends the checks of its location only, lives
through the API being stopped for a minute (probing on, its results kept on disk and sent late), and its
probe token is refused by everything else. (Runs first of the stack tests; test_stack.py ends by stopping
the stack.)"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.stack.conftest import ROOT
from tests.sync.conftest import WebServer
from tests.waiting import wait_until

pytestmark = pytest.mark.stack
OUTAGE_S = 60  # the API stopped this long: longer than the agent's leases' margin, six check intervals
INTERVAL_S = 10


def _checks(stack, site_id: int, **query) -> list[dict]:
    params = {"site_id": site_id, "per_page": 100, **query}
    response = requests.get(stack.api("/usability/checks"), params=params, headers=stack.auth, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def _site(stack, name: str, url: str, **fields) -> int:
    body = {"name": name, "url": url, "check_interval_s": INTERVAL_S, "timeout_s": 2, **fields}
    response = requests.post(stack.api("/sites"), json=body, headers=stack.auth, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _api_answers(stack) -> bool:
    try:
        return requests.get(f"{stack.url}/readyz", timeout=5).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture
def web():
    server = WebServer()
    yield server
    server.close()


def test_a_probe_agent_claims_its_checks_and_lives_through_an_api_outage(stack, web, tmp_path):
    account = requests.post(
        stack.api("/users"),
        json={
            "username": "far-probe",
            "password": "a long probe password",
            "role": "probe",
            "location": "far",
        },
        headers=stack.auth,
        timeout=30,
    )
    assert account.status_code == 201, account.text
    created = requests.post(
        stack.api(f"/users/{account.json()['id']}/tokens"),
        json={"name": "agent"},
        headers=stack.auth,
        timeout=30,
    )
    assert created.status_code == 201, created.text
    probe_auth = {"Authorization": f"Bearer {created.json()['token']}"}

    mine = _site(stack, "far away", web.set("/mine"), locations=["far"])
    theirs = _site(stack, "near", web.set("/theirs"), locations=["default"])  # the stack's sync worker
    anywhere = _site(stack, "anywhere", web.set("/anywhere"))

    data_dir = tmp_path / "data"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "CLOUDEYE_API_URL": stack.url,
        "CLOUDEYE_API_TOKEN": created.json()["token"],
        "DATA_DIR": str(data_dir),
        "LOG_DIR": str(tmp_path / "log"),
        "LOG_LEVEL": "info",
        "SYNC_POLL_INTERVAL_S": "1",
        "SYNC_GRACE_PERIOD_S": "5",
        "SYNC_CONCURRENCY": "8",
        "AGENT_API_TIMEOUT_S": "5",
    }
    output = open(tmp_path / "agent.out", "wb")  # noqa: SIM115 - closed below
    agent = subprocess.Popen(
        [sys.executable, "sync_main.py", "--agent"],
        cwd=ROOT,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    try:
        # It claims, probes and sends: the site is decided by its one location.
        wait_until(lambda: len(_checks(stack, mine, location="far")) >= 2, 60, "the agent's first checks")
        summary = requests.get(
            stack.api(f"/usability/summary?site_id={mine}"), headers=stack.auth, timeout=30
        )
        assert summary.json()["state"] == "up" and summary.json()["locations"]["far"]["alive"] is True
        located = requests.get(stack.api("/locations"), headers=stack.auth, timeout=30).json()["items"]
        assert {(item["name"], item["workers"], item["alive"]) for item in located} >= {("far", 1, True)}
        assert (
            subprocess.run(
                [sys.executable, "sync_main.py", "--agent", "--healthcheck"], cwd=ROOT, env=env, timeout=60
            ).returncode
            == 0
        )

        # The API stopped for a minute: the agent probes on, on the site's grid, and keeps the results.
        before = web.hits["/mine"]
        stopped = stack.script("stack-ctl.sh", "stop", "dataapi", timeout=120)
        assert stopped.returncode == 0, stopped.stderr
        assert requests.get(stack.api("/sites"), headers=stack.auth, timeout=30).status_code == 502
        time.sleep(OUTAGE_S)
        probed_offline = web.hits["/mine"] - before
        assert probed_offline >= OUTAGE_S // INTERVAL_S - 1, probed_offline
        buffered = list((data_dir / "agent" / "buffer").glob("*.json"))
        assert buffered, "nothing kept on disk"
        assert agent.poll() is None
        started = stack.script("stack-ctl.sh", "start", "dataapi", timeout=120)
        assert started.returncode == 0, started.stderr
        wait_until(lambda: _api_answers(stack), 60, "the API back")

        # Everything kept is sent, late: recorded in the history, never voting.
        wait_until(
            lambda: not list((data_dir / "agent" / "buffer").glob("*.json")), 60, "the buffer to be sent"
        )
        far = _checks(stack, mine, location="far")
        late = [check for check in far if check["late"]]
        assert len(late) >= probed_offline - 1, (len(late), probed_offline)
        assert len({check["due_at"] for check in far}) == len(far)  # no slot twice
        wait_until(
            lambda: any(not c["late"] for c in _checks(stack, mine, location="far")[:2]),
            60,
            "on-time checks again",
        )
        summary = requests.get(
            stack.api(f"/usability/summary?site_id={mine}"), headers=stack.auth, timeout=30
        )
        assert summary.json()["state"] == "up" and summary.json()["locations"]["far"]["alive"] is True

        # Never another location's work: the other sites are the stack's sync worker's alone.
        for site_id, path in ((theirs, "/theirs"), (anywhere, "/anywhere")):
            checks = _checks(stack, site_id)
            assert checks and {check["location"] for check in checks} == {"default"}, path
        assert _checks(stack, theirs, location="far") == [] and _checks(stack, anywhere, location="far") == []

        # A probe token is good for the probe API and refused everywhere else.
        for method, path in (
            ("get", "/sites"),
            ("get", f"/sites/{mine}"),
            ("get", "/users/me"),
            ("get", "/locations"),
            ("get", f"/usability/summary?site_id={mine}"),
            ("get", "/channels"),
            ("post", "/sites"),
            ("post", "/users/me/tokens"),
            ("post", "/users/logout"),
        ):
            response = requests.request(method, stack.api(path), headers=probe_auth, json={}, timeout=30)
            assert response.status_code == 403, (method, path, response.status_code)
        claim = requests.post(
            stack.api("/probe/claims"),
            json={"worker_id": "test:1", "limit": 0},
            headers=probe_auth,
            timeout=30,
        )
        assert claim.status_code == 200 and claim.json()["location"] == "far"
        # ... and nobody else may call the probe API.
        refused = requests.post(
            stack.api("/probe/claims"),
            json={"worker_id": "test:1", "limit": 1},
            headers=stack.auth,
            timeout=30,
        )
        assert refused.status_code == 403

        agent.send_signal(signal.SIGTERM)
        assert agent.wait(60) == 0
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait(30)
        output.close()
        if not _api_answers(stack):
            stack.script("stack-ctl.sh", "start", "dataapi", timeout=120)
    log = Path(tmp_path / "agent.out").read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
    assert "the API is out of reach" in log and "the API answers again" in log
