"""Healthchecks outside the API prefix: /healthz (alive) and /readyz (ready to serve)."""

from flask import Blueprint, jsonify

from services import health

bp = Blueprint("health_probes", __name__)
# /readyz names the verdict of services.health in a load balancer's words.
READINESS = {"ok": "ready", "degraded": "degraded", "down": "not ready"}


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    state = health.assess(with_migrations=True)
    body = {
        "status": READINESS[state.status],
        "db": state.db,
        "redis": state.redis,
        "migrations": state.migrations,
    }
    return jsonify(body), 200 if state.serving else 503
