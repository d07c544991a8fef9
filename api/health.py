"""Healthchecks outside the API prefix: /healthz (alive) and /readyz (ready to serve)."""

from flask import Blueprint, jsonify

from services import health

bp = Blueprint("health_probes", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    checks = {
        "db": "ok" if health.database_ok() else "down",
        "redis": health.redis_state(),
    }
    checks["migrations"] = "ok" if checks["db"] == "ok" and health.migrations_at_head() else "pending"
    # Redis only caches and coordinates: without it the API still serves (degraded), so a Redis outage
    # must not take every api replica out of the load balancer.
    ready = checks["db"] == "ok" and checks["migrations"] == "ok"
    status = "not ready" if not ready else ("degraded" if checks["redis"] == "down" else "ready")
    return jsonify(status=status, **checks), 200 if ready else 503
