"""Pieces every resource uses: the blueprint class, safe JSON and fields, paging, the current user."""

import ipaddress
import json
from datetime import UTC, datetime

import flask_smorest
import sqlalchemy as sa
from apispec import BasePlugin
from flask import current_app, g, request
from flask.json.provider import DefaultJSONProvider
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from webargs import core as webargs_core
from webargs.flaskparser import FlaskParser
from werkzeug.routing import BaseConverter

from services.extensions import db

MAX_ID = 2**63 - 1
MAX_PER_PAGE = 100
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, tzinfo=UTC)


def parse_json(data: str | bytes):
    """json.loads that treats nesting deeper than the parser's recursion limit as malformed JSON (400), not
    as a server error: `{"username": [[[[...]]]]}` must not cost more than a wrong bracket."""
    try:
        return webargs_core.parse_json(data)
    except RecursionError:
        raise json.JSONDecodeError("the JSON is nested too deeply", "<request body>", 0) from None


class JSONBodyParser(FlaskParser):
    def _raw_load_json(self, req):
        if not webargs_core.is_json(req.mimetype):
            return webargs_core.missing
        return parse_json(req.get_data(cache=True))


class JSONProvider(DefaultJSONProvider):
    """The app's JSON (request.get_json): a body nested too deeply is a ValueError, which Flask answers
    with 400."""

    def loads(self, s, **kwargs):
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("the JSON is nested too deeply") from None


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint with cloudeye's body parser; every resource uses it."""

    ARGUMENTS_PARSER = JSONBodyParser()


class IdConverter(BaseConverter):
    """A positive 63-bit integer in a path; anything else is a 404 before the view runs."""

    regex = r"[1-9][0-9]{0,18}"

    def to_python(self, value):
        number = int(value)
        if number > MAX_ID:
            from werkzeug.routing import ValidationError as RoutingValidationError

            raise RoutingValidationError()
        return number

    def to_url(self, value):
        return str(value)


class Str(fields.String):
    """A string the database can store: no lone surrogates or NUL characters."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise ValidationError("must not contain NUL characters")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValidationError("must be valid Unicode text") from exc
        return text


class UTCDate(fields.DateTime):
    """An ISO 8601 time; a naive value is taken as UTC. Kept within 1970..9999."""

    def _deserialize(self, value, attr, data, **kwargs):
        parsed = super()._deserialize(value, attr, data, **kwargs)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        if not (EARLIEST <= parsed <= LATEST):
            raise ValidationError("must be between 1970 and 9999")
        return parsed.astimezone(UTC)


class JSONBoolean(fields.Boolean):
    """A JSON body's boolean: true or false, not the 1, 0.0 or "yes" marshmallow would also take."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class JSONInteger(fields.Integer):
    """A JSON body's integer: not 60.0 or "60"."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)


class JSONNumber(fields.Float):
    """A JSON body's number: not "0.5"."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


def Id(**kwargs):  # noqa: N802 - reads like a field class
    return fields.Integer(strict=False, validate=validate.Range(min=1, max=MAX_ID), **kwargs)


class AtLeastOneField(Schema):
    """A body that must name at least one field (a PATCH that would change nothing is refused); the
    OpenAPI document says so with `minProperties: 1` (SchemaRulesPlugin)."""

    MIN_PROPERTIES = 1

    @validates_schema
    def _at_least_one_field(self, data, **_):
        if not data:
            raise ValidationError(f"give at least one of: {', '.join(sorted(self.load_fields))}")


class SchemaRulesPlugin(BasePlugin):
    """Adds to the document the schema-level rules marshmallow's plugin cannot see: `minProperties`, and
    no `default` on the fields of a body that changes only what it names (PATCH)."""

    def schema_helper(self, name, definition, **kwargs):
        schema = kwargs.get("schema")
        if getattr(schema, "CHANGES_ONLY_WHAT_IS_SENT", False):
            for field in (definition or {}).get("properties", {}).values():
                field.pop("default", None)
        minimum = getattr(schema, "MIN_PROPERTIES", None)
        return {"minProperties": minimum} if minimum else None


class PageArgs(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10**6))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_PER_PAGE))


_page_schemas: dict[str, type[Schema]] = {}


def page_of(item_schema: type[Schema]) -> type[Schema]:
    """The paging envelope around `item_schema`: {items, total, page, per_page}."""
    name = item_schema.__name__.removesuffix("Schema") + "Page"
    if name not in _page_schemas:
        _page_schemas[name] = Schema.from_dict(
            {
                "items": fields.List(fields.Nested(item_schema), required=True),
                "total": fields.Integer(required=True),
                "page": fields.Integer(required=True),
                "per_page": fields.Integer(required=True),
            },
            name=name,
        )
    return _page_schemas[name]


def paginate(query: sa.Select, args: dict, count_query: sa.Select | None = None) -> dict:
    """Run `query` for one page. `count_query` may be a cheaper equivalent for the total."""
    page, per_page = args["page"], args["per_page"]
    offset = (page - 1) * per_page
    items = db.session.scalars(query.limit(per_page).offset(offset)).all()
    if len(items) < per_page and (items or page == 1):
        # A short page is the last one: the total is known without a COUNT (which on a big table costs
        # far more than the page itself). Past the end (an empty page > 1) it still has to be counted.
        total = offset + len(items)
    else:
        counted = count_query if count_query is not None else query.order_by(None)
        total = db.session.scalar(sa.select(sa.func.count()).select_from(counted.subquery()))
    return {"items": items, "total": total, "page": page, "per_page": per_page}


def current_user():
    return g.current_user


def current_token():
    return g.current_token


def client_address() -> str:
    """The address of the client, for per-client limits.

    nginx names the client in X-Real-IP (and X-Forwarded-For). Those headers count only when the peer is
    one of TRUSTED_PROXIES (default: loopback, where nginx sits under `make stack`; compose sets its
    network): a client that reaches gunicorn directly could otherwise send a new address with every
    request and never be limited. Behind several proxies, X-Forwarded-For is read from the right up to
    the first address that is not a trusted proxy."""
    peer = request.remote_addr or ""
    if not _trusted(peer):
        return peer
    real_ip = _address(request.headers.get("X-Real-IP", ""))
    if real_ip is not None:
        return str(real_ip)
    for hop in reversed(request.headers.get("X-Forwarded-For", "").split(",")):
        address = _address(hop)
        if address is None:
            break
        if not _trusted(str(address)):
            return str(address)
    return peer or "-"


def _address(text: str):
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address


def _trusted(peer: str) -> bool:
    if not peer:
        return True  # no peer address: a unix socket, so a process on this host
    address = _address(peer)
    return address is not None and any(
        address in network for network in current_app.config["TRUSTED_PROXIES"]
    )
