"""The console blueprint: hooks shared by every page (who is logged in, CSRF on every POST, the page's
policy and cache headers) and HTML error pages. The pages themselves are in the modules imported at the
end."""

import logging

import sqlalchemy as sa
from flask import Blueprint, g, render_template, request
from werkzeug.exceptions import HTTPException

from console import CONTENT_SECURITY_POLICY, csrf
from console.auth import load_user
from services.errors import DomainError, TooManyRequests

log = logging.getLogger(__name__)

bp = Blueprint(
    "console",
    __name__,
    template_folder="../templates",
    static_folder="../static",
    static_url_path="/assets",
)

# Pages that read nothing of a user: no session lookup (a burst of visitors never reaches the database).
PUBLIC_ENDPOINTS = {"console.static", "console.public_status", "console.badge"}
ASSET_MAX_AGE = 365 * 86400


@bp.before_request
def _before():
    if request.method == "POST":
        csrf.protect()  # 400 when the token is missing or wrong
    if request.endpoint in PUBLIC_ENDPOINTS:
        g.user = None
        return
    load_user()


@bp.after_request
def _headers(response):
    """What is the console's own: the policy of an HTML page (not the app's default one, made for JSON)
    and what caches may keep. It runs before the app's hook (api/headers.py), which adds the other
    security headers and `Cache-Control: no-store` to whatever has no Cache-Control yet; a view may set
    its own of either (the public pages and the badge do)."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    if request.endpoint == "console.static" and request.args.get("v"):
        # a fingerprinted URL (console.filters.asset): it never changes
        headers["Cache-Control"] = f"public, max-age={ASSET_MAX_AGE}, immutable"
    elif request.endpoint not in PUBLIC_ENDPOINTS:
        headers["Cache-Control"] = "no-store"  # pages of a logged-in user stay out of shared caches
    return response


def error_page(status: int, message: str, headers=None):
    response = render_template("console/error.html", status=status, message=message)
    return response, status, headers or {}


@bp.errorhandler(DomainError)
def _domain_error(error: DomainError):
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, TooManyRequests) else {}
    return error_page(error.status, error.message, headers)


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException):
    return error_page(error.code or 500, error.description or error.name)


@bp.errorhandler(sa.exc.OperationalError)
@bp.errorhandler(sa.exc.InterfaceError)
def _database_unavailable(error):
    log.error("database unavailable: %s", str(error).splitlines()[0][:300])
    _rollback()
    return error_page(503, "the database is unavailable, try again shortly", {"Retry-After": "5"})


@bp.errorhandler(Exception)
def _unexpected(error: Exception):
    log.exception("unhandled error")
    _rollback()
    return error_page(500, "an unexpected error occurred; it has been logged")


def _rollback():
    from services.extensions import db

    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the connection may be gone; the pool replaces it
        log.debug("rollback after an error failed", exc_info=True)


from console.views import alerts, auth, pages, people, publishing  # noqa: E402, F401 - registers the routes
