"""Locations: where checks are made from, which of them are alive, and how their views of a site add up.

Every sync replica has a location label, CLOUDEYE_LOCATION (default `default`); a remote probe agent has
the location of its `probe` user. Each of them beats a heartbeat carrying its location (`beat`), every
SYNC_HEARTBEAT_TTL_S / 3: a location is **alive** while at least one of its workers has a heartbeat
younger than SYNC_HEARTBEAT_TTL_S.

Where heartbeats live: with REDIS_URL, a key per worker with that TTL (`cloudeye:sync:heartbeat:<id>`,
what `sync_main.py --healthcheck` reads), a sorted set per location of its workers scored by their last
beat (`cloudeye:sync:location:<name>`) and a hash of every location's last beat
(`cloudeye:sync:locations`); without it, `worker_heartbeats` rows. `live_locations(names)` is one round
trip either way, so a batch of results decides its sites' states at a fixed cost.

The vote (docs/sync.md, "Voting"): `decide` turns the views of a site's live locations into its state.
"""

import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from services.cache import cache
from services.errors import Invalid
from services.extensions import db
from services.models import WorkerHeartbeat
from services.paging import envelope

log = logging.getLogger(__name__)

DEFAULT_LOCATION = "default"
# Lower case only: MySQL compares names case-insensitively, so "EU" and "eu" could never be told apart.
LOCATION_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
LOCATION_RULE = "1-64 lower-case letters, digits, '.', '_' or '-', starting with a letter or a digit"
_NAME = re.compile(LOCATION_PATTERN)
LOCATIONS_KEY = ("sync", "locations")  # hash: location -> last beat (ISO)


def valid_name(name) -> bool:
    return isinstance(name, str) and bool(_NAME.fullmatch(name))


def check_name(name, field: str = "location") -> str:
    if not valid_name(name):
        raise Invalid(f"{field}: {LOCATION_RULE}", errors={field: [LOCATION_RULE]})
    return name


def heartbeat_ttl_s() -> int:
    return max(3, int(current_app.config["SYNC_HEARTBEAT_TTL_S"]))


def _workers_key(location: str) -> str:
    return cache.key("sync", "location", location)


# --- heartbeats --------------------------------------------------------------------------------------------


def beat(worker_id: str, location: str, info: dict, ttl_s: int | None = None) -> None:
    """Record that `worker_id` of `location` is alive now (and commit, without Redis)."""
    ttl_s = ttl_s or heartbeat_ttl_s()
    now = datetime.now(UTC)
    info = {**info, "worker_id": worker_id, "location": location, "beat_at": now.isoformat()}
    if cache.is_redis:
        workers = _workers_key(location)
        pipe = cache.store.pipeline(transaction=False)
        pipe.set(cache.key("sync", "heartbeat", worker_id), json.dumps(info), ex=ttl_s)
        pipe.zadd(workers, {worker_id: now.timestamp()})
        pipe.zremrangebyscore(workers, "-inf", now.timestamp() - ttl_s)  # workers gone without a word
        pipe.hset(cache.key(*LOCATIONS_KEY), location, now.isoformat())
        pipe.execute()
        return
    row = db.session.get(WorkerHeartbeat, worker_id)
    if row is None:
        row = WorkerHeartbeat(worker_id=worker_id)
        db.session.add(row)
    row.location = location
    row.beat_at = now
    row.stopped_at = None
    row.info = info
    db.session.commit()


def clear(worker_id: str, location: str) -> None:
    """A worker stopping cleanly: it leaves its location at once (commits, without Redis)."""
    if cache.is_redis:
        pipe = cache.store.pipeline(transaction=False)
        pipe.delete(cache.key("sync", "heartbeat", worker_id))
        pipe.zrem(_workers_key(location), worker_id)
        pipe.execute()
        return
    # Kept, like the Redis hash of locations, so the location is still listed with its last sighting.
    db.session.execute(
        sa.update(WorkerHeartbeat)
        .where(WorkerHeartbeat.worker_id == worker_id)
        .values(stopped_at=datetime.now(UTC))
    )
    db.session.commit()


def prune(older_than: timedelta = timedelta(days=1)) -> int:
    """Forget workers and locations silent for `older_than` (each start has a new worker id). Commits."""
    cutoff = datetime.now(UTC) - older_than
    if cache.is_redis:
        gone = [
            name.decode() if isinstance(name, bytes) else name
            for name, seen in cache.store.hgetall(cache.key(*LOCATIONS_KEY)).items()
            if _parse_time(seen) < cutoff
        ]
        if gone:
            cache.store.hdel(cache.key(*LOCATIONS_KEY), *gone)
            cache.store.delete(*[_workers_key(name) for name in gone])
        return len(gone)
    result = db.session.execute(sa.delete(WorkerHeartbeat).where(WorkerHeartbeat.beat_at < cutoff))
    db.session.commit()
    return result.rowcount or 0


