from datetime import UTC, datetime

from marshmallow import Schema, fields, validate

from api.common import AtLeastOneField, Id, JSONId, JSONInteger, PageArgs, Str, UTCDate
from services.alerts import maintenance
from services.models import WEEKDAYS


class MaintenanceSchema(Schema):
    id = fields.Integer()
    owner_id = fields.Integer()
    title = fields.String()
    site_ids = fields.List(fields.Integer())
    recurring = fields.Boolean()
    starts_at = fields.DateTime(allow_none=True)
    ends_at = fields.DateTime(allow_none=True)
    weekdays = fields.List(fields.String(metadata={"enum": list(WEEKDAYS)}), allow_none=True)
    start_time = fields.String(allow_none=True)
    duration_min = fields.Integer(allow_none=True)
    timezone = fields.String()
    active = fields.Function(
        lambda window: maintenance.covers(window, datetime.now(UTC)),
        metadata={"type": "boolean", "description": "the window is on now"},
    )
    next_start_at = fields.Function(
        lambda window: _iso(maintenance.next_start(window, datetime.now(UTC))),
        metadata={"type": "string", "format": "date-time", "nullable": True},
    )
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


def _iso(moment):
    return moment.isoformat() if moment is not None else None


class MaintenanceFields(Schema):
    """One-off: starts_at and ends_at. Weekly: weekdays, start_time and duration_min in timezone.
    The rules live in services.alerts.maintenance; this documents them."""

    title = Str(metadata={"minLength": 1, "maxLength": 200})
    site_ids = fields.List(JSONId(), validate=validate.Length(min=1, max=maintenance.MAX_SITES))
    starts_at = UTCDate(allow_none=True)
    ends_at = UTCDate(allow_none=True, metadata={"description": "after starts_at"})
    weekdays = fields.List(
        fields.String(validate=validate.OneOf(WEEKDAYS)),
        allow_none=True,
        validate=validate.Length(min=1, max=7),
    )
    start_time = Str(
        allow_none=True,
        metadata={
            "pattern": r"^([01]\d|2[0-3]):[0-5]\d$",
            "description": "HH:MM, 24-hour, local to timezone",
        },
    )
    duration_min = JSONInteger(allow_none=True, validate=validate.Range(1, maintenance.MAX_DURATION_MIN))
    timezone = Str(
        metadata={"maxLength": 64, "description": "IANA name, default UTC", "example": "Asia/Shanghai"}
    )


class MaintenanceWriteSchema(MaintenanceFields):
    title = Str(required=True, metadata={"minLength": 1, "maxLength": 200})
    site_ids = fields.List(
        JSONId(), required=True, validate=validate.Length(min=1, max=maintenance.MAX_SITES)
    )


class MaintenanceUpdateSchema(MaintenanceFields, AtLeastOneField):
    pass


class MaintenanceQueryArgs(PageArgs):
    site_id = Id()
