"""Worker passes in-process against local servers: checks, states, incidents, summary — read through the API."""

import threading
import time

from sync.probe import Prober, make_ssl_context
from tests.sync.conftest import WebServer, refused_url


def _create(caller, url, **fields):
    response = caller.post("/sites", json={"name": url, "url": url, **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def _checks(caller, site_id):
    return caller.get(f"/usability/checks?site_id={site_id}").get_json()["items"]


def _recheck(caller, *site_ids):
    for site_id in site_ids:
        assert caller.post(f"/sites/{site_id}/check").status_code == 202


def test_each_kind_of_site_gets_the_right_check(operator, worker, web):
    gate = threading.Event()
    sites = {
        "up": _create(operator, web.set("/up", body="<h1>Welcome</h1>"), keyword="Welcome"),
        "status": _create(operator, web.set("/broken", status=500, body="oops")),
        "keyword": _create(operator, web.set("/nokw", body="<h1>Hello</h1>"), keyword="Welcome"),
        "refused": _create(operator, refused_url()),
        "dns": _create(operator, "http://no-such-host.invalid/"),
        "slow": _create(operator, web.set("/slow", gate=gate), timeout_s=1),
    }
    try:
        report = worker.run_once()
    finally:
        gate.set()
    assert report.stored == len(sites) and report.failed == 0
    expected = {
        "up": ("up", None, 200),
        "status": ("down", "status", 500),
        "keyword": ("down", "keyword", 200),
        "refused": ("down", "refused", None),
        "dns": ("down", "dns", None),
        "slow": ("down", "timeout", None),
    }
    for name, site_id in sites.items():
        [check] = _checks(operator, site_id)
        assert (check["status"], check["failure_kind"], check["http_status"]) == expected[name], name
        assert check["response_ms"] is not None
        assert (check["reason"] is None) == (name == "up"), name
        site = operator.get(f"/sites/{site_id}").get_json()
        assert site["state"] == ("up" if name == "up" else "down"), name
        assert site["last_checked_at"] is not None and site["next_check_at"] > site["last_checked_at"]
    # max_retries 0: the first failure is an incident already
    incidents = operator.get(f"/usability/incidents?site_id={sites['refused']}").get_json()["items"]
    assert len(incidents) == 1 and incidents[0]["ended_at"] is None
    assert incidents[0]["cause"].startswith("refused")
    assert operator.get(f"/usability/incidents?site_id={sites['up']}").get_json()["total"] == 0


def test_pending_then_down_then_up_again_with_one_incident(operator, worker, web):
    url = web.set("/", status=503, body="maintenance")
    site_id = _create(operator, url, max_retries=1)

    worker.run_once()
    assert operator.get(f"/sites/{site_id}").get_json()["state"] == "pending"
    assert operator.get(f"/usability/incidents?site_id={site_id}").get_json()["total"] == 0

    _recheck(operator, site_id)
    worker.run_once()
    assert operator.get(f"/sites/{site_id}").get_json()["state"] == "down"
    summary = operator.get(f"/usability/summary?site_id={site_id}").get_json()
    assert summary["state"] == "down" and summary["open_incident"]["cause"].startswith("status: HTTP 503")

    web.set("/", body="<p>back</p>")
    _recheck(operator, site_id)
    worker.run_once()
    summary = operator.get(f"/usability/summary?site_id={site_id}").get_json()
    assert summary["state"] == "up" and summary["open_incident"] is None
    assert summary["uptime"]["24h"] == round(100 / 3, 3)
    assert summary["latency_ms"]["avg"] is not None
    [incident] = operator.get(f"/usability/incidents?site_id={site_id}").get_json()["items"]
    assert incident["ended_at"] is not None and incident["duration_s"] >= 0
    statuses = [c["status"] for c in _checks(operator, site_id)]
    assert statuses == ["up", "down", "down"]  # newest first
    assert web.hits["/"] == 3


def test_only_due_sites_are_checked(operator, worker, web):
    site_id = _create(operator, web.set("/"))
    paused_id = _create(operator, web.set("/paused"), paused=True)
    assert worker.run_once().stored == 1
    assert worker.run_once().stored == 0  # next check in 60 s
    assert web.hits["/"] == 1 and web.hits["/paused"] == 0
    _recheck(operator, site_id)
    assert worker.run_once().stored == 1
    assert len(_checks(operator, site_id)) == 2 and _checks(operator, paused_id) == []


def test_a_slow_site_does_not_hold_up_the_others(operator, worker, web):
    gate = threading.Event()
    slow_id = _create(operator, web.set("/slow", gate=gate), timeout_s=30)
    fast_ids = [_create(operator, web.set(f"/fast{i}")) for i in range(5)]
    try:
        claimed, _ = worker.claim_and_start()
        assert claimed == 6
        stored = 0
        give_up = time.monotonic() + 20
        while stored < 5 and time.monotonic() < give_up:
            stored += worker.write_pending(block_s=0.2).stored
        # Every fast site is recorded while the slow one is still waiting for its answer.
        assert stored == 5 and not gate.is_set()
        assert all(len(_checks(operator, site_id)) == 1 for site_id in fast_ids)
        assert _checks(operator, slow_id) == [] and worker.in_flight() == 1
    finally:
        gate.set()
    worker.run_once()
    assert [c["status"] for c in _checks(operator, slow_id)] == ["up"]


def test_tls_certificate_expiry_is_recorded(operator, worker, certificates):
    server = WebServer(certificates.server_context(days_valid=40))
    worker.prober = Prober(make_ssl_context(certificates.ca_file))
    try:
        site_id = _create(operator, server.set("/"))
        worker.run_once()
    finally:
        server.close()
    [check] = _checks(operator, site_id)
    assert check["status"] == "up" and check["tls_expires_at"] is not None
    site = operator.get(f"/sites/{site_id}").get_json()
    assert site["tls_expires_at"] == check["tls_expires_at"]
    summary = operator.get(f"/usability/summary?site_id={site_id}").get_json()
    assert summary["tls_expires_at"].startswith(certificates.not_after.date().isoformat())


def test_results_of_a_deleted_site_are_dropped(operator, worker, web):
    site_id = _create(operator, web.set("/"))
    claimed, _ = worker.claim_and_start()
    assert claimed == 1
    assert operator.delete(f"/sites/{site_id}").status_code == 204
    report = worker.run_once()
    assert report.stored == 0 and report.failed == 0


def test_running_totals_keep_counts_not_one_sample_per_check(operator, worker, web):
    # A worker runs for months: its totals must not keep the lateness of every check it ever stored.
    site_ids = [_create(operator, web.set(f"/p{i}")) for i in range(3)]
    assert worker.run_once().stored == 3
    _recheck(operator, *site_ids)
    assert worker.run_once().stored == 3
    assert worker.totals.stored == 6
    assert worker.totals.lateness_s == [] and worker.totals.outcomes == []
    # The progress log still gets the samples of its period, and starts over after logging them.
    assert len(worker._progress.lateness_s) == 6
    worker._log_progress()
    assert worker._progress.lateness_s == [] and worker.totals.stored == 6
