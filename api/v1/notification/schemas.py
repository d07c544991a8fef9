from marshmallow import Schema, fields, validate

from api.common import Id, PageArgs
from services.models import ALL_EVENTS, NOTIFICATION_STATUSES


class NotificationSchema(Schema):
    id = fields.Integer()
    channel_id = fields.Integer()
    site_id = fields.Integer(allow_none=True)
    event = fields.String(metadata={"enum": list(ALL_EVENTS)})
    delivery_id = fields.String(metadata={"description": "the same on every attempt (X-Cloudeye-Delivery)"})
    status = fields.String(metadata={"enum": list(NOTIFICATION_STATUSES)})
    attempts = fields.Integer()
    last_error = fields.String(allow_none=True)
    occurred_at = fields.DateTime()
    created_at = fields.DateTime()
    next_attempt_at = fields.DateTime(metadata={"description": "pending: when it is tried (again)"})
    sent_at = fields.DateTime(allow_none=True)


class NotificationQueryArgs(PageArgs):
    channel_id = Id()
    site_id = Id()
    status = fields.String(validate=validate.OneOf(NOTIFICATION_STATUSES))
    event = fields.String(validate=validate.OneOf(ALL_EVENTS))
