"""Bearer-token authentication for the v1 blueprint. Views marked `@public` skip it; views marked
`@probe_operation` are the only ones a probe account may call (and only it: services/probes.py)."""

from flask import current_app, g, request

from services import probes, users
from services.errors import Unauthorized


def public(view):
    """Mark a view (function or MethodView class) as reachable without a token."""
    view._cloudeye_public = True
    return view


def probe_operation(view):
    """Mark a view as one of a remote probe agent's operations."""
    view._cloudeye_probe = True
    return view


def _marked(endpoint: str | None, mark: str) -> bool:
    view = current_app.view_functions.get(endpoint)
    target = getattr(view, "view_class", view)
    return bool(getattr(target, mark, False))


def _is_public(endpoint: str | None) -> bool:
    if endpoint is None:
        return True  # 404/405 from routing: let Flask answer it
    return _marked(endpoint, "_cloudeye_public")


def authenticate_request():
    if request.method == "OPTIONS" or _is_public(request.endpoint):
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("a bearer token is required (Authorization: Bearer <token>)")
    g.current_user, g.current_token = users.authenticate_token(secret.strip())
    probes.check_access(g.current_user, _marked(request.endpoint, "_cloudeye_probe"))
    return None
