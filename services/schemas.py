"""The bodies a client writes, shaped in one place for every way in: the API (`api/v1`) loads its JSON
through them and the console (`console/`) its forms, so both give the same field-level messages.

The rules themselves live in the service modules (services.sites.check_settings, services.users
.username_for/check_password, visibility, uniqueness, transitions); a schema here shapes each field and
documents the numbers those rules enforce.

Booleans, integers and numbers are exactly those JSON types (JSONBoolean, JSONInteger, JSONNumber, JSONId):
what the OpenAPI document calls a boolean is `true` or `false`, not `0`, `1.0` or `"yes"`. A form sends
only text, so the console turns its fields into those types first (console.forms.typed) and then loads
them through the same schema.
"""

import re

from marshmallow import Schema, ValidationError, fields, validate, validates

from services.locations import LOCATION_PATTERN, LOCATION_RULE
from services.models import ROLES
from services.sites import LIST_LIMITS, MAX_LOCATIONS, NUMBER_RANGES, TEXT_LENGTHS, default_settings
from services.users import PASSWORD_LENGTH, PASSWORD_RULE, USERNAME_LENGTH, USERNAME_RULE

MAX_ID = 2**63 - 1


class Str(fields.String):
    """A string the database can store: no lone surrogates or NUL characters."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise ValidationError("must not contain NUL characters")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValidationError("must be valid Unicode text") from exc
        return text


def Id(**kwargs):  # noqa: N802 - reads like a field class
    """An id in a query string or a path (text): "12" is 12."""
    return fields.Integer(strict=False, validate=validate.Range(min=1, max=MAX_ID), **kwargs)


class JSONBoolean(fields.Boolean):
    """A JSON body's boolean: true or false, not the 1, 0.0 or "yes" marshmallow would also take."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class JSONInteger(fields.Integer):
    """A JSON body's integer: not 60.0 or "60"."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)


class JSONNumber(fields.Float):
    """A JSON body's number: not "0.5"."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


def JSONId(**kwargs):  # noqa: N802 - reads like a field class
    """An id in a JSON body: an integer, not "12"."""
    return JSONInteger(validate=validate.Range(min=1, max=MAX_ID), **kwargs)


# --- sites -------------------------------------------------------------------------------------------
# The rules of a site's settings live in services.sites (`check_settings`); these schemas shape the input
# and document the same numbers, so the OpenAPI document states what the server enforces.


def _documented(name: str) -> dict:
    """What the OpenAPI document says of a setting: its default and the bounds services.sites enforces."""
    doc = {}
    if name in SITE_DEFAULTS:
        doc["default"] = SITE_DEFAULTS[name]
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


SITE_DEFAULTS = default_settings()


class SiteWriteSchema(Schema):
    """The fields a client sets (every one optional on PATCH)."""

    name = Str(required=True, metadata=_documented("name"))
    url = Str(
        required=True,
        metadata={
            **_documented("url"),
            "format": "uri",
            "description": "a password in it is kept apart and masked for readers; *** as the password keeps "
            "the stored one",
        },
    )
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
            "description": "RE2 regular expressions removed before comparing (no lookarounds or backreferences)",
        },
    )
    forbidden_keywords = fields.List(
        Str(metadata=_item_length("forbidden_keywords")), metadata=_documented("forbidden_keywords")
    )
    paused = JSONBoolean(metadata=_documented("paused"))
    locations = fields.List(
        Str(metadata={"pattern": LOCATION_PATTERN, "description": LOCATION_RULE}),
        metadata={
            "default": [],
            "maxItems": MAX_LOCATIONS,
            "uniqueItems": True,
            "description": "where the site is checked from (CLOUDEYE_LOCATION of sync replicas, or a probe "
            "agent's location); empty: by any one location, once per check. A location nobody runs is "
            "allowed (and reported not alive)",
        },
    )
    quorum = JSONInteger(
        allow_none=True,
        metadata={
            "default": None,
            "minimum": 1,
            "maximum": MAX_LOCATIONS,
            "description": "how many live locations must see the site down before it is down: 1 to the "
            "number of locations; null: a majority of them (and null without locations)",
        },
    )


class SiteUpdateSchema(SiteWriteSchema):
    """PATCH body: any subset of the writable fields (used with partial=True); what it leaves out keeps its
    value, so the document gives no defaults here."""

    CHANGES_ONLY_WHAT_IS_SENT = True


# --- users and tokens --------------------------------------------------------------------------------
# The rules live in services.users (username_for, check_password); these document them.
USERNAME = {"minLength": USERNAME_LENGTH[0], "maxLength": USERNAME_LENGTH[1], "description": USERNAME_RULE}
PASSWORD = {"minLength": PASSWORD_LENGTH[0], "maxLength": PASSWORD_LENGTH[1], "description": PASSWORD_RULE}


LOCATION = {"pattern": LOCATION_PATTERN, "description": f"role probe only, and required: {LOCATION_RULE}"}


class UserCreateSchema(Schema):
    username = Str(required=True, metadata=USERNAME)
    password = Str(required=True, load_only=True, metadata=PASSWORD)
    email = fields.Email(allow_none=True, load_default=None, validate=validate.Length(max=255))
    role = fields.String(load_default="viewer", validate=validate.OneOf(ROLES))
    location = Str(allow_none=True, load_default=None, metadata=LOCATION)


class UserUpdateSchema(Schema):
    username = Str(metadata=USERNAME)
    password = Str(load_only=True, metadata=PASSWORD)
    revoke_api_tokens = JSONBoolean(
        load_only=True,
        metadata={
            "default": True,
            "description": "with a new password: revoke the user's API tokens too (their logins always end)",
        },
    )
    email = fields.Email(allow_none=True, validate=validate.Length(max=255))
    role = fields.String(validate=validate.OneOf(ROLES))
    location = Str(allow_none=True, metadata=LOCATION)
    is_active = JSONBoolean()


class PasswordChangeSchema(Schema):
    current_password = Str(
        required=True, load_only=True, metadata={"minLength": 1, "maxLength": PASSWORD["maxLength"]}
    )
    new_password = Str(required=True, load_only=True, metadata=PASSWORD)
    revoke_api_tokens = JSONBoolean(
        load_default=True,
        metadata={
            "description": "revoke the caller's API tokens too (every other login session always ends)"
        },
    )


class TokenCreateSchema(Schema):
    name = Str(required=True, validate=validate.Length(min=1, max=100))
    expires_in_days = JSONInteger(
        load_default=None, allow_none=True, validate=validate.Range(min=1, max=3650)
    )


# --- status pages ------------------------------------------------------------------------------------

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
MAX_STATUS_PAGE_SITES = 100


class StatusPageWriteSchema(Schema):
    """A public status page. Every field is optional on PATCH (partial=True)."""

    slug = Str(
        required=True,
        validate=validate.Regexp(SLUG, error="1-64 lower-case letters, digits and -, not at either end"),
    )
    title = Str(required=True, validate=validate.Length(min=1, max=200))
    description = Str(load_default=None, allow_none=True, validate=validate.Length(max=2000))
    site_ids = fields.List(JSONId(), required=True, validate=validate.Length(max=MAX_STATUS_PAGE_SITES))

    @validates("site_ids")
    def _distinct(self, value, **_):
        if len(set(value)) != len(value):
            raise ValidationError("a site may appear only once")


class StatusPageUpdateSchema(StatusPageWriteSchema):
    """PATCH body: any subset of the writable fields (used with partial=True)."""
