from marshmallow import Schema, fields, validate

from api.common import PageArgs, Str, current_user
from services.models import PERMISSIONS, SITE_STATES
from services.schemas import SiteUpdateSchema, SiteWriteSchema  # noqa: F401 - the views take them from here
from services.sites import member_name_seen_by, url_seen_by


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
    locations = fields.List(fields.String())
    quorum = fields.Integer(allow_none=True)
    state = fields.String(dump_only=True)
    last_checked_at = fields.DateTime(dump_only=True, allow_none=True)
    next_check_at = fields.DateTime(
        dump_only=True,
        allow_none=True,
        metadata={"description": "null for a site with locations (each is in the summary's `locations`)"},
    )
    tls_expires_at = fields.DateTime(dump_only=True, allow_none=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)

    def _url(self, site) -> str:
        return url_seen_by(current_user(), site)


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
