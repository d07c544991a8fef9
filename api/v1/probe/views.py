from flask_smorest import Blueprint

from api.auth import probe_operation
from api.common import current_user
from api.v1.probe.schemas import (
    ClaimAnswerSchema,
    ClaimRequestSchema,
    RecordedSchema,
    ReleasedSchema,
    ReleaseSchema,
    ResultsSchema,
)
from services import probes

blp = Blueprint(
    "probe",
    __name__,
    url_prefix="/probe",
    description="Remote probe agents (role probe only): claim the location's due checks, send results",
)


@blp.route("/claims", methods=["POST"])
@probe_operation
@blp.arguments(ClaimRequestSchema)
@blp.response(200, ClaimAnswerSchema)
@blp.alt_response(429, description="too many calls")
def claim(data):
    """Heartbeat, and claim up to `limit` due checks of the caller's location"""
    return probes.claim(current_user(), data["worker_id"], data["limit"])


@blp.route("/results", methods=["POST"])
@probe_operation
@blp.arguments(ResultsSchema)
@blp.response(200, RecordedSchema)
@blp.alt_response(429, description="too many calls")
def record(data):
    """Send results (idempotent: a result already recorded counts as a duplicate)"""
    return probes.record(current_user(), data["worker_id"], data["results"])


@blp.route("/release", methods=["POST"])
@probe_operation
@blp.arguments(ReleaseSchema)
@blp.response(200, ReleasedSchema)
@blp.alt_response(429, description="too many calls")
def release(data):
    """Give back claims the agent will not finish (it is stopping)"""
    released = probes.release(current_user(), data["worker_id"], data["claims"], data["stopping"])
    return {"released": released}
