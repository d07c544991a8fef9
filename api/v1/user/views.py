from flask.views import MethodView

from api.auth import public
from api.common import Blueprint, PageArgs, client_address, current_token, current_user, page_of, paginate
from api.v1.user.schemas import (
    LoginResultSchema,
    LoginSchema,
    PasswordChangedSchema,
    PasswordChangeSchema,
    TokenCreatedSchema,
    TokenCreateSchema,
    TokenSchema,
    UserCreateSchema,
    UserQueryArgs,
    UserSchema,
    UserUpdatedSchema,
    UserUpdateSchema,
)
from services import probes, users

blp = Blueprint("user", __name__, url_prefix="/users", description="Accounts, logins and API tokens")


@blp.route("/login", methods=["POST"])
@public
@blp.doc(security=[])
@blp.arguments(LoginSchema)
@blp.response(200, LoginResultSchema)
@blp.alt_response(401, description="wrong username or password")
@blp.alt_response(429, description="too many attempts")
def login(credentials):
    """Exchange a username and password for a bearer token"""
    user, secret, token = users.login(credentials["username"], credentials["password"], client_address())
    return {"token": secret, "token_type": "Bearer", "expires_at": token.expires_at, "user": user}


@blp.route("/logout", methods=["POST"])
@blp.response(204)
def logout():
    """Revoke the token used for this request"""
    users.revoke_token(current_token())


@blp.route("/me")
@blp.response(200, UserSchema)
def me():
    """The caller"""
    return current_user()


@blp.route("")
class Users(MethodView):
    @blp.arguments(UserQueryArgs, location="query")
    @blp.response(200, page_of(UserSchema))
    def get(self, args):
        """List users (admin)"""
        users.require_role(current_user(), "admin")
        return paginate(users.list_users(args.get("role")), args)

    @blp.arguments(UserCreateSchema)
    @blp.response(201, UserSchema)
    def post(self, data):
        """Create a user (admin)"""
        users.require_role(current_user(), "admin")
        return users.create_user(**data)


@blp.route("/<id:user_id>")
class UserById(MethodView):
    @blp.response(200, UserSchema)
    def get(self, user_id):
        """One user (admin)"""
        users.require_role(current_user(), "admin")
        return users.get_user(user_id)

    @blp.arguments(UserUpdateSchema)
    @blp.response(200, UserUpdatedSchema)
    def patch(self, changes, user_id):
        """Change a user (admin); a new password ends their sessions and, by default, their API tokens"""
        users.require_role(current_user(), "admin")
        return users.update_user(current_user(), users.get_user(user_id), changes, keep=current_token())

    @blp.response(204)
    def delete(self, user_id):
        """Delete a user (admin); a user who still owns sites cannot be deleted"""
        users.require_role(current_user(), "admin")
        users.delete_user(current_user(), users.get_user(user_id))


@blp.route("/me/password", methods=["POST"])
@blp.arguments(PasswordChangeSchema)
@blp.response(200, PasswordChangedSchema)
@blp.alt_response(429, description="too many wrong current passwords from this address")
def change_password(data):
    """Change the caller's own password (the current one is required); every other session ends, and the
    API tokens too unless revoke_api_tokens is false"""
    revoked = users.change_own_password(
        current_user(),
        data["current_password"],
        data["new_password"],
        current_token(),
        client=client_address(),
        revoke_api_tokens=data["revoke_api_tokens"],
    )
    return {"tokens_revoked": revoked}


@blp.route("/me/tokens")
class MyTokens(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_of(TokenSchema))
    def get(self, args):
        """The caller's API tokens (never their secrets)"""
        return paginate(users.list_api_tokens(current_user()), args)

    @blp.arguments(TokenCreateSchema)
    @blp.response(201, TokenCreatedSchema)
    def post(self, data):
        """Create an API token; the secret is in this answer only"""
        secret, token = users.create_api_token(current_user(), data["name"], data["expires_in_days"])
        token.token = secret  # transient: only this answer carries the secret
        return token


@blp.route("/<id:user_id>/tokens", methods=["POST"])
@blp.arguments(TokenCreateSchema)
@blp.response(201, TokenCreatedSchema)
def create_probe_token(data, user_id):
    """Create the API token of a probe account, for its agent (admin; the secret is in this answer only)"""
    secret, token = probes.issue_token(current_user(), user_id, data["name"], data["expires_in_days"])
    token.token = secret  # transient: only this answer carries the secret
    return token


@blp.route("/me/tokens/<id:token_id>", methods=["DELETE"])
@blp.response(204)
def delete_token(token_id):
    """Revoke one of the caller's API tokens"""
    users.revoke_api_token(current_user(), token_id)
