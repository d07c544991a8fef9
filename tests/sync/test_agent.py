"""The probe agent in process (sync/agent.py) against the real API served on a loopback port: it claims
and sends through the API only, goes on probing through an outage with its results buffered on disk, and
sends them late once the API answers again. The process version against `make stack` is
tests/stack/test_agent.py."""

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from services.extensions import db
from services.models import Site, UsabilityCheck
from sync.agent import Agent, AgentSettings, ResultBuffer, SettingsError, next_slot
from tests.factories import create_site, create_user, token_for


class Api:
    """The session's app on a loopback port that the test stops and starts again (an outage)."""

    def __init__(self, app):
        self.app = app
        self.server = None
        self.port = 0
        self.start()

    def start(self):
        self.server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def api(app, ctx):
    server = Api(app)
    yield server
    server.stop()


@pytest.fixture
def agent_for(api, tmp_path):
    agents = []

    def make(token):
        settings = AgentSettings(
            api_url=api.url,
            token=token,
            data_dir=str(tmp_path / "data"),
            log_dir=str(tmp_path / "log"),
            worker_id="agent-test:1",
            concurrency=4,
            grace_s=5,
            buffer_max=1000,
            api_timeout_s=5,
        )
        agent = Agent(settings)
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent._executor.shutdown(wait=True)
        agent.api.close()


def settle(agent, rounds=100):
    """Wait for the probes started to finish, then turn once: their results are sent (or buffered)."""
    for _ in range(rounds):
        if not agent._running:
            break
        agent._wake.wait(0.1)
        agent._wake.clear()
    assert not agent._running, "probes still running"
    agent.turn()


def checks(*where):
    db.session.rollback()
    return db.session.scalars(sa.select(UsabilityCheck).where(*where).order_by(UsabilityCheck.due_at)).all()


def test_the_agent_claims_probes_and_sends_through_the_api(api, agent_for, operator, web):
    probe = create_user("probe", location="far")
    mine = create_site(operator.user, url=web.set("/mine"), locations=["far"])
    create_site(operator.user, url=web.set("/near"), locations=["near"])
    create_site(operator.user, url=web.set("/anywhere"))
    agent = agent_for(token_for(probe, kind="api", expires_in=None))
    agent.turn()
    assert agent.online and agent.location == "far" and agent.totals["claimed"] == 1
    settle(agent)
    [check] = checks()
    assert (check.site_id, check.location, check.late, check.status) == (mine.id, "far", False, "up")
    assert web.hits["/mine"] == 1 and web.hits["/near"] == 0 and web.hits["/anywhere"] == 0
    db.session.expire_all()
    assert db.session.get(Site, mine.id).state == "up"


def test_an_outage_is_probed_through_and_sent_late(api, agent_for, operator, web):
    probe = create_user("probe", location="far")
    # A one-second grid (below the API's minimum; the factory writes the row as it is): slots pass quickly.
    site = create_site(
        operator.user, url=web.set("/mine"), locations=["far"], check_interval_s=1, timeout_s=1
    )
    agent = agent_for(token_for(probe, kind="api", expires_in=None))
    agent.turn()
    settle(agent)
    assert len(checks()) == 1

    api.stop()
    web.set("/mine", status=503, body="down")
    known = agent._known[site.id]
    for _ in range(2):  # two slots pass with the API out of reach
        time.sleep(max(0.0, (known.next_due - datetime.now(UTC)).total_seconds()) + 0.05)
        agent.turn()  # out of reach: probes the slot on its own
        assert agent.online is False
        settle(agent)  # the result cannot be sent: onto the disk buffer
    assert web.hits["/mine"] == 3 and len(agent.buffer) == 2
    assert len(list(agent.buffer.directory.glob("*.json"))) == 2
    assert len(checks()) == 1

    api.start()
    agent.turn()
    assert agent.online and len(agent.buffer) == 0
    first, *late = checks()
    assert not first.late and [c.late for c in late] == [True, True]
    assert {c.status for c in late} == {"down"} and {c.location for c in late} == {"far"}
    db.session.expire_all()
    assert db.session.get(Site, site.id).state == "up"  # late results never vote
    # Sending the same buffered batch again (the answer was lost) records nothing twice.
    again = [
        {
            "site_id": c.site_id,
            "due_at": c.due_at.isoformat(),
            "checked_at": c.checked_at.isoformat(),
            "up": False,
        }
        for c in late
    ]
    assert agent.api.send("agent-test:1", again)["duplicates"] == 2


def test_the_buffer_is_bounded_and_survives_a_restart(tmp_path):
    buffer = ResultBuffer(tmp_path / "buffer", capacity=500)
    batch = [{"site_id": 1, "n": n} for n in range(200)]
    assert buffer.add(batch) == 0 and buffer.add(batch) == 0
    assert buffer.add(batch) == 200 and len(buffer) == 400  # the oldest batch went
    again = ResultBuffer(tmp_path / "buffer", capacity=500)
    assert len(again) == 400
    path, results = again.oldest()
    again.remove(path)
    assert len(again) == 200 and results == batch
    (tmp_path / "buffer" / "0-broken.json").write_text("{not json")
    assert len(ResultBuffer(tmp_path / "buffer", capacity=500)) == 200  # a broken file is dropped


def test_offline_slots_stay_on_the_sites_grid():
    due = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert next_slot(due, 60, due + timedelta(seconds=5)) == due
    assert next_slot(due, 60, due + timedelta(seconds=150)) == due + timedelta(seconds=120)
    assert next_slot(due, 60, due - timedelta(seconds=5)) == due


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "CLOUDEYE_API_URL"),
        ({"CLOUDEYE_API_URL": "ftp://cloudeye.example.test"}, "CLOUDEYE_API_URL"),
        ({"CLOUDEYE_API_URL": "https://cloudeye.example.test"}, "CLOUDEYE_API_TOKEN"),
        (
            {
                "CLOUDEYE_API_URL": "https://c.example.test",
                "CLOUDEYE_API_TOKEN": "t",
                "SYNC_WORKER_ID": "a b",
            },
            "SYNC_WORKER_ID",
        ),
        (
            {
                "CLOUDEYE_API_URL": "https://c.example.test",
                "CLOUDEYE_API_TOKEN": "t",
                "AGENT_BUFFER_MAX": "lots",
            },
            "AGENT_BUFFER_MAX",
        ),
    ],
)
def test_the_agent_refuses_settings_it_cannot_run_with(env, message):
    with pytest.raises(SettingsError, match=message):
        AgentSettings.from_env(env)


def test_the_agent_needs_only_the_api():
    settings = AgentSettings.from_env(
        {"CLOUDEYE_API_URL": "https://c.example.test/", "CLOUDEYE_API_TOKEN": "t"}
    )
    assert settings.api_url == "https://c.example.test" and settings.buffer_max == 10_000
