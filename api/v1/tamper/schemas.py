from marshmallow import Schema, fields, validate

from api.common import Id, PageArgs, Str
from services.models import EVENT_STATUSES


class TamperEventSchema(Schema):
    id = fields.Integer()
    site_id = fields.Integer()
    status = fields.String()
    severity = fields.String()
    change_ratio = fields.Float()
    forbidden_found = fields.List(fields.String())
    new_domains = fields.List(fields.String())
    detected_at = fields.DateTime()
    last_seen_at = fields.DateTime()
    note = fields.String(allow_none=True)
    handled_by_id = fields.Integer(allow_none=True)
    handled_at = fields.DateTime(allow_none=True)


class TamperEventDetailSchema(TamperEventSchema):
    diff = fields.String()


class TamperEventQueryArgs(PageArgs):
    site_id = Id()
    status = fields.String(validate=validate.OneOf(EVENT_STATUSES))


class TamperEventUpdateSchema(Schema):
    status = fields.String(validate=validate.OneOf(EVENT_STATUSES))
    note = Str(allow_none=True, validate=validate.Length(max=10_000))
