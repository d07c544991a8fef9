"""The bodies a client writes, validated in one place for every way in: the API (`api/v1`) loads its JSON
through them and the console (`console/`) its forms, so both give the same field-level messages.

Domain rules that need the database (visibility, uniqueness, transitions) stay in the service modules;
what is here checks the shape and range of each field.
"""

import re

from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from services.models import ROLES
from services.sites import parse_status_ranges
from services.tamper_detect import compile_ignore_pattern

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
    return fields.Integer(strict=False, validate=validate.Range(min=1, max=MAX_ID), **kwargs)


# --- sites -------------------------------------------------------------------------------------------


def _regex_list(patterns):
    for pattern in patterns:
        try:
            compile_ignore_pattern(pattern)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc


class SiteWriteSchema(Schema):
    """The fields a client sets. Every one is optional on PATCH (partial=True)."""

    name = Str(required=True, validate=validate.Length(min=1, max=200))
    url = Str(
        required=True,
        validate=[
            validate.Length(max=2048),
            validate.URL(schemes={"http", "https"}, require_tld=False, error="must be an http(s) URL"),
        ],
    )
    check_interval_s = fields.Integer(load_default=60, validate=validate.Range(min=10, max=86400))
    timeout_s = fields.Integer(load_default=10, validate=validate.Range(min=1, max=120))
    accepted_status = Str(load_default="200-399", validate=validate.Length(min=3, max=100))
    keyword = Str(load_default=None, allow_none=True, validate=validate.Length(min=1, max=255))
    keyword_absent = fields.Boolean(load_default=False)
    max_retries = fields.Integer(load_default=0, validate=validate.Range(min=0, max=20))
    tamper_enabled = fields.Boolean(load_default=False)
    tamper_threshold = fields.Float(load_default=0.05, validate=validate.Range(min=0, max=1))
    tamper_ignore = fields.List(
        Str(validate=validate.Length(min=1, max=500)), load_default=list, validate=validate.Length(max=50)
    )
    forbidden_keywords = fields.List(
        Str(validate=validate.Length(min=1, max=200)), load_default=list, validate=validate.Length(max=100)
    )
    paused = fields.Boolean(load_default=False)

    @validates("accepted_status")
    def _accepted_status(self, value, **_):
        try:
            parse_status_ranges(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc

    @validates("tamper_ignore")
    def _tamper_ignore(self, value, **_):
        _regex_list(value)

    @validates_schema
    def _timeout_within_interval(self, data, partial=None, **_):
        timeout, interval = data.get("timeout_s"), data.get("check_interval_s")
        if timeout is not None and interval is not None and timeout > interval:
            raise ValidationError("must not exceed check_interval_s", field_name="timeout_s")


class SiteUpdateSchema(SiteWriteSchema):
    """PATCH body: any subset of the writable fields (used with partial=True)."""


# --- users and tokens --------------------------------------------------------------------------------

USERNAME = validate.Regexp(r"^[A-Za-z0-9_.@-]{3,64}$", error="3-64 letters, digits or _ . @ -")
PASSWORD = validate.Length(min=8, max=256)


class UserCreateSchema(Schema):
    username = Str(required=True, validate=USERNAME)
    password = Str(required=True, load_only=True, validate=PASSWORD)
    email = fields.Email(allow_none=True, load_default=None, validate=validate.Length(max=255))
    role = fields.String(load_default="viewer", validate=validate.OneOf(ROLES))


class UserUpdateSchema(Schema):
    username = Str(validate=USERNAME)
    password = Str(load_only=True, validate=PASSWORD)
    email = fields.Email(allow_none=True, validate=validate.Length(max=255))
    role = fields.String(validate=validate.OneOf(ROLES))
    is_active = fields.Boolean()


class TokenCreateSchema(Schema):
    name = Str(required=True, validate=validate.Length(min=1, max=100))
    expires_in_days = fields.Integer(
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
    site_ids = fields.List(Id(), required=True, validate=validate.Length(max=MAX_STATUS_PAGE_SITES))

    @validates("site_ids")
    def _distinct(self, value, **_):
        if len(set(value)) != len(value):
            raise ValidationError("a site may appear only once")


class StatusPageUpdateSchema(StatusPageWriteSchema):
    """PATCH body: any subset of the writable fields (used with partial=True)."""
