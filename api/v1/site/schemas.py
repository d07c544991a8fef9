from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from api.common import Id, PageArgs, Str
from services.models import PERMISSIONS, SITE_STATES
from services.sites import parse_status_ranges
from services.tamper_detect import compile_ignore_pattern


def _regex_list(patterns):
    for pattern in patterns:
        try:
            compile_ignore_pattern(pattern)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc


class SiteSchema(Schema):
    id = fields.Integer(dump_only=True)
    owner_id = fields.Integer(dump_only=True)
    name = fields.String()
    url = fields.String()
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


class SiteQueryArgs(PageArgs):
    q = Str(validate=validate.Length(min=1, max=200))
    state = fields.String(validate=validate.OneOf(SITE_STATES))


class MemberSchema(Schema):
    site_id = fields.Integer(dump_only=True)
    user_id = fields.Integer(dump_only=True)
    username = fields.Function(lambda member: member.user.username, dump_only=True)
    permission = fields.String(required=True)
    created_at = fields.DateTime(dump_only=True)


class MemberWriteSchema(Schema):
    permission = fields.String(required=True, validate=validate.OneOf(PERMISSIONS))


class CheckRequestedSchema(Schema):
    site_id = fields.Integer(required=True)
    requested_at = fields.DateTime(required=True)
    message = fields.String(required=True)


class SiteIdArgs(Schema):
    site_id = Id(required=True)
