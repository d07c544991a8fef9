from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from api.common import Id, PageArgs, Str, UTCDate
from services.locations import LOCATION_PATTERN
from services.models import CHECK_STATUSES, LOCATION_STATES, SITE_STATES


class CheckSchema(Schema):
    id = fields.Integer()
    site_id = fields.Integer()
    location = fields.String(metadata={"description": "where it was made from"})
    due_at = fields.DateTime(metadata={"description": "the slot it fulfils (one per location)"})
    late = fields.Boolean(metadata={"description": "sent late by a probe agent: it did not vote"})
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
    location = Str(validate=validate.Regexp(LOCATION_PATTERN, error="not a location name"))
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


class LocationLatencySchema(Schema):
    avg = fields.Float(allow_none=True)


class LocationSummarySchema(Schema):
    state = fields.String(
        required=True,
        validate=validate.OneOf(LOCATION_STATES),
        metadata={"description": "the site as seen from there (its own checks against max_retries)"},
    )
    alive = fields.Boolean(required=True, metadata={"description": "a live heartbeat: it votes"})
    uptime = fields.Dict(keys=fields.String(), values=fields.Float(allow_none=True), required=True)
    latency_ms = fields.Nested(LocationLatencySchema, required=True)
    last_checked_at = fields.String(allow_none=True)


class SummarySchema(Schema):
    site_id = fields.Integer(required=True)
    state = fields.String(required=True, validate=validate.OneOf(SITE_STATES))
    quorum = fields.Integer(
        allow_none=True,
        metadata={"description": "live locations that must see it down; null: checked from any location"},
    )
    locations = fields.Dict(
        keys=fields.String(),
        values=fields.Nested(LocationSummarySchema),
        required=True,
        metadata={"description": "per location of a site with locations; empty for one checked from any"},
    )
    state_held_reason = fields.String(
        allow_none=True,
        metadata={"description": "set while too few of its locations are alive to decide: the state is held"},
    )
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
    location = fields.String(
        allow_none=True, metadata={"description": "the location whose result decided the down"}
    )


class IncidentQueryArgs(PageArgs):
    site_id = Id()
    open = fields.Boolean()
