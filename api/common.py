"""Pieces every resource uses: the blueprint class, safe JSON and fields, paging, the current user."""

import json
from datetime import UTC, datetime

import flask_smorest
from apispec import BasePlugin
from flask import g
from flask.json.provider import DefaultJSONProvider
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from webargs import core as webargs_core
from webargs.flaskparser import FlaskParser
from werkzeug.routing import BaseConverter

from services.clients import client_address  # noqa: F401 - the API and the console limit logins by it
from services.paging import COUNT_EXACT_UP_TO, paginate  # noqa: F401 - shared with the console
from services.schemas import (  # noqa: F401 - shared with the console
    MAX_ID,
    Id,
    JSONBoolean,
    JSONId,
    JSONInteger,
    JSONNumber,
    Str,
)

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


class UTCDate(fields.DateTime):
    """An ISO 8601 time; a naive value is taken as UTC. Kept within 1970..9999."""

    def _deserialize(self, value, attr, data, **kwargs):
        parsed = super()._deserialize(value, attr, data, **kwargs)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        if not (EARLIEST <= parsed <= LATEST):
            raise ValidationError("must be between 1970 and 9999")
        return parsed.astimezone(UTC)


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
    """The paging envelope around `item_schema`: {items, total, total_is_estimate, page, per_page}."""
    name = item_schema.__name__.removesuffix("Schema") + "Page"
    if name not in _page_schemas:
        _page_schemas[name] = Schema.from_dict(
            {
                "items": fields.List(fields.Nested(item_schema), required=True),
                "total": fields.Integer(
                    required=True,
                    metadata={
                        "description": "How many items match: exact when `total_is_estimate` is false; "
                        "otherwise a lower bound (more than this many match; counting stops there)"
                    },
                ),
                "total_is_estimate": fields.Boolean(
                    required=True,
                    metadata={
                        "description": f"True when more than {COUNT_EXACT_UP_TO:,} items (or more than the "
                        "end of the requested page) match: `total` is then that bound, not an exact count"
                    },
                ),
                "page": fields.Integer(required=True),
                "per_page": fields.Integer(required=True),
            },
            name=name,
        )
    return _page_schemas[name]


def current_user():
    return g.current_user


def current_token():
    return g.current_token
