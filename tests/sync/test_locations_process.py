"""Locations with real `sync_main.py` replicas: each slot of a site is checked once per location, and with
each location in a network namespace of its own (`ip netns`, veth pairs; the test runs as root) its
network can be cut from the target: with a quorum of 2 of 3 one cut location changes nothing and sends
nothing, a second one turns the site down with exactly one notification, restoring them brings it up; a
killed replica leaves the vote once its heartbeat runs out and the state follows the others.

Inside a namespace, 127.0.0.1 is the namespace's own: the replicas reach MariaDB, Redis, the sites and the
webhook receiver through TCP relays of this process on addresses of the host's own."""

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import sqlalchemy as sa

from services.extensions import db
from services.models import Notification, Site, UsabilityCheck
from tests import settings
from tests.factories import create_site
from tests.receivers import WebhookReceiver
from tests.sync.test_alerts import add_channel
from tests.sync.test_process import Workers, wait_for, workers  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
INTERVAL_S = 10
HEARTBEAT_TTL_S = 6


def test_three_labels_check_each_slot_once_per_location(workers, operator, web):  # noqa: F811
    """Four replicas, two of them of location a: a site with locations and sites of any location."""
    located = [create_site(operator.user, url=web.set(f"/l{i}"), locations=["a", "b", "c"]) for i in range(8)]
    anywhere = [create_site(operator.user, url=web.set(f"/any{i}")) for i in range(8)]
    for site in (*located, *anywhere):
        site.check_interval_s = INTERVAL_S
    db.session.commit()
    procs = [workers.start(CLOUDEYE_LOCATION=name) for name in ("a", "a", "b", "c")]
    wait_for(lambda: _count(UsabilityCheck) >= 2 * (8 * 3 + 8), 90, "two rounds of checks")
    assert [workers.stop(proc) for proc in procs] == [0, 0, 0, 0]

    db.session.rollback()
    rows = db.session.execute(
        sa.select(UsabilityCheck.site_id, UsabilityCheck.location, UsabilityCheck.due_at)
    ).all()
    by_site = {site.id: [row for row in rows if row.site_id == site.id] for site in (*located, *anywhere)}
    for index, site in enumerate(located):
        slots = Counter((row.location, row.due_at) for row in by_site[site.id])
        assert max(slots.values()) == 1, site.id  # once per (location, slot)
        per_due = Counter(row.due_at for row in by_site[site.id])
        complete = [due for due, count in per_due.items() if count == 3]
        assert len(complete) >= 1 and set(per_due.values()) <= {1, 2, 3}
        assert {row.location for row in by_site[site.id]} == {"a", "b", "c"}
        assert web.hits[f"/l{index}"] == len(by_site[site.id])  # no probe ran twice
    for index, site in enumerate(anywhere):
        per_due = Counter(row.due_at for row in by_site[site.id])
        assert max(per_due.values()) == 1, site.id  # any location: one check per slot, whoever made it
        assert web.hits[f"/any{index}"] == len(by_site[site.id])


def _count(model, *where) -> int:
    db.session.rollback()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


# --- network namespaces --------------------------------------------------------------------------------


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, f"ip {' '.join(args)}: {result.stderr}"


class Relay:
    """A TCP relay on `host`:<free port> to 127.0.0.1:`port` (a thread per direction and connection)."""

    def __init__(self, host: str, port: int):
        self.target = port
        self.server = socket.create_server((host, 0))
        self.host, self.port = host, self.server.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self):
        self.server.close()
        for sock in self.sockets:
            sock.close()


