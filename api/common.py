"""Pieces every resource uses: safe fields, paging, the current user."""

from datetime import UTC, datetime

from apispec import BasePlugin
from flask import g
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from werkzeug.routing import BaseConverter

from services.clients import client_address  # noqa: F401 - the API and the console limit logins by it
from services.paging import paginate  # noqa: F401 - shared with the console
from services.schemas import MAX_ID, Id, Str  # noqa: F401 - Id and Str are shared with the console

MAX_PER_PAGE = 100
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, tzinfo=UTC)


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
    """Adds to the document the schema-level rules marshmallow's plugin cannot see (minProperties)."""

    def schema_helper(self, name, definition, **kwargs):
        schema = kwargs.get("schema")
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


def current_user():
    return g.current_user


def current_token():
    return g.current_token
