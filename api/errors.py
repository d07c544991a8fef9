"""One JSON error shape for everything that leaves the API:
{"status": <code>, "title": <reason>, "message": <what went wrong>, "errors": {<field>: [...]}}.
"""

import contextlib
import logging
from http import HTTPStatus

import sqlalchemy as sa
from apispec import BasePlugin
from flask import g, jsonify
from marshmallow import Schema, fields
from werkzeug.exceptions import HTTPException

from services.errors import DomainError, TooManyRequests

log = logging.getLogger(__name__)


class ErrorSchema(Schema):
    """The body of every error answer (documentation only: `error_response` builds it)."""

    status = fields.Integer(required=True, metadata={"description": "the HTTP status code"})
    title = fields.String(required=True, metadata={"description": "the HTTP reason phrase"})
    message = fields.String(metadata={"description": "what went wrong"})
    errors = fields.Dict(
        metadata={"description": "field-level errors: {field: [messages]} (by location when several)"}
    )
    request_id = fields.String(metadata={"description": "the X-Request-ID of the request, for the logs"})


WRITE_METHODS = ("post", "put", "patch", "delete")
WEBARGS_LOCATIONS = {"json", "query", "form", "files", "path", "headers"}


class ErrorResponsesPlugin(BasePlugin):
    """Documents, on every operation, the error answers the shared layers give whatever the view:
    400 malformed body, 401/403 for authenticated operations, 404 where an id is looked up,
    422 for writes (domain rules), 503 when the database is down. A view's own docs win."""

    def operation_helper(self, path=None, operations=None, **kwargs):
        for method, operation in (operations or {}).items():
            if method not in ("get", *WRITE_METHODS) or not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            params = operation.get("parameters", [])
            wanted = ["SERVICE_UNAVAILABLE"]
            if operation.get("requestBody"):
                wanted.append("BAD_REQUEST")
            if operation.get("security") != []:  # public operations say security: []
                wanted += ["UNAUTHORIZED", "FORBIDDEN"]
                looks_up_id = (
                    "{" in (path or "")
                    or any(
                        isinstance(p, dict) and p.get("in") == "query" and str(p.get("name")).endswith("_id")
                        for p in params
                    )
                    or any(name.endswith("_id") for name in _inline_body_fields(operation))
                )
                if looks_up_id:
                    wanted.append("NOT_FOUND")
                if method in WRITE_METHODS:
                    wanted.append("UNPROCESSABLE_ENTITY")
            documented = {str(code) for code in responses}  # views use int or str keys
            for name in wanted:
                code = str(HTTPStatus[name].value)
                if code not in documented:
                    responses[code] = name


def _inline_body_fields(operation: dict) -> list[str]:
    """Field names of request bodies described inline (not by reference), e.g. multipart forms."""
    names = []
    for media in operation.get("requestBody", {}).get("content", {}).values():
        schema = media.get("schema") if isinstance(media, dict) else None
        if isinstance(schema, dict):
            names.extend(schema.get("properties", {}))
    return names


def error_response(status: int, title: str, message: str | None = None, errors=None, headers=None):
    body = {"status": status, "title": title}
    if message:
        body["message"] = message
    if errors:
        body["errors"] = _string_keys(errors)
    request_id = getattr(g, "request_id", None)
    if request_id:
        body["request_id"] = request_id
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _string_keys(errors):
    """JSON keys are strings; marshmallow keys list items by index ({1: [...], "_schema": [...]})."""
    if isinstance(errors, dict):
        return {str(key): _string_keys(value) for key, value in errors.items()}
    if isinstance(errors, list | tuple):
        return [_string_keys(value) for value in errors]
    return errors


def handle_http_exception(error: HTTPException):
    data = getattr(error, "data", None) or {}
    errors = data.get("errors") or data.get("messages")
    if isinstance(errors, dict) and len(errors) == 1 and set(errors) <= WEBARGS_LOCATIONS:
        # webargs nests errors by location; a single location of field errors is flattened for
        # readability. A bare message list (e.g. {"json": ["Invalid JSON body."]}) keeps its location.
        inner = next(iter(errors.values()))
        errors = inner if isinstance(inner, dict) else errors
    message = data.get("message") or error.description
    if error.code == 422 and not data.get("message"):
        message = "the request did not pass validation"
    # The exception's own headers (e.g. Allow on a 405) except its HTML content type.
    headers = {name: value for name, value in error.get_headers() if name.lower() != "content-type"}
    headers.update(data.get("headers") or {})
    return error_response(error.code or 500, error.name, message, errors, headers)


def handle_domain_error(error: DomainError):
    headers = {}
    if isinstance(error, TooManyRequests):
        headers["Retry-After"] = str(error.retry_after)
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="cloudeye"'
    return error_response(error.status, error.title, error.message, error.errors, headers)


def handle_database_unavailable(error: sa.exc.OperationalError | sa.exc.InterfaceError):
    log.error("database unavailable: %s", str(error).splitlines()[0][:300])
    _reset_session()
    return error_response(
        503,
        "Service Unavailable",
        "the database is unavailable, try again shortly",
        headers={"Retry-After": "5"},
    )


def _database_went_away(error: Exception) -> bool:
    """A statement that failed because the connection was lost (SQLAlchemy invalidated it), or a session
    left unusable by such a loss earlier in the request: the database is away, not the code wrong."""
    if isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, sa.exc.PendingRollbackError)


def handle_unexpected(error: Exception):
    if _database_went_away(error):
        return handle_database_unavailable(error)
    log.exception("unhandled error")
    _reset_session()
    return error_response(500, "Internal Server Error", "an unexpected error occurred; it has been logged")


def _reset_session():
    from services.extensions import db

    with contextlib.suppress(Exception):  # the connection may be gone; the pool replaces it
        db.session.rollback()


def init_app(app):
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(sa.exc.OperationalError, handle_database_unavailable)
    app.register_error_handler(sa.exc.InterfaceError, handle_database_unavailable)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
