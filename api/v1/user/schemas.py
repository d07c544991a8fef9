from marshmallow import Schema, fields, validate

from api.common import PageArgs, Str
from services.models import ROLES
from services.schemas import (  # noqa: F401 - used by the views
    PasswordChangeSchema,
    TokenCreateSchema,
    UserCreateSchema,
    UserUpdateSchema,
)


class UserSchema(Schema):
    id = fields.Integer(dump_only=True)
    username = fields.String(required=True)
    email = fields.String(allow_none=True)
    role = fields.String(required=True)
    location = fields.String(allow_none=True, metadata={"description": "a probe account's location"})
    is_active = fields.Boolean()
    created_at = fields.DateTime(dump_only=True)


class TokensRevokedSchema(Schema):
    login = fields.Integer(required=True, metadata={"description": "login sessions ended"})
    api = fields.Integer(required=True, metadata={"description": "API tokens revoked"})


class UserUpdatedSchema(UserSchema):
    tokens_revoked = fields.Nested(
        TokensRevokedSchema,
        allow_none=True,
        metadata={
            "description": "after a new password or a deactivation: the user's tokens that were revoked"
        },
    )


class PasswordChangedSchema(Schema):
    tokens_revoked = fields.Nested(TokensRevokedSchema, required=True)


class UserQueryArgs(PageArgs):
    role = fields.String(validate=validate.OneOf(ROLES))


class LoginSchema(Schema):
    username = Str(required=True, validate=validate.Length(min=1, max=64))
    password = Str(required=True, load_only=True, validate=validate.Length(min=1, max=256))


class LoginResultSchema(Schema):
    token = fields.String(required=True)
    token_type = fields.String(required=True)
    expires_at = fields.DateTime(allow_none=True)
    user = fields.Nested(UserSchema, required=True)


class TokenSchema(Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String(required=True)
    prefix = fields.String(dump_only=True, metadata={"description": "first characters, to recognise it"})
    created_at = fields.DateTime(dump_only=True)
    expires_at = fields.DateTime(dump_only=True, allow_none=True)
    last_used_at = fields.DateTime(dump_only=True, allow_none=True)


class TokenCreatedSchema(TokenSchema):
    token = fields.String(required=True, metadata={"description": "the secret; shown only this once"})
