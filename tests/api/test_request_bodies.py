"""Every write that takes a JSON body: malformed JSON is a 400, a body of the wrong shape or with a
wrong field is a 422 naming the field, both in the one error shape, and neither changes anything."""

import json
import logging

import pytest
import sqlalchemy as sa
from marshmallow import fields

from api.common import JSONBoolean, JSONNumber
from services.config import API_PREFIX
from services.extensions import db
from services.models import (
    ApiToken,
    Channel,
    Finding,
    MaintenanceWindow,
    Site,
    SiteMember,
    StatusPage,
    TamperEvent,
    User,
)
from tests.factories import create_site, create_user

TABLES = (User, ApiToken, Site, SiteMember, TamperEvent, Finding, Channel, MaintenanceWindow, StatusPage)


@pytest.fixture
def targets(admin, operator):
    site = create_site(operator.user)
    event = TamperEvent(site_id=site.id, diff="")
    finding = Finding(
        site_id=site.id,
        scanner="generic",
        dedup_key="k",
        rule_id="r",
        title="t",
        severity="low",
        severity_rank=1,
    )
    db.session.add_all([event, finding])
    db.session.commit()

    def created(path, body):
        response = operator.post(path, json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    return {
        "site": site.id,
        "event": event.id,
        "finding": finding.id,
        "user": create_user("viewer").id,
        "channel": created("/channels", {"name": "ops", "url": "https://hooks.example.test/x"}),
        "window": created("/maintenance", {**WINDOW, "site_ids": [site.id]}),
        "page": created("/status-pages", {"slug": "shop", "title": "Shop", "site_ids": [site.id]}),
    }


WINDOW = {"title": "upgrade", "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-01T01:00:00Z"}


# (caller, method, path, a body with one wrong field, that field)
WRITES = [
    ("anonymous", "post", "/users/login", {"username": "x", "password": 5}, "password"),
    ("admin", "post", "/users", {"username": "new_user", "password": "long enough", "role": "root"}, "role"),
    ("admin", "patch", "/users/{user}", {"email": "not an email"}, "email"),
    ("operator", "post", "/users/me/tokens", {"name": "ci", "expires_in_days": -1}, "expires_in_days"),
    (
        "operator",
        "post",
        "/users/me/password",
        {"current_password": "x", "new_password": "long enough", "revoke_api_tokens": "maybe"},
        "revoke_api_tokens",
    ),
    (
        "operator",
        "post",
        "/sites",
        {"name": "x", "url": "https://x.example.test/", "paused": "maybe"},
        "paused",
    ),
    ("operator", "patch", "/sites/{site}", {"check_interval_s": "often"}, "check_interval_s"),
    ("operator", "put", "/sites/{site}/members/{user}", {"permission": "admin"}, "permission"),
    ("operator", "patch", "/tamper/events/{event}", {"status": "deleted"}, "status"),
    ("operator", "patch", "/bugs/{finding}", {"status": "closed"}, "status"),
    (
        "operator",
        "post",
        "/channels",
        {"name": "x", "url": "https://h.example.test/", "enabled": 1},
        "enabled",
    ),
    ("operator", "patch", "/channels/{channel}", {"remind_every_min": "60"}, "remind_every_min"),
    ("operator", "post", "/maintenance", {**WINDOW, "site_ids": ["1"]}, "site_ids"),
    ("operator", "patch", "/maintenance/{window}", {"duration_min": 30.0}, "duration_min"),
    ("operator", "post", "/status-pages", {"slug": "s", "title": "t", "site_ids": [1.0]}, "site_ids"),
    ("operator", "patch", "/status-pages/{page}", {"site_ids": [True]}, "site_ids"),
]
IDS = [f"{method} {path}" for _, method, path, _, _ in WRITES]


def rows() -> dict:
    db.session.expire_all()
    return {  # a token's last use is written by authentication, whatever the request
        model.__tablename__: db.session.execute(
            sa.select(*(c for c in model.__table__.columns if c.name != "last_used_at"))
        ).all()
        for model in TABLES
    }


def send(request, who, method, path, targets, **kwargs):
    if who == "anonymous":
        client = request.getfixturevalue("client")
        return getattr(client, method)(API_PREFIX + path.format(**targets), **kwargs)
    return getattr(request.getfixturevalue(who), method)(path.format(**targets), **kwargs)


def assert_error_shape(response, status):
    body = response.get_json()
    assert response.status_code == status and body["status"] == status
    assert body["title"] and body.get("message")
    return body


@pytest.mark.parametrize(("who", "method", "path", "wrong", "field"), WRITES, ids=IDS)
def test_malformed_json_is_400(request, targets, who, method, path, wrong, field):
    before = rows()
    for text in ('{"name": ', "{'name': 'x'}", "[1,", "\xff\xfe"):
        response = send(
            request, who, method, path, targets, data=text, headers={"Content-Type": "application/json"}
        )
        assert_error_shape(response, 400)
    assert rows() == before


@pytest.mark.parametrize(("who", "method", "path", "wrong", "field"), WRITES, ids=IDS)
def test_deeply_nested_json_is_400_logged_as_a_client_error(
    request, targets, who, method, path, wrong, field, caplog
):
    """Nesting deeper than the parser's recursion limit is malformed input, not a server error."""
    before = rows()
    for depth in (1_000, 100_000):
        text = f'{{"{field}": ' + "[" * depth + "]" * depth + "}"
        with caplog.at_level(logging.INFO):
            response = send(
                request, who, method, path, targets, data=text, headers={"Content-Type": "application/json"}
            )
        assert_error_shape(response, 400)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info], caplog.text
    assert rows() == before


