"""The outbox with real `sync_main.py` processes: two replicas share it without sending a row twice, and a
replica killed with kill -9 in the middle of deliveries loses nothing (its rows are sent again once their
leases expire: at most one duplicate each, with the same delivery_id)."""

from collections import Counter
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from services.alerts.outbox import Event, enqueue
from services.extensions import db
from services.models import Channel, Notification
from tests.factories import create_site
from tests.receivers import WebhookReceiver
from tests.sync.test_process import wait_for, workers  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow
ROWS = 40
NOTIFY_ENV = {
    "NOTIFY_CONCURRENCY": "4",
    "NOTIFY_TIMEOUT_S": "2",  # leases last 2 x 2 + 5 = 9 s
    "NOTIFY_LEASE_S": "1",
    "NOTIFY_POLL_INTERVAL_S": "0.2",
    "NOTIFY_BACKOFF_BASE_S": "0.5",
    "ALERTS_TICK_INTERVAL_S": "600",
}


def _statuses() -> Counter:
    db.session.rollback()
    return Counter(db.session.scalars(sa.select(Notification.status)).all())


def test_two_replicas_and_a_kill_9_mid_delivery(workers, operator):  # noqa: F811 - the fixture
    receiver = WebhookReceiver()
    receiver.delay = 0.3  # every answer takes a while: a kill lands on deliveries in flight
    try:
        sites = [create_site(operator.user, paused=True) for _ in range(ROWS)]  # never probed here
        channel = Channel(
            owner_id=operator.user.id,
            name="ops",
            url=receiver.url(),
            kind="webhook",
            events=["site.down"],
            all_sites=True,
        )
        db.session.add(channel)
        db.session.commit()
        now = datetime.now(UTC)
        enqueue(
            [Event("site.down", site, now, {"since": now.isoformat(), "cause": "test"}) for site in sites]
        )
        db.session.commit()
        expected = set(db.session.scalars(sa.select(Notification.delivery_id)).all())
        assert len(expected) == ROWS

        first = workers.start(**NOTIFY_ENV)
        second = workers.start(**NOTIFY_ENV)
        wait_for(lambda: len(receiver.received) >= 10, 60, "deliveries to start")
        first.kill()
        first.wait(30)
        db.session.rollback()
        orphaned = db.session.scalar(
            sa.select(sa.func.count()).where(
                Notification.claimed_by.like(f"%:{first.pid}"), Notification.status == "pending"
            )
        )
        assert orphaned >= 1  # killed with deliveries in flight
        before_kill = Counter(r.headers["X-Cloudeye-Delivery"] for r in receiver.received)
        assert max(before_kill.values()) == 1  # two replicas, no row sent twice

        wait_for(lambda: _statuses() == Counter({"sent": ROWS}), 90, "every notification to be sent")
        assert workers.stop(second) == 0
        received = Counter(r.headers["X-Cloudeye-Delivery"] for r in receiver.received)
        assert set(received) == expected  # nothing lost
        assert max(received.values()) <= 2  # at most one duplicate of a row
        duplicates = [delivery for delivery, times in received.items() if times == 2]
        assert len(duplicates) <= orphaned  # only what the killed replica had claimed
        db.session.rollback()
        assert db.session.scalar(sa.select(sa.func.count()).where(Notification.claimed_by.is_not(None))) == 0
    finally:
        receiver.close()