class NetLab:
    """A namespace per location with a veth pair to the host; on another interface of the host, the
    addresses of two targets, the webhook receiver and the database/Redis relays. `cut(location, target)`
    makes a target unreachable from that location only; `restore` undoes it."""

    def __init__(self):
        if os.geteuid() != 0 or not shutil.which("ip"):
            pytest.fail("needs root and iproute2: the locations get network namespaces of their own")
        tag = os.getpid() % 100000
        self.prefix = f"ce{tag}"
        self.net = f"10.{180 + tag % 60}.{tag % 250}"  # the host's side of each location: a /30
        self.services = f"10.{240 + tag % 10}.{tag % 250}"  # targets, receiver, relays: /32s
        self.addresses = {
            name: f"{self.services}.{n}" for n, name in enumerate(("t1", "t2", "hook", "db"), 1)
        }
        self.namespaces: dict[str, str] = {}
        self.relays: list[Relay] = []
        # The host's own addresses for the services, on a veth pair of its own (containers often lack the
        # dummy interface module).
        self.services_link = f"{self.prefix}s"
        _ip("link", "add", self.services_link, "type", "veth", "peer", "name", f"{self.prefix}p")
        for address in self.addresses.values():
            _ip("addr", "add", f"{address}/32", "dev", self.services_link)
        _ip("link", "set", self.services_link, "up")
        _ip("link", "set", f"{self.prefix}p", "up")

    def add_location(self, name: str, index: int) -> str:
        namespace, host_end, ns_end = f"{self.prefix}{name}", f"{self.prefix}{name}h", f"{self.prefix}{name}n"
        host_address, ns_address = f"{self.net}.{4 * index + 1}", f"{self.net}.{4 * index + 2}"
        _ip("netns", "add", namespace)
        self.namespaces[name] = namespace
        _ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end)
        _ip("link", "set", ns_end, "netns", namespace)
        _ip("addr", "add", f"{host_address}/30", "dev", host_end)
        _ip("link", "set", host_end, "up")
        inside = ("netns", "exec", namespace, "ip")
        _ip(*inside, "addr", "add", f"{ns_address}/30", "dev", ns_end)
        _ip(*inside, "link", "set", ns_end, "up")
        _ip(*inside, "link", "set", "lo", "up")
        _ip(*inside, "route", "add", f"{self.services}.0/24", "via", host_address)
        return namespace

    def relay(self, name: str, port: int) -> Relay:
        relay = Relay(self.addresses[name], port)
        self.relays.append(relay)
        return relay

    def cut(self, location: str, target: str) -> None:
        _ip(
            "netns",
            "exec",
            self.namespaces[location],
            "ip",
            "route",
            "add",
            "unreachable",
            f"{self.addresses[target]}/32",
        )

    def restore(self, location: str, target: str) -> None:
        _ip(
            "netns",
            "exec",
            self.namespaces[location],
            "ip",
            "route",
            "del",
            "unreachable",
            f"{self.addresses[target]}/32",
        )

    def close(self) -> None:
        for relay in self.relays:
            relay.close()
        for namespace in self.namespaces.values():
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=30)
        for name in self.namespaces:
            subprocess.run(["ip", "link", "del", f"{self.prefix}{name}h"], capture_output=True, timeout=30)
        subprocess.run(["ip", "link", "del", self.services_link], capture_output=True, timeout=30)


@pytest.fixture
def lab():
    network = NetLab()
    try:
        yield network
    finally:
        network.close()


def _through(url: str, relay: Relay) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.replace(f"{parts.hostname}:{parts.port}", f"{relay.host}:{relay.port}")
    return urlunsplit(parts._replace(netloc=netloc))


