from marshmallow import Schema, fields, validate

from api.common import JSONBoolean, JSONInteger, JSONNumber, PageArgs, Str, current_user
from services.models import PERMISSIONS, SITE_STATES
from services.sites import (
    LIST_LIMITS,
    NUMBER_RANGES,
    TEXT_LENGTHS,
    default_settings,
    member_name_seen_by,
    url_seen_by,
)


class SiteSchema(Schema):
    id = fields.Integer(dump_only=True)
    owner_id = fields.Integer(dump_only=True)
    name = fields.String()
    url = fields.Method(
        "_url",
        metadata={
            "type": "string",
            "description": "a password in it is masked (***) unless the caller may change the site",
        },
    )
    check_interval_s = fields.Integer()
    timeout_s = fields.Integer()
    accepted_status = fields.String()
    keyword = fields.String(allow_none=True)
    keyword_absent = fields.Boolean()
    max_retries = fields.Integer()
    tamper_enabled = fields.Boolean()
    tamper_threshold = fields.Float()
    tamper_ignore = fields.List(fields.String())
    forbidden_keywords = fields.List(fields.String())
    paused = fields.Boolean()
    state = fields.String(dump_only=True)
    last_checked_at = fields.DateTime(dump_only=True, allow_none=True)
    next_check_at = fields.DateTime(dump_only=True, allow_none=True)
    tls_expires_at = fields.DateTime(dump_only=True, allow_none=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)

    def _url(self, site) -> str:
        return url_seen_by(current_user(), site)


def _documented(name: str) -> dict:
    """What the OpenAPI document says of a setting: its default and the bounds services.sites enforces."""
    doc = {}
    if name in DEFAULTS:
        doc["default"] = DEFAULTS[name]
    if name in NUMBER_RANGES:
        doc["minimum"], doc["maximum"] = NUMBER_RANGES[name]
    if name in TEXT_LENGTHS:
        doc["minLength"], doc["maxLength"] = TEXT_LENGTHS[name]
    if name in LIST_LIMITS:
        doc["maxItems"] = LIST_LIMITS[name][0]
    return doc


def _item_length(name: str) -> dict:
    shortest, longest = LIST_LIMITS[name][1]
    return {"minLength": shortest, "maxLength": longest}


DEFAULTS = default_settings()


class SiteWriteSchema(Schema):
    """The fields a client sets (every one optional on PATCH). Their rules live in services.sites
    (`check_settings`); this schema shapes the input and documents the rules."""

    name = Str(required=True, metadata=_documented("name"))
    url = Str(required=True, metadata={**_documented("url"), "format": "uri"})
    check_interval_s = JSONInteger(metadata=_documented("check_interval_s"))
    timeout_s = JSONInteger(metadata={**_documented("timeout_s"), "description": "at most check_interval_s"})
    accepted_status = Str(
        metadata={**_documented("accepted_status"), "description": "status codes and ranges: 200-299, 301"}
    )
    keyword = Str(allow_none=True, metadata=_documented("keyword"))
    keyword_absent = JSONBoolean(metadata=_documented("keyword_absent"))
    max_retries = JSONInteger(metadata=_documented("max_retries"))
    tamper_enabled = JSONBoolean(metadata=_documented("tamper_enabled"))
    tamper_threshold = JSONNumber(metadata=_documented("tamper_threshold"))
    tamper_ignore = fields.List(
        Str(metadata=_item_length("tamper_ignore")),
        metadata={
            **_documented("tamper_ignore"),
            "description": "regular expressions removed before comparing",
        },
    )
    forbidden_keywords = fields.List(
        Str(metadata=_item_length("forbidden_keywords")), metadata=_documented("forbidden_keywords")
    )
    paused = JSONBoolean(metadata=_documented("paused"))


class SiteUpdateSchema(SiteWriteSchema):
    """PATCH body: any subset of the writable fields (used with partial=True); what it leaves out keeps its
    value, so the document gives no defaults here."""

    CHANGES_ONLY_WHAT_IS_SENT = True


class SiteQueryArgs(PageArgs):
    q = Str(validate=validate.Length(min=1, max=200))
    state = fields.String(validate=validate.OneOf(SITE_STATES))


class MemberSchema(Schema):
    site_id = fields.Integer(dump_only=True)
    user_id = fields.Integer(dump_only=True)
    username = fields.Method(
        "_username",
        dump_only=True,
        metadata={
            "type": "string",
            "nullable": True,
            "description": "for admins and for the member themselves; null for others (users are admins' to list)",
        },
    )
    permission = fields.String(required=True)
    created_at = fields.DateTime(dump_only=True)

    def _username(self, member) -> str | None:
        return member_name_seen_by(current_user(), member)


class MemberWriteSchema(Schema):
    permission = fields.String(required=True, validate=validate.OneOf(PERMISSIONS))


class CheckRequestedSchema(Schema):
    site_id = fields.Integer(required=True)
    requested_at = fields.DateTime(required=True)
    message = fields.String(required=True)
