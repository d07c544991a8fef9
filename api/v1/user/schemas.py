from marshmallow import Schema, fields, validate

from api.common import JSONBoolean, JSONInteger, PageArgs, Str
from services.models import ROLES
from services.users import PASSWORD_LENGTH, PASSWORD_RULE, USERNAME_LENGTH, USERNAME_RULE

# The rules live in services.users (username_for, check_password); these document them.
USERNAME = {"minLength": USERNAME_LENGTH[0], "maxLength": USERNAME_LENGTH[1], "description": USERNAME_RULE}
PASSWORD = {"minLength": PASSWORD_LENGTH[0], "maxLength": PASSWORD_LENGTH[1], "description": PASSWORD_RULE}


class UserSchema(Schema):
    id = fields.Integer(dump_only=True)
    username = fields.String(required=True)
    email = fields.String(allow_none=True)
    role = fields.String(required=True)
    is_active = fields.Boolean()
    created_at = fields.DateTime(dump_only=True)


class UserCreateSchema(Schema):
    username = Str(required=True, metadata=USERNAME)
    password = Str(required=True, load_only=True, metadata=PASSWORD)
    email = fields.Email(allow_none=True, load_default=None, validate=validate.Length(max=255))
    role = fields.String(load_default="viewer", validate=validate.OneOf(ROLES))


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
    is_active = JSONBoolean()


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


class TokenCreateSchema(Schema):
    name = Str(required=True, validate=validate.Length(min=1, max=100))
    expires_in_days = JSONInteger(
        load_default=None, allow_none=True, validate=validate.Range(min=1, max=3650)
    )


class TokenCreatedSchema(TokenSchema):
    token = fields.String(required=True, metadata={"description": "the secret; shown only this once"})