class Replicas(Workers):
    """sync_main.py replicas, each inside its location's namespace."""

    def start_in(self, namespace: str, **env) -> subprocess.Popen:
        log = open(self.log_dir / f"replica-{len(self.procs)}.out", "wb")  # noqa: SIM115 - closed with it
        proc = subprocess.Popen(
            ["ip", "netns", "exec", namespace, sys.executable, "sync_main.py"],
            cwd=ROOT,
            env={**self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        proc.log_file = log
        self.procs.append(proc)
        return proc


def _state(site_id: int) -> str:
    db.session.rollback()
    return db.session.get(Site, site_id).state


def _checks_since(site_id: int, location: str, since: int, status: str | None = None) -> int:
    """Checks of `location` for the site with an id above `since` (made after a point of the test)."""
    where = [
        UsabilityCheck.site_id == site_id,
        UsabilityCheck.location == location,
        UsabilityCheck.id > since,
    ]
    if status:
        where.append(UsabilityCheck.status == status)
    return _count(UsabilityCheck, *where)


def _last_id() -> int:
    db.session.rollback()
    return db.session.scalar(sa.select(sa.func.max(UsabilityCheck.id))) or 0


def _events(receiver: WebhookReceiver, site_id: int) -> list[str]:
    return [event["event"] for event in receiver.events() if event["site"]["id"] == site_id]


def test_the_quorum_across_network_namespaces(lab, app, ctx, test_env, tmp_path, operator, web, monkeypatch):
    monkeypatch.setitem(app.config, "SYNC_HEARTBEAT_TTL_S", HEARTBEAT_TTL_S)  # the API's view: the replicas'
    receiver = WebhookReceiver()
    try:
        _quorum_scenario(lab, test_env, tmp_path, operator, web, receiver)
    finally:
        receiver.close()


def _quorum_scenario(lab, test_env, tmp_path, operator, web, receiver):
    database = urlsplit(test_env["DATABASE_URL"])
    redis = urlsplit(settings.REDIS_URL)
    t1 = lab.relay("t1", web.port)
    t2 = lab.relay("t2", web.port)
    hook = lab.relay("hook", receiver.port)
    mysql_relay = lab.relay("db", database.port or 3306)
    redis_relay = lab.relay("db", redis.port or 6379)
    env = {
        "DATABASE_URL": _through(test_env["DATABASE_URL"], mysql_relay),
        "REDIS_URL": _through(settings.REDIS_URL, redis_relay),
        "SYNC_HEARTBEAT_TTL_S": str(HEARTBEAT_TTL_S),
        "NOTIFY_POLL_INTERVAL_S": "0.2",
        "ALERTS_TICK_INTERVAL_S": "600",
    }
    one = create_site(operator.user, name="one", url=_through(web.set("/one"), t1), locations=["a", "b", "c"])
    two = create_site(operator.user, name="two", url=_through(web.set("/two"), t2), locations=["a", "b", "c"])
    for site in (one, two):
        site.check_interval_s, site.timeout_s = INTERVAL_S, 3
    db.session.commit()
    add_channel(operator.user, _through(receiver.url("/hook"), hook), events=["site.down", "site.up"])

    replicas = Replicas(test_env, tmp_path / "data", tmp_path / "log")
    (tmp_path / "log").mkdir()
    try:
        procs = {}
        for index, name in enumerate("abc"):
            procs[name] = replicas.start_in(lab.add_location(name, index), CLOUDEYE_LOCATION=name, **env)

        # Every location checks both sites; both are up.
        wait_for(
            lambda: all(_checks_since(s.id, n, 0, "up") for s in (one, two) for n in "abc"),
            90,
            "every location's first checks",
        )
        wait_for(lambda: _state(one.id) == "up" and _state(two.id) == "up", 30, "both sites up")

        # One location cut off from site one: its view is down, the site is not, nobody is told.
        lab.cut("a", "t1")
        mark = _last_id()
        wait_for(lambda: _checks_since(one.id, "a", mark, "down") >= 2, 60, "a to see site one down twice")
        wait_for(
            lambda: _checks_since(one.id, "b", mark) >= 2 and _checks_since(one.id, "c", mark) >= 2,
            60,
            "b, c",
        )
        assert _state(one.id) == "up"
        assert _count(Notification) == 0 and receiver.received == []

        # A second one: two of three see it down, the quorum: down, told exactly once.
        lab.cut("b", "t1")
        wait_for(lambda: _state(one.id) == "down", 60, "site one down")
        wait_for(lambda: _events(receiver, one.id) == ["site.down"], 60, "the down notification")
        mark = _last_id()
        wait_for(
            lambda: _checks_since(one.id, "a", mark) >= 1 and _checks_since(one.id, "b", mark) >= 1,
            60,
            "more",
        )
        assert _events(receiver, one.id) == ["site.down"] and _count(Notification) == 1

        # Restored: up, told once.
        lab.restore("a", "t1")
        lab.restore("b", "t1")
        wait_for(lambda: _state(one.id) == "up", 60, "site one up again")
        wait_for(lambda: _events(receiver, one.id) == ["site.down", "site.up"], 60, "the up notification")

        # Site two, cut from a and b: down. Then b's replica dies (kill -9): once its heartbeat has run out
        # b leaves the vote; a alone sees site two down, c sees it up: the site is up again.
        lab.cut("a", "t2")
        lab.cut("b", "t2")
        wait_for(lambda: _state(two.id) == "down", 60, "site two down")
        # b dies once the down is told and recorded: killed while it held that notification's lease, the
        # notification would wait for the lease to run out (NOTIFY_LEASE_S, 2 minutes), a case of its own
        # (tests/sync/test_notify_process.py). It failed here once that way.
        sent = (
            Notification.site_id == two.id,
            Notification.event == "site.down",
            Notification.status == "sent",
        )
        wait_for(lambda: _count(Notification, *sent) == 1, 60, "site two's down notification recorded")
        assert _events(receiver, two.id) == ["site.down"]
        procs["b"].kill()
        procs["b"].wait(30)
        wait_for(lambda: _state(two.id) == "up", 60, "site two up without b")
        wait_for(
            lambda: _events(receiver, two.id) == ["site.down", "site.up"], 60, "site two's notifications"
        )
        summary = operator.get(f"/usability/summary?site_id={two.id}").get_json()
        assert summary["locations"]["b"]["alive"] is False and summary["locations"]["b"]["state"] == "down"
        assert summary["locations"]["a"]["state"] == "down" and summary["locations"]["c"]["state"] == "up"
        located = {item["name"]: item for item in operator.get("/locations").get_json()["items"]}
        assert located["b"]["alive"] is False and located["a"]["workers"] == 1

        # c's replica stops too: one live location of three, quorum 2: nothing can be decided, the state is
        # held (a still sees site two down) and the summary says why.
        assert replicas.stop(procs["c"]) == 0
        mark = _last_id()
        wait_for(lambda: _checks_since(two.id, "a", mark) >= 2, 60, "a's checks alone")
        summary = operator.get(f"/usability/summary?site_id={two.id}").get_json()
        assert (
            summary["state"] == "up" and "only 1 of its 3 locations are alive" in summary["state_held_reason"]
        )
        assert _events(receiver, two.id) == ["site.down", "site.up"]
        assert replicas.stop(procs["a"]) == 0
    finally:
        replicas.cleanup()

    # Each slot once per location, and every probe that reached a site is a check of it.
    db.session.rollback()
    rows = db.session.execute(
        sa.select(UsabilityCheck.site_id, UsabilityCheck.location, UsabilityCheck.due_at)
    ).all()
    assert max(Counter(rows).values()) == 1
    for site, path in ((one, "/one"), (two, "/two")):
        assert web.hits[path] == _count(
            UsabilityCheck, UsabilityCheck.site_id == site.id, UsabilityCheck.status == "up"
        )
    for name, proc in procs.items():
        assert "Traceback" not in replicas.output(proc), name
