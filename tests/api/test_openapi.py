"""The OpenAPI document: valid OpenAPI 3, complete against the contract, public like its browsable page."""

import re
from html.parser import HTMLParser

import pytest
from openapi_spec_validator import validate

from services.config import API_PREFIX

# Every operation of the table in docs/domain.md (the document lists them with the prefix).
CONTRACT = [
    ("post", "/users/login"),
    ("post", "/users/logout"),
    ("get", "/users/me"),
    ("get", "/users"),
    ("post", "/users"),
    ("get", "/users/{user_id}"),
    ("patch", "/users/{user_id}"),
    ("delete", "/users/{user_id}"),
    ("post", "/users/me/password"),
    ("get", "/users/me/tokens"),
    ("post", "/users/me/tokens"),
    ("delete", "/users/me/tokens/{token_id}"),
    ("get", "/sites"),
    ("post", "/sites"),
    ("get", "/sites/{site_id}"),
    ("patch", "/sites/{site_id}"),
    ("delete", "/sites/{site_id}"),
    ("get", "/sites/{site_id}/members"),
    ("put", "/sites/{site_id}/members/{user_id}"),
    ("delete", "/sites/{site_id}/members/{user_id}"),
    ("post", "/sites/{site_id}/check"),
    ("post", "/sites/{site_id}/tamper/baseline"),
    ("get", "/usability/checks"),
    ("get", "/usability/summary"),
    ("get", "/usability/incidents"),
    ("get", "/tamper/events"),
    ("get", "/tamper/events/{event_id}"),
    ("patch", "/tamper/events/{event_id}"),
    ("get", "/bugs"),
    ("get", "/bugs/{id}"),
    ("patch", "/bugs/{id}"),
    ("post", "/bugs/imports"),
    ("get", "/bugs/imports"),
    ("get", "/health"),
    ("get", "/status-pages"),
    ("post", "/status-pages"),
    ("get", "/status-pages/{id}"),
    ("patch", "/status-pages/{id}"),
    ("delete", "/status-pages/{id}"),
    ("get", "/public/status/{slug}"),
]
PUBLIC = {("post", "/users/login"), ("get", "/health"), ("get", "/public/status/{slug}")}


def _normalise(path: str) -> str:
    """Parameter names are free: /bugs/{finding_id} is the contract's /bugs/{id}."""
    return re.sub(r"\{[^}]*\}", "{}", path)


@pytest.fixture(scope="module")
def spec(app):
    response = app.test_client().get(f"{API_PREFIX}/openapi.json")  # no token: the document is public
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def _operations(spec) -> dict[tuple[str, str], dict]:
    found = {}
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                found[(method, path)] = operation
    return found


def test_the_document_is_valid_openapi_3(spec):
    assert spec["openapi"].startswith("3.")
    validate(spec)  # raises with the offending pointer when the document is not valid


def test_every_endpoint_of_the_contract_is_documented(spec):
    documented = {(method, _normalise(path)) for method, path in _operations(spec)}
    expected = {(method, _normalise(API_PREFIX + path)) for method, path in CONTRACT}
    assert expected - documented == set()


def test_only_login_and_health_are_documented_as_public(spec):
    assert spec["security"] == [{"bearerAuth": []}]
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    public = {
        (m, p.removeprefix(API_PREFIX))
        for (m, p), op in _operations(spec).items()
        if op.get("security") == []
    }
    assert public == PUBLIC


