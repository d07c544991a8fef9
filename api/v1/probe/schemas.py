from marshmallow import Schema, fields, validate

from api.common import JSONBoolean, JSONId, JSONInteger, JSONNumber, Str, UTCDate
from services.models import FAILURE_KINDS
from services.probes import MAX_CLAIMS, MAX_RESULTS

WORKER_ID = Str(
    required=True,
    validate=validate.Regexp(r"^[A-Za-z0-9_.:@-]{1,100}$", error="1-100 letters, digits or _ . : @ -"),
    metadata={"description": "the agent's own name for itself (host:pid): its heartbeat"},
)


class ClaimRequestSchema(Schema):
    worker_id = WORKER_ID
    limit = JSONInteger(
        required=True,
        validate=validate.Range(min=0, max=MAX_CLAIMS),
        metadata={"description": "at most this many checks (its free probe slots); 0: a heartbeat only"},
    )


class ClaimedCheckSchema(Schema):
    site_id = fields.Integer(required=True)
    due_at = fields.DateTime(
        required=True, metadata={"description": "the slot; send it back with the result"}
    )
    claimed_until = fields.DateTime(
        required=True, metadata={"description": "the lease, also its token: send it back with the result"}
    )
    url = fields.String(required=True)
    timeout_s = fields.Integer(required=True)
    accepted_status = fields.String(required=True)
    keyword = fields.String(allow_none=True)
    keyword_absent = fields.Boolean(required=True)
    check_interval_s = fields.Integer(required=True)


class ClaimAnswerSchema(Schema):
    location = fields.String(required=True, metadata={"description": "the probe account's location"})
    heartbeat_ttl_s = fields.Integer(
        required=True, metadata={"description": "the location stays alive this long after a call"}
    )
    checks = fields.List(fields.Nested(ClaimedCheckSchema), required=True)


class ProbeResultSchema(Schema):
    site_id = JSONId(required=True)
    due_at = UTCDate(required=True)
    claimed_until = UTCDate(
        load_default=None, allow_none=True, metadata={"description": "null: made without a claim (late)"}
    )
    checked_at = UTCDate(required=True)
    up = JSONBoolean(required=True)
    http_status = JSONInteger(load_default=None, allow_none=True, validate=validate.Range(min=100, max=599))
    response_ms = JSONNumber(
        load_default=None, allow_none=True, validate=validate.Range(min=0, max=3_600_000), allow_nan=False
    )
    failure_kind = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(FAILURE_KINDS))
    reason = Str(load_default=None, allow_none=True, validate=validate.Length(max=500))
    tls_expires_at = UTCDate(load_default=None, allow_none=True)
    late = JSONBoolean(
        load_default=False, metadata={"description": "sent late (kept while the API was unreachable)"}
    )


class ResultsSchema(Schema):
    worker_id = WORKER_ID
    results = fields.List(
        fields.Nested(ProbeResultSchema), required=True, validate=validate.Length(max=MAX_RESULTS)
    )


class RecordedSchema(Schema):
    recorded = fields.Integer(required=True, metadata={"description": "results recorded now"})
    late = fields.Integer(required=True, metadata={"description": "of those, late ones (they do not vote)"})
    duplicates = fields.Integer(required=True, metadata={"description": "slots recorded before (a retry)"})
    skipped = fields.Integer(
        required=True, metadata={"description": "no such site, or not one of the caller's location"}
    )


class LeaseSchema(Schema):
    site_id = JSONId(required=True)
    due_at = UTCDate(required=True)
    claimed_until = UTCDate(required=True)


class ReleaseSchema(Schema):
    worker_id = WORKER_ID
    claims = fields.List(fields.Nested(LeaseSchema), required=True, validate=validate.Length(max=MAX_CLAIMS))
    stopping = JSONBoolean(
        load_default=False, metadata={"description": "the agent stops: its heartbeat goes at once"}
    )


class ReleasedSchema(Schema):
    released = fields.Integer(required=True)