def _parse_time(value) -> datetime:
    text = value.decode() if isinstance(value, bytes) else str(value)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- who is alive ------------------------------------------------------------------------------------------


def live_locations(names) -> set[str]:
    """Which of `names` have at least one worker with a fresh heartbeat (one round trip)."""
    names = sorted(set(names))
    if not names:
        return set()
    now = datetime.now(UTC)
    fresh_after = now - timedelta(seconds=heartbeat_ttl_s())
    if cache.is_redis:
        pipe = cache.store.pipeline(transaction=False)
        for name in names:
            pipe.zcount(_workers_key(name), fresh_after.timestamp(), "+inf")
        return {name for name, count in zip(names, pipe.execute(), strict=True) if count}
    table = WorkerHeartbeat.__table__
    rows = db.session.scalars(
        sa.select(table.c.location)
        .where(table.c.location.in_(names), table.c.beat_at >= fresh_after, table.c.stopped_at.is_(None))
        .group_by(table.c.location)
    ).all()
    return set(rows)


def list_locations() -> list[dict]:
    """Every location seen in a heartbeat (within a day): {name, workers, last_seen_at, alive}, by name."""
    now = datetime.now(UTC)
    fresh_after = now - timedelta(seconds=heartbeat_ttl_s())
    if cache.is_redis:
        seen = {
            (name.decode() if isinstance(name, bytes) else name): _parse_time(moment)
            for name, moment in cache.store.hgetall(cache.key(*LOCATIONS_KEY)).items()
        }
        names = sorted(seen)
        pipe = cache.store.pipeline(transaction=False)
        for name in names:
            pipe.zcount(_workers_key(name), fresh_after.timestamp(), "+inf")
        counts = pipe.execute() if names else []
        return [
            {"name": name, "workers": count, "last_seen_at": seen[name], "alive": count > 0}
            for name, count in zip(names, counts, strict=True)
        ]
    table = WorkerHeartbeat.__table__
    rows = db.session.execute(
        sa.select(
            table.c.location,
            sa.func.max(table.c.beat_at),
            sa.func.sum(
                sa.case((sa.and_(table.c.beat_at >= fresh_after, table.c.stopped_at.is_(None)), 1), else_=0)
            ),
        )
        .group_by(table.c.location)
        .order_by(table.c.location)
    ).all()
    return [
        {"name": name, "workers": int(workers or 0), "last_seen_at": last, "alive": bool(workers)}
        for name, last, workers in rows
    ]


def page_of_locations(page: int, per_page: int) -> dict:
    """`list_locations` as a page of the API's lists (there are few: it is cut in memory)."""
    everything = list_locations()
    start = (page - 1) * per_page
    return envelope(everything[start : start + per_page], len(everything), page, per_page)


# --- the vote ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    state: str | None  # the site's new state; None: held (too few live locations), it stays as it was
    down: list[str]  # live locations whose view is down
    failing: list[str]  # live locations whose view is pending or down
    live: int
    quorum: int


def decide(views: dict[str, str], live: set[str], quorum: int, previous: str) -> Decision:
    """The state of a site from its locations' views ({location: unknown|up|pending|down}).

    Only live locations vote. With fewer live locations than `quorum` nothing can be decided: the state
    is held. Otherwise the site is down when at least `quorum` of them see it down; once down it stays
    down while at least `quorum` are still failing (pending or down), as a single location's state stays
    down until a success; pending when `quorum` are failing but not yet down; up when fewer than `quorum`
    are failing and at least one sees it up (with no view at all yet, it stays as it was)."""
    voters = {name: state for name, state in views.items() if name in live}
    down = sorted(name for name, state in voters.items() if state == "down")
    failing = sorted(name for name, state in voters.items() if state in ("down", "pending"))
    if len(voters) < quorum:
        return Decision(None, down, failing, len(voters), quorum)
    if len(down) >= quorum:
        state = "down"
    elif len(failing) >= quorum:
        state = "down" if previous == "down" else "pending"
    elif any(state == "up" for state in voters.values()):
        state = "up"
    else:
        state = previous
    return Decision(state, down, failing, len(voters), quorum)


def held_reason(live: int, total: int, quorum: int) -> str | None:
    """Why a site's state is held, or None when its live locations can decide."""
    if live >= quorum:
        return None
    return (
        f"only {live} of its {total} locations are alive and {quorum} must agree: "
        "the state is held until enough of them are back"
    )
