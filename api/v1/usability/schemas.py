from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from api.common import Id, PageArgs, UTCDate
from services.models import CHECK_STATUSES


class CheckSchema(Schema):
    id = fields.Integer()
    site_id = fields.Integer()
    checked_at = fields.DateTime()
    status = fields.String()
    http_status = fields.Integer(allow_none=True)
    response_ms = fields.Float(allow_none=True)
    failure_kind = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    tls_expires_at = fields.DateTime(allow_none=True)


class CheckQueryArgs(PageArgs):
    site_id = Id()
    status = fields.String(validate=validate.OneOf(CHECK_STATUSES))
    since = UTCDate()
    until = UTCDate()

    @validates_schema
    def _since_before_until(self, data, **_):
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            raise ValidationError("must be later than since", field_name="until")


class SummaryArgs(Schema):
    site_id = Id(required=True)


class LatencySchema(Schema):
    avg = fields.Float(allow_none=True)
    p95 = fields.Float(allow_none=True)


class OpenIncidentSchema(Schema):
    id = fields.Integer()
    started_at = fields.String()
    cause = fields.String(allow_none=True)


class SummarySchema(Schema):
    site_id = fields.Integer(required=True)
    state = fields.String(required=True)
    uptime = fields.Dict(keys=fields.String(), values=fields.Float(allow_none=True), required=True)
    latency_ms = fields.Nested(LatencySchema, required=True)
    last_checked_at = fields.String(allow_none=True)
    tls_expires_at = fields.String(allow_none=True)
    open_incident = fields.Nested(OpenIncidentSchema, allow_none=True)


class IncidentSchema(Schema):
    id = fields.Integer()
    site_id = fields.Integer()
    started_at = fields.DateTime()
    ended_at = fields.DateTime(allow_none=True)
    duration_s = fields.Float(allow_none=True)
    cause = fields.String(allow_none=True)


class IncidentQueryArgs(PageArgs):
    site_id = Id()
    open = fields.Boolean()
