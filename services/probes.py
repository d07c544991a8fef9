"""Remote probe agents: what a `probe` account may do, and the three things it does.

A probe agent (`python sync_main.py --agent`, sync/agent.py) runs far from the database and reaches
cloudeye only through the API, with the token of a user of role `probe`. That user's `location` is the
agent's: the agent claims only the due checks of sites naming that location (never a site checked from
any location, never another location's) and sends their results back. A probe token is refused
everywhere else (403), and nobody else may use these operations (403): `check_access`.

- `claim`: the agent's heartbeat (its location stays alive while it calls), then up to `limit` due checks
  of its location, with their leases (`services.scheduler.claim_due`);
- `record`: a batch of results, recorded exactly like a sync worker's (`services.scheduler
  .record_claimed`). Idempotent: a result whose slot is recorded already is a duplicate, answered as
  such, so an agent may send a batch again when it did not get the answer. A result sent after its lease
  ran out, or without one (made while the agent could not reach the API), is late: recorded, never voting;
- `release`: claims the agent will not finish (it is stopping) go back, due again at once.

Each call counts against PROBE_RATE_LIMIT per PROBE_RATE_WINDOW_S for its user (429 beyond).
"""

import logging
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import current_app

from services import locations, ratelimit, scheduler, users
from services.errors import Forbidden, Invalid, NotFound
from services.extensions import db
from services.models import ApiToken, Site, User
from services.usability import CheckResult

log = logging.getLogger(__name__)
PROBE_ROLE = "probe"
MAX_CLAIMS = 500  # checks per claim call
MAX_RESULTS = 500  # results per record call


def check_access(user: User, probe_operation: bool) -> None:
    """A probe account may use the probe operations and nothing else; nobody else may use them."""
    if user.role == PROBE_ROLE and not probe_operation:
        raise Forbidden("a probe account can only claim its location's checks and send their results")
    if probe_operation and user.role != PROBE_ROLE:
        raise Forbidden("only probe agents (accounts of role probe) claim checks and send results")


def check_rate(user: User) -> None:
    """Raise TooManyRequests past PROBE_RATE_LIMIT calls per PROBE_RATE_WINDOW_S of this probe user."""
    config = current_app.config
    ratelimit.count_call(
        "probe",
        user.id,
        config["PROBE_RATE_LIMIT"],
        config["PROBE_RATE_WINDOW_S"],
        "too many probe calls, slow down",
    )


def agent_worker_id(user: User, worker_id: str) -> str:
    """The agent's id in heartbeats: never one of a sync worker (`<host>:<pid>`)."""
    return f"agent:{user.id}:{worker_id}"


def _beat(user: User, worker_id: str) -> None:
    locations.beat(agent_worker_id(user, worker_id), user.location, {"agent": True, "user_id": user.id})


def claim(user: User, worker_id: str, limit: int) -> dict:
    """Heartbeat, then up to `limit` due checks of the caller's location (limit 0: heartbeat only)."""
    check_rate(user)
    _beat(user, worker_id)
    lease_margin_s = current_app.config["SYNC_LEASE_MARGIN_S"]
    claims = scheduler.claim_due(min(limit, MAX_CLAIMS), lease_margin_s, user.location, any_location=False)
    return {
        "location": user.location,
        "heartbeat_ttl_s": locations.heartbeat_ttl_s(),
        "checks": [
            {
                "site_id": c.site_id,
                "due_at": c.due_at,
                "claimed_until": c.claimed_until,
                "url": c.url,
                "timeout_s": c.timeout_s,
                "accepted_status": c.accepted_status,
                "keyword": c.keyword,
                "keyword_absent": c.keyword_absent,
                "check_interval_s": c.check_interval_s,
            }
            for c in claims
        ],
    }


def record(user: User, worker_id: str, results: list[dict]) -> dict:
    """Record a batch of the agent's results (see the module's docstring); commits. Returns the counts:
    recorded (of which late), duplicates (recorded before), skipped (no such site, or not one of the
    caller's location)."""
    check_rate(user)
    _beat(user, worker_id)
    now = datetime.now(UTC)
    named = {
        site_id
        for site_id, names in db.session.execute(
            sa.select(Site.id, Site.locations).where(Site.id.in_({r["site_id"] for r in results}))
        )
        if user.location in (names or ())
    }
    items, skipped = [], 0
    for item in results:
        if item["site_id"] not in named:
            skipped += 1
            continue
        until = item.get("claimed_until")
        lease = None
        if until is not None:
            lease = scheduler.Lease(
                site_id=item["site_id"],
                location=user.location,
                per_location=True,
                due_at=item["due_at"],
                claimed_at=item["due_at"],  # a claim is never made before its slot is due
                claimed_until=until,
            )
        result = CheckResult(
            site_id=item["site_id"],
            due_at=item["due_at"],
            checked_at=item["checked_at"],
            up=item["up"],
            http_status=item.get("http_status"),
            response_ms=item.get("response_ms"),
            failure_kind=item.get("failure_kind"),
            reason=item.get("reason"),
            tls_expires_at=item.get("tls_expires_at"),
            location=user.location,
            late=bool(item.get("late")) or until is None or until < now,
        )
        items.append((lease, result))
    recorded = scheduler.record_claimed(items) if items else {}
    return {
        "recorded": len(recorded),
        "late": sum(1 for late in recorded.values() if late),
        "duplicates": len(items) - len(recorded),
        "skipped": skipped,
    }


def release(user: User, worker_id: str, claims: list[dict], stopping: bool) -> int:
    """Give back the caller's unfinished claims (due again at once); with `stopping`, its location
    forgets this agent at once rather than when its heartbeat runs out. Commits; returns the count."""
    check_rate(user)
    leases = [
        scheduler.Lease(
            site_id=item["site_id"],
            location=user.location,
            per_location=True,
            due_at=item["due_at"],
            claimed_at=item["due_at"],
            claimed_until=item["claimed_until"],
        )
        for item in claims
    ]
    released = scheduler.release(leases)
    if stopping:
        locations.clear(agent_worker_id(user, worker_id), user.location)
    return released


def issue_token(actor: User, user_id: int, name: str, expires_in_days: int | None) -> tuple[str, ApiToken]:
    """An admin creates the API token an agent runs with (a probe account cannot create its own: it may do
    nothing but probe). Only for accounts of role probe; the secret is in the answer only."""
    users.require_role(actor, "admin")
    target = db.session.get(User, user_id)
    if target is None:
        raise NotFound(f"user {user_id} not found")
    if target.role != PROBE_ROLE:
        raise Invalid(
            "only a probe account gets its token from an admin; other users create their own",
            errors={"user_id": ["not a probe account"]},
        )
    return users.create_api_token(target, name, expires_in_days)
