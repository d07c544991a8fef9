"""Users, logins and tokens: the rules and the commit boundary."""

import functools
import logging
import re
import unicodedata
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
# A username is stored normalised (NFKC, case-folded, stripped): "Admin", "ａｄｍｉｎ" and " admin" are one
# name, and only its normal form may contain these characters.
USERNAME_LENGTH = (3, 64)
USERNAME_RULE = "3-64 letters, digits or _ . @ -, stored in lower case"
PASSWORD_LENGTH = (8, 256)
_USERNAME = re.compile(r"[a-z0-9_.@-]{3,64}")


def normalise_username(username: str) -> str:
    return unicodedata.normalize("NFKC", username).casefold().strip()


def username_for(username: str) -> str:
    """The stored form of `username`, or Invalid when it breaks the rules."""
    shortest, longest = USERNAME_LENGTH
    if isinstance(username, str) and shortest <= len(username) <= longest:
        name = normalise_username(username)
        if _USERNAME.fullmatch(name):
            return name
    raise Invalid(f"username: {USERNAME_RULE}", errors={"username": [USERNAME_RULE]})


def _refuse_taken(name: str, user_id: int | None = None) -> None:
    """Refuse a name the database already holds, compared with its collation (on MySQL case-, accent- and
    width-insensitive, trailing spaces ignored): the lookup of a login could not tell the two apart."""
    query = sa.select(User.id).where(User.username == name)
    if user_id is not None:
        query = query.where(User.id != user_id)
    if db.session.scalar(query) is not None:
        raise Conflict(f"username {name!r} is taken", errors={"username": ["already taken"]})


PASSWORD_RULE = (
    "8 to 256 characters, at least 4 different ones, not one of the most common passwords, not containing "
    "the username"
)


@functools.cache
def _common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords of zxcvbn's list (from leaked password sets; MIT licence)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def check_password(password: str, username: str | None = None, field: str = "password") -> None:
    """Invalid (with the reason, under `field`: the name the caller sent it as) unless `password` is long
    enough, not made of a handful of characters, not among the most common passwords and does not contain
    `username`."""
    shortest, longest = PASSWORD_LENGTH
    if not isinstance(password, str) or not (shortest <= len(password) <= longest):
        reason = f"must be {shortest} to {longest} characters long"
    elif len(set(password)) < 4:
        reason = "uses too few different characters"
    elif password.casefold() in _common_passwords() or password.strip().casefold() in _common_passwords():
        reason = "is one of the most common passwords"
    elif username and len(username) >= 3 and normalise_username(username) in password.casefold():
        reason = "must not contain the username"
    else:
        return
    raise Invalid(f"the password {reason}", errors={field: [reason]})


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
    username = username_for(username)
    check_password(password, username)
    check_location(role, location)
    _refuse_taken(username)
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


def update_user(actor: User, user: User, changes: dict, keep: ApiToken | None = None) -> User:
    """An admin's change of a user. A new password ends the user's login sessions and, unless
    `revoke_api_tokens` is false, their API tokens too; a deactivation ends both (`keep`, the token of
    the request, goes on working). What was revoked is in `user.tokens_revoked` ({"login": n, "api": m})
    for the answer, None when nothing was."""
    if "username" in changes:
        name = username_for(changes["username"])
        if name != user.username:
            _refuse_taken(name, user_id=user.id)
            user.username = name
    if "password" in changes:
        check_password(changes["password"], user.username)
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
    revoked = None
    if changes.get("is_active") is False:
        revoked = _revoke_tokens(user, api=True)
    if "password" in changes:
        user.password_hash = hash_password(changes["password"])
        more = _revoke_tokens(user, api=changes.get("revoke_api_tokens", True), keep=keep)
        revoked = more if revoked is None else {kind: revoked[kind] + more[kind] for kind in more}
    user.tokens_revoked = revoked
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


