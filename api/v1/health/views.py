from marshmallow import Schema, fields

from api.auth import public
from api.common import Blueprint
from services import health

blp = Blueprint("health", __name__, description="Service health")


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"description": "ok or degraded or down"})
    db = fields.String(required=True)
    redis = fields.String(required=True)


@blp.route("/health")
@public
@blp.doc(security=[])
@blp.response(200, HealthSchema)
@blp.alt_response(503, schema=HealthSchema, description="the database is unreachable")
def get_health():
    """Health of the API and what it depends on"""
    state = health.assess()
    return {"status": state.status, "db": state.db, "redis": state.redis}, 200 if state.serving else 503