def test_every_operation_documents_its_errors_with_the_error_body(spec):
    error = spec["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"status", "title"}
    assert error["properties"]["status"]["type"] == "integer"
    for (method, path), operation in _operations(spec).items():
        codes = set(operation["responses"])
        label = f"{method.upper()} {path}"
        assert "default" in codes, label
        assert "503" in codes, label
        if operation.get("security") != []:
            assert {"401", "403"} <= codes, label
        if "{" in path:
            assert "404" in codes, label
        if operation.get("requestBody"):
            assert {"400", "422"} <= codes, label


def test_ids_in_paths_are_documented_as_positive_integers(spec):
    for path, item in spec["paths"].items():
        for parameter in item.get("parameters", []):
            if parameter["in"] == "path" and parameter["name"] != "slug":  # a status page's public name
                assert parameter["schema"]["type"] == "integer", path
                assert parameter["schema"]["minimum"] == 1, path


def test_no_form_parameter_outside_a_request_body(spec):
    # OpenAPI 3 has no `formData` parameters: multipart fields belong to the request body schema.
    for (method, path), operation in _operations(spec).items():
        assert all(p.get("in") != "formData" for p in operation.get("parameters", [])), f"{method} {path}"
    upload = spec["paths"][f"{API_PREFIX}/bugs/imports"]["post"]["requestBody"]["content"][
        "multipart/form-data"
    ]
    assert {"file", "site_id"} <= set(upload["schema"]["required"])


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.links: list[str] = []
        self.scripts: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag == "script" and attrs.get("src"):
            self.scripts.append(attrs["src"])


def test_docs_page_is_public_html_that_loads_the_document(app):
    response = app.test_client().get(f"{API_PREFIX}/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = _Page()
    page.feed(response.get_data(as_text=True))
    assert {"html", "title", "script"} <= set(page.tags)
    assert "openapi.json" in page.links
    assert page.scripts == ["docs.js"]  # from this origin, nothing from a CDN: works on an offline host
    assert "<style>" not in response.get_data(as_text=True)  # no inline style or script: a strict CSP holds
    policy = response.headers["Content-Security-Policy"]
    assert (
        "'unsafe-inline'" not in policy and "script-src 'self'" in policy and "connect-src 'self'" in policy
    )
    script = app.test_client().get(f"{API_PREFIX}/docs.js")
    assert script.mimetype == "text/javascript" and 'fetch("openapi.json")' in script.get_data(as_text=True)
    assert app.test_client().get(f"{API_PREFIX}/docs.css").mimetype == "text/css"


@pytest.mark.parametrize(
    "path", ["/healthz", "/readyz", f"{API_PREFIX}/health", f"{API_PREFIX}/openapi.json"]
)
def test_probes_and_the_document_need_no_token(app, path):
    response = app.test_client().get(path)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.is_json


def test_everything_else_needs_a_token(app, spec):
    client = app.test_client()
    for (method, path), operation in _operations(spec).items():
        if operation.get("security") == []:
            continue
        concrete = re.sub(r"\{[^}]*\}", "1", path)
        response = client.open(concrete, method=method.upper())
        assert response.status_code == 401, f"{method.upper()} {path}: {response.status_code}"
        assert response.get_json()["status"] == 401


def test_the_document_states_the_rules_the_server_enforces(spec):
    from services.sites import LIST_LIMITS, NUMBER_RANGES, TEXT_LENGTHS
    from services.users import PASSWORD_LENGTH, USERNAME_LENGTH

    schemas = spec["components"]["schemas"]
    assert schemas["FindingUpdate"]["minProperties"] == 1
    site = schemas["SiteWrite"]["properties"]
    for name, (low, high) in NUMBER_RANGES.items():
        assert (site[name]["minimum"], site[name]["maximum"]) == (low, high), name
    for name, (shortest, longest) in TEXT_LENGTHS.items():
        assert (site[name]["minLength"], site[name]["maxLength"]) == (shortest, longest), name
    for name, (most, (shortest, longest)) in LIST_LIMITS.items():
        assert site[name]["maxItems"] == most, name
        assert (site[name]["items"]["minLength"], site[name]["items"]["maxLength"]) == (shortest, longest)
    assert site["url"]["format"] == "uri" and site["check_interval_s"]["default"] == 60
    patch = schemas["SiteUpdate"]["properties"]  # a PATCH leaves out what keeps its value: no defaults
    assert not [name for name, field in patch.items() if "default" in field]
    assert patch["check_interval_s"]["minimum"] == NUMBER_RANGES["check_interval_s"][0]
    user = schemas["UserCreate"]["properties"]
    assert (user["username"]["minLength"], user["username"]["maxLength"]) == USERNAME_LENGTH
    assert (user["password"]["minLength"], user["password"]["maxLength"]) == PASSWORD_LENGTH
    assert user["email"]["format"] == "email"
