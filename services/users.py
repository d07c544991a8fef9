"""Users, logins and tokens: the rules and the commit boundary."""

import logging
import re
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import joinedload

from services.cache import cache
from services.errors import Conflict, Forbidden, Invalid, NotFound, TooManyRequests, Unauthorized
from services.extensions import db
from services.models import ApiToken, User
from services.security import hash_password, hash_token, new_token, password_needs_rehash, verify_password

log = logging.getLogger(__name__)
LAST_USED_RESOLUTION = timedelta(seconds=60)  # don't write on every request
# The rules of usernames and passwords. The API schema documents the same (api/v1/user/schemas.py).
USERNAME_PATTERN = r"^[A-Za-z0-9_.@-]{3,64}$"
USERNAME_RULE = "3-64 letters, digits or _ . @ -"
PASSWORD_LENGTH = (8, 256)
_USERNAME = re.compile(USERNAME_PATTERN)


def check_username(username: str) -> None:
    if not isinstance(username, str) or not _USERNAME.match(username):
        raise Invalid(f"username: {USERNAME_RULE}", errors={"username": [USERNAME_RULE]})


def check_password(password: str) -> None:
    shortest, longest = PASSWORD_LENGTH
    if not isinstance(password, str) or not (shortest <= len(password) <= longest):
        message = f"{shortest} to {longest} characters"
        raise Invalid(f"password: {message}", errors={"password": [message]})


def _now() -> datetime:
    return datetime.now(UTC)


def get_user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


def list_users(role: str | None = None):
    query = sa.select(User).order_by(User.id)
    if role:
        query = query.where(User.role == role)
    return query


def check_location(role: str, location: str | None) -> None:
    """A probe account (role probe) runs at one location, named here; no other account has one."""
    from services.locations import check_name

    if role == "probe":
        if location is None:
            raise Invalid(
                "a probe account needs its location", errors={"location": ["required for role probe"]}
            )
        check_name(location)
    elif location is not None:
        raise Invalid("only a probe account has a location", errors={"location": ["only for role probe"]})


def create_user(
    username: str, password: str, role: str = "viewer", email: str | None = None, location: str | None = None
) -> User:
    check_username(username)
    check_password(password)
    check_location(role, location)
    if db.session.scalar(sa.select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"username {username!r} is taken", errors={"username": ["already taken"]})
    user = User(
        username=username, password_hash=hash_password(password), role=role, email=email, location=location
    )
    db.session.add(user)
    try:
        db.session.commit()
    except sa.exc.IntegrityError as exc:
        db.session.rollback()
        raise Conflict(f"username {username!r} is taken", errors={"username": ["already taken"]}) from exc
    log.info("user created: id=%s username=%s role=%s", user.id, username, role)
    return user


def update_user(actor: User, user: User, changes: dict) -> User:
    if "username" in changes:
        check_username(changes["username"])
    if "password" in changes:
        check_password(changes["password"])
    if "username" in changes and changes["username"] != user.username:
        # The user themselves does not count: on MySQL's case-insensitive collation "alice" -> "Alice"
        # finds "alice" and is not a clash.
        taken = db.session.scalar(
            sa.select(User.id).where(User.username == changes["username"], User.id != user.id)
        )
        if taken is not None:
            raise Conflict("username is taken", errors={"username": ["already taken"]})
        user.username = changes["username"]
    if "email" in changes:
        user.email = changes["email"]
    if "role" in changes and changes["role"] != user.role:
        if user.id == actor.id:
            raise Invalid("you cannot change your own role", errors={"role": ["cannot change own role"]})
        user.role = changes["role"]
    if "role" in changes or "location" in changes:
        # Leaving role probe drops the location unless one is given (which check_location refuses).
        location = changes.get("location", user.location if user.role == "probe" else None)
        check_location(user.role, location)
        user.location = location
    if "is_active" in changes:
        if user.id == actor.id and not changes["is_active"]:
            raise Invalid("you cannot deactivate yourself", errors={"is_active": ["cannot deactivate self"]})
        user.is_active = changes["is_active"]
        if not user.is_active:
            _revoke_all_tokens(user)
    if "password" in changes:
        user.password_hash = hash_password(changes["password"])
        _revoke_all_tokens(user, kind="login")
    try:
        db.session.commit()
    except sa.exc.IntegrityError as exc:  # the same username taken meanwhile by another request
        db.session.rollback()
        raise Conflict("username is taken", errors={"username": ["already taken"]}) from exc
    return user


def delete_user(actor: User, user: User) -> None:
    if user.id == actor.id:
        raise Invalid("you cannot delete yourself")
    from services.models import Site

    if db.session.scalar(sa.select(sa.func.count()).select_from(Site).where(Site.owner_id == user.id)):
        raise Conflict("the user still owns sites; delete or hand them over first")
    db.session.delete(user)
    db.session.commit()


