from marshmallow import Schema, fields, validate

from api.common import AtLeastOneField, JSONBoolean, JSONId, JSONInteger, PageArgs, Str
from services.alerts.channels import MAX_SITES, REMIND_RANGE, TEXT_LENGTHS, masked_url
from services.models import EVENTS, LANGUAGES, SEVERITIES


class ChannelSchema(Schema):
    id = fields.Integer()
    owner_id = fields.Integer()
    name = fields.String()
    url = fields.Function(masked_url, metadata={"description": "with its secrets masked"})
    kind = fields.String(metadata={"enum": ["webhook", "apprise"]})
    events = fields.List(fields.String(metadata={"enum": list(EVENTS)}))
    site_ids = fields.List(fields.Integer(), allow_none=True, metadata={"description": "null: every site"})
    min_severity = fields.String(metadata={"enum": list(SEVERITIES)})
    remind_every_min = fields.Integer()
    enabled = fields.Boolean()
    language = fields.String(metadata={"enum": list(LANGUAGES)})
    has_secret = fields.Function(lambda channel: bool(channel.secret), metadata={"type": "boolean"})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


def _length(name: str) -> dict:
    shortest, longest = TEXT_LENGTHS[name]
    return {"minLength": shortest, "maxLength": longest}


class ChannelFields(Schema):
    """The fields a client sets. Their rules live in services.alerts.channels; this documents them."""

    name = Str(metadata=_length("name"))
    url = Str(
        metadata={
            **_length("url"),
            "description": "http(s): cloudeye's signed JSON webhook; any other scheme: an Apprise URL "
            "(mailto://, dingtalk://, wecombot://, feishu://, slack://, tgram://, ...)",
        }
    )
    events = fields.List(
        fields.String(validate=validate.OneOf(EVENTS)),
        validate=validate.Length(min=1),
        metadata={"description": "default: all"},
    )
    site_ids = fields.List(
        JSONId(),
        allow_none=True,
        validate=validate.Length(min=1, max=MAX_SITES),
        metadata={"description": "null (the default): every site the owner can see, now and later"},
    )
    min_severity = fields.String(
        validate=validate.OneOf(SEVERITIES), metadata={"description": "findings.new: default high"}
    )
    remind_every_min = JSONInteger(
        validate=validate.Range(*REMIND_RANGE),
        metadata={"description": "re-send site.down while still down; 0 (the default) never"},
    )
    enabled = JSONBoolean()
    language = fields.String(validate=validate.OneOf(LANGUAGES), metadata={"description": "default en"})
    secret = Str(
        allow_none=True,
        load_only=True,
        metadata={
            **_length("secret"),
            "description": "webhooks only: signs each body (X-Cloudeye-Signature); write-only",
        },
    )


class ChannelWriteSchema(ChannelFields):
    name = Str(required=True, metadata=_length("name"))
    url = Str(required=True, metadata=ChannelFields._declared_fields["url"].metadata)


class ChannelUpdateSchema(ChannelFields, AtLeastOneField):
    """PATCH: any subset of the fields (the masked url as answered counts as unchanged)."""


class ChannelQueryArgs(PageArgs):
    pass


class ChannelTestResultSchema(Schema):
    notification_id = fields.Integer(required=True, metadata={"description": "its row in /notifications"})
    delivered = fields.Boolean(required=True)
    error = fields.String(allow_none=True, required=True)
    duration_ms = fields.Float(required=True)