@pytest.mark.parametrize(("who", "method", "path", "wrong", "field"), WRITES, ids=IDS)
def test_wrong_bodies_are_422_with_field_errors(request, targets, who, method, path, wrong, field):
    before = rows()
    body = assert_error_shape(send(request, who, method, path, targets, json=wrong), 422)
    assert field in body["errors"], body
    for shape in ("[{}]", '"text"', "5", "null"):
        json_body = {"data": shape, "headers": {"Content-Type": "application/json"}}
        body = assert_error_shape(send(request, who, method, path, targets, **json_body), 422)
        assert body["errors"], shape
    body = assert_error_shape(
        send(request, who, method, path, targets, json={**wrong, "unknown_field": 1}), 422
    )
    assert "unknown_field" in body["errors"]
    assert rows() == before


def test_a_method_the_path_does_not_have_is_405_naming_the_allowed_ones(operator):
    response = operator.put("/sites", json={})
    assert_error_shape(response, 405)
    assert {"GET", "POST"} <= {m.strip() for m in response.headers["Allow"].split(",")}
    assert response.content_type == "application/json"


def test_the_apps_own_json_parser_also_answers_deep_nesting_with_400(app):
    from flask import request
    from werkzeug.exceptions import BadRequest

    deep = "[" * 100_000 + "]" * 100_000
    with (
        app.test_request_context(method="POST", data=deep, content_type="application/json"),
        pytest.raises(BadRequest),
    ):
        request.get_json()


@pytest.mark.parametrize(("who", "method", "path", "wrong", "field"), WRITES, ids=IDS)
def test_json_bodies_beyond_the_request_limit_are_413_before_they_are_read(
    request, app, targets, who, method, path, wrong, field
):
    """The large limit is the report upload's alone: a login or a site of a few megabytes is refused."""
    before = rows()
    text = json.dumps({field: "x" * app.config["MAX_REQUEST_BYTES"]})
    response = send(
        request, who, method, path, targets, data=text, headers={"Content-Type": "application/json"}
    )
    assert_error_shape(response, 413)
    assert rows() == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("paused", 0),
        ("tamper_enabled", 1.0),
        ("keyword_absent", "yes"),
        ("check_interval_s", 60.0),
        ("timeout_s", "10"),
        ("tamper_threshold", "0.5"),
        ("tamper_threshold", True),
    ],
)
def test_json_values_must_have_the_documented_type(operator, field, value):
    """What the document calls a boolean, an integer or a number is that JSON type, not a lookalike."""
    response = operator.post("/sites", json={"name": "x", "url": "https://x.example.test/", field: value})
    body = assert_error_shape(response, 422)
    assert field in body["errors"]
    assert operator.get("/sites").get_json()["total"] == 0


def _json_bodies(app):
    """(endpoint, method, schema) of every view that reads a JSON body."""
    for endpoint, view in app.view_functions.items():
        view_class = getattr(view, "view_class", None)
        methods = (
            [getattr(view_class, name, None) for name in ("post", "put", "patch")] if view_class else [view]
        )
        for method in filter(None, methods):
            for parameter in getattr(method, "_apidoc", {}).get("arguments", {}).get("parameters", []):
                if parameter["in"] == "json":
                    schema = parameter["schema"]
                    yield endpoint, method.__name__, schema() if isinstance(schema, type) else schema


def _loose_fields(schema, prefix=""):
    """Fields of `schema` (and of its lists and nested schemas) that would take a lookalike of their type."""
    for name, field in schema.load_fields.items():
        while isinstance(field, fields.List):
            field = field.inner
        if isinstance(field, fields.Nested):
            yield from _loose_fields(field.schema, f"{prefix}{name}.")
        elif (
            isinstance(field, fields.Boolean)
            and not isinstance(field, JSONBoolean)
            or isinstance(field, fields.Integer)
            and not field.strict
            or isinstance(field, fields.Float)
            and not isinstance(field, JSONNumber)
        ):
            yield prefix + name


def test_every_json_body_takes_booleans_and_numbers_of_their_json_type(app):
    """The fuzz found bodies taking 0, 1.0 or "yes" for a boolean: every JSON body's boolean, integer and
    number fields are JSONBoolean, JSONInteger (or JSONId) and JSONNumber, new resources' included."""
    bodies = list(_json_bodies(app))
    assert {"v1.channel.Channels", "v1.maintenance.MaintenanceWindows", "v1.status_page.StatusPages"} <= {
        endpoint for endpoint, _, _ in bodies
    }
    loose = [
        (endpoint, method, name) for endpoint, method, schema in bodies for name in _loose_fields(schema)
    ]
    assert loose == []