def _revoke_all_tokens(user: User, kind: str | None = None) -> None:
    query = sa.update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    if kind:
        query = query.where(ApiToken.kind == kind)
    db.session.execute(query.values(revoked_at=_now()))


def check_login_rate(client: str, username: str) -> None:
    """Raise TooManyRequests after LOGIN_RATE_LIMIT attempts per window per client and username."""
    limit = current_app.config["LOGIN_RATE_LIMIT"]
    window = current_app.config["LOGIN_RATE_WINDOW_S"]
    key = cache.key("login", client, username.lower()[:64])
    try:
        attempts = cache.store.incr(key)
        retry_after = cache.store.ttl(key)
        if retry_after is None or retry_after < 0:
            # The first attempt of a window (or one whose expiry was lost between INCR and EXPIRE,
            # which would otherwise lock the client and username out for good).
            cache.store.expire(key, window)
            retry_after = window
    except Exception as exc:  # Redis down must not lock everyone out; nginx still limits the rate
        log.warning("login rate limiter unavailable: %s", exc)
        return
    if attempts > limit:
        raise TooManyRequests("too many login attempts, try again later", retry_after=max(1, retry_after))


def login(username: str, password: str) -> tuple[User, str, ApiToken]:
    user = db.session.scalar(sa.select(User).where(User.username == username))
    if not verify_password(user.password_hash if user else None, password) or not user.is_active:
        log.info("login failed for username=%s", username[:64])
        raise Unauthorized("invalid username or password")
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    ttl = current_app.config["LOGIN_TOKEN_TTL_S"]
    secret, token = _issue_token(user, kind="login", name="login", expires_at=_now() + timedelta(seconds=ttl))
    db.session.commit()
    log.info("login: user id=%s", user.id)
    return user, secret, token


def _issue_token(user: User, kind: str, name: str, expires_at: datetime | None) -> tuple[str, ApiToken]:
    secret = new_token()
    token = ApiToken(
        user_id=user.id,
        kind=kind,
        name=name,
        token_hash=hash_token(secret),
        prefix=secret[:10],
        expires_at=expires_at,
    )
    db.session.add(token)
    return secret, token


def create_api_token(user: User, name: str, expires_in_days: int | None) -> tuple[str, ApiToken]:
    expires_at = _now() + timedelta(days=expires_in_days) if expires_in_days else None
    secret, token = _issue_token(user, kind="api", name=name, expires_at=expires_at)
    db.session.commit()
    return secret, token


def list_api_tokens(user: User):
    return (
        sa.select(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.kind == "api", ApiToken.revoked_at.is_(None))
        .order_by(ApiToken.id.desc())
    )


def revoke_api_token(user: User, token_id: int) -> None:
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id or token.kind != "api" or token.revoked_at is not None:
        raise NotFound(f"token {token_id} not found")
    token.revoked_at = _now()
    db.session.commit()


def revoke_token(token: ApiToken) -> None:
    token.revoked_at = _now()
    db.session.commit()


def authenticate_token(secret: str) -> tuple[User, ApiToken]:
    """The user behind a bearer secret, or Unauthorized. Touches last_used_at at most once a minute."""
    token = db.session.scalar(
        sa.select(ApiToken)
        .options(joinedload(ApiToken.user))
        .where(ApiToken.token_hash == hash_token(secret))
    )
    now = _now()
    if token is None or token.revoked_at is not None:
        raise Unauthorized("invalid or revoked token")
    if token.expires_at is not None and token.expires_at <= now:
        raise Unauthorized("token expired")
    user = token.user
    if not user.is_active:
        raise Unauthorized("user is deactivated")
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        token.last_used_at = now
        db.session.commit()
    return user, token


def require_role(user: User, *roles: str) -> None:
    if user.role not in roles:
        raise Forbidden(f"this needs the role {' or '.join(roles)}")


def bootstrap_admin(username: str | None, password: str | None, email: str | None = None) -> User | None:
    """Create the first admin from the environment if that username does not exist yet."""
    if not username or not password:
        return None
    existing = db.session.scalar(sa.select(User).where(User.username == username))
    if existing is not None:
        return None
    user = create_user(username, password, role="admin", email=email)
    log.info("bootstrap: admin %r created", username)
    return user


def delete_dead_tokens(grace: timedelta = timedelta(days=1)) -> int:
    """Delete tokens nobody can use or see again: login tokens expired or revoked, and API tokens revoked,
    more than `grace` ago (one row a login would otherwise pile up for good). Expired API tokens stay
    listed for their owner until revoked."""
    cutoff = _now() - grace
    result = db.session.execute(
        sa.delete(ApiToken).where(
            sa.or_(
                ApiToken.revoked_at < cutoff,
                sa.and_(ApiToken.kind == "login", ApiToken.expires_at < cutoff),
            )
        )
    )
    db.session.commit()
    return result.rowcount