def _revoke_tokens(user: User, api: bool, keep: ApiToken | None = None) -> dict[str, int]:
    """Revoke the user's login tokens, and their API tokens when `api`, except `keep` (the token of the
    request that asked). Returns how many of each kind."""
    revoked = {}
    for kind in ("login", "api"):
        if kind == "api" and not api:
            revoked[kind] = 0
            continue
        query = sa.update(ApiToken).where(
            ApiToken.user_id == user.id, ApiToken.kind == kind, ApiToken.revoked_at.is_(None)
        )
        if keep is not None:
            query = query.where(ApiToken.id != keep.id)
        revoked[kind] = db.session.execute(query.values(revoked_at=_now())).rowcount
    return revoked


def change_own_password(
    user: User,
    current_password: str,
    new_password: str,
    token: ApiToken,
    client: str = "-",
    revoke_api_tokens: bool = True,
) -> dict[str, int]:
    """The caller's own password change: the current password is required (a failure counts against the
    client like a failed login). Every other login session ends, and the API tokens too unless
    `revoke_api_tokens` is false; the token of this request goes on working. Returns what was revoked."""
    _refuse_failing_client(client)
    if not verify_password(user.password_hash, current_password):
        _count_failure(client)
        raise Invalid("the current password is wrong", errors={"current_password": ["wrong password"]})
    check_password(new_password, user.username, field="new_password")
    user.password_hash = hash_password(new_password)
    revoked = _revoke_tokens(user, api=revoke_api_tokens, keep=token)
    db.session.commit()
    log.info("user %s changed their password; revoked %s", user.id, revoked)
    return revoked


def _count(key: str, window: int) -> tuple[int, int] | None:
    """Add one to the counter `key` of a `window`-second window: (count, seconds left), or None when the
    cache is unavailable (Redis down must not lock everyone out; nginx still limits the rate)."""
    try:
        count = cache.store.incr(key)
        left = cache.store.ttl(key)
        if left is None or left < 0:
            # The first hit of a window (or one whose expiry was lost between INCR and EXPIRE, which
            # would otherwise lock the client out for good).
            cache.store.expire(key, window)
            left = window
    except Exception as exc:
        log.warning("login rate limiter unavailable: %s", exc)
        return None
    return count, left


def _refuse_failing_client(client: str) -> None:
    """TooManyRequests once `client` failed LOGIN_FAILURE_LIMIT password checks within the window."""
    key = cache.key("login-failures", client)
    try:
        failures, left = int(cache.store.get(key) or 0), cache.store.ttl(key)
    except Exception as exc:
        log.warning("login rate limiter unavailable: %s", exc)
        return
    if failures >= current_app.config["LOGIN_FAILURE_LIMIT"]:
        raise TooManyRequests(
            "too many failed password checks from this address, try again later",
            retry_after=max(1, left or 1),
        )


def _count_failure(client: str) -> None:
    _count(cache.key("login-failures", client), current_app.config["LOGIN_FAILURE_WINDOW_S"])


def login(username: str, password: str, client: str = "-") -> tuple[User, str, ApiToken]:
    """A login token for `username`, with two limits:
    - LOGIN_RATE_LIMIT attempts per LOGIN_RATE_WINDOW_S per client and *account*: the name is resolved
      first, so spellings the database takes for the same account ("admin ", "ädmin", "ＡＤＭＩＮ" on
      MySQL's collation) share one budget;
    - LOGIN_FAILURE_LIMIT failed logins per LOGIN_FAILURE_WINDOW_S per client, whatever the names tried.
    Only the stored (normalised) name logs in: a variant the collation matches counts, but fails."""
    config = current_app.config
    name = normalise_username(username)
    user = db.session.scalar(sa.select(User).where(User.username == name))
    account = f"user:{user.id}" if user is not None else f"name:{name[:64]}"
    _refuse_failing_client(client)
    attempts = _count(cache.key("login", client, account), config["LOGIN_RATE_WINDOW_S"])
    if attempts is not None and attempts[0] > config["LOGIN_RATE_LIMIT"]:
        raise TooManyRequests("too many login attempts, try again later", retry_after=max(1, attempts[1]))
    exact = user if user is not None and user.username == name else None
    if not verify_password(exact.password_hash if exact else None, password) or not exact.is_active:
        _count_failure(client)
        log.info("login failed for username=%r from %s", username[:64], client)
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
    existing = db.session.scalar(sa.select(User).where(User.username == normalise_username(username)))
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
