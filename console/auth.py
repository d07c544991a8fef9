"""Who is logged in to the console: a login token (the API's own, from `users.login`) kept in the signed,
HttpOnly session cookie and checked on every request exactly like a bearer token, so logging out,
deactivating a user or changing a password ends console sessions too."""

import functools
from urllib.parse import urlsplit

from flask import g, redirect, request, session, url_for

from services import probes, users
from services.errors import Forbidden, Unauthorized
from services.models import User

SESSION_TOKEN = "token"


def load_user() -> None:
    g.user = None
    g.token = None
    secret = session.get(SESSION_TOKEN)
    if not secret:
        return
    try:
        user, token = users.authenticate_token(secret)
        probes.check_access(user, probe_operation=False)  # a probe agent's account has no console
    except (Unauthorized, Forbidden):
        session.clear()
    else:
        g.user, g.token = user, token


def current_user() -> User:
    return g.user


def start_session(secret: str) -> None:
    session.clear()  # a fresh session (and CSRF secret) for the new login
    session[SESSION_TOKEN] = secret
    session.permanent = True


def end_session() -> None:
    if g.get("token") is not None:
        users.revoke_token(g.token)
    session.clear()


def login_required(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if g.get("user") is None:
            return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapped


def safe_next(target: str | None, default: str) -> str:
    """Only a path on this site: never another host (an open redirect) nor a scheme-relative URL."""
    if not target:
        return default
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
    ):
        return default
    return target
