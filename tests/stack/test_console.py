"""The web console and the public status pages through nginx in the `make stack` topology: nginx serves
the assets itself with long cache headers and the console's policy, the login form works with its CSRF
token, and a status page and its badge answer without a login. (Runs before test_stack.py, which ends by
stopping the stack.)"""

import re
from pathlib import Path

import pytest
import requests

from tests.stack.conftest import MAX_REPORT_BYTES

pytestmark = pytest.mark.stack

CSRF = re.compile(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"')
SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def test_the_console_is_served_through_nginx(stack):
    session = requests.Session()
    home = session.get(f"{stack.url}/", allow_redirects=False, timeout=10)
    assert home.status_code == 302 and home.headers["Location"].startswith("/login")
    login = session.get(f"{stack.url}/login", timeout=10)
    assert login.status_code == 200 and "cloudeye" in login.text
    policy = login.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "form-action 'self'" in policy and "unsafe-inline" not in policy
    assert login.headers["X-Frame-Options"] == "DENY" and login.headers["Server"] == "nginx"
    assert login.headers["Cache-Control"] == "no-store"
    assert list(login.raw.headers.getlist("Content-Security-Policy")) == [policy]  # one, the console's

    # Assets come from nginx's disk (no request id: the app never saw them), cached for a year.
    for asset in re.findall(r'(?:href|src)="(/assets/[^"]+\?v=[0-9a-f]{12})"', login.text):
        response = session.get(f"{stack.url}{asset}", timeout=10)
        assert response.status_code == 200, asset
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable", asset
        assert "X-Request-ID" not in response.headers, asset
    css = session.get(f"{stack.url}/assets/console.css", timeout=10)
    assert css.headers["Content-Type"].startswith("text/css")

    # Log in with the form, as a browser would.
    token = CSRF.search(login.text).group(1)
    done = session.post(
        f"{stack.url}/login",
        data={"username": "admin", "password": stack.admin_password, "csrf_token": token},
        allow_redirects=False,
        timeout=10,
    )
    assert done.status_code == 302, done.text
    cookie = done.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    overview = session.get(f"{stack.url}/", timeout=10)
    assert overview.status_code == 200 and 'data-test="logout"' in overview.text
    forged = session.post(f"{stack.url}/sites/new", data={"name": "x"}, timeout=10)
    assert forged.status_code == 400


def test_a_public_status_page_and_its_badge_need_no_login(stack):
    site = requests.post(
        stack.api("/sites"),
        json={"name": "Stack shop", "url": "https://stack-secret.example.test/", "paused": True},
        headers=stack.auth,
        timeout=10,
    ).json()
    created = requests.post(
        stack.api("/status-pages"),
        json={"slug": "stack", "title": "Stack status", "site_ids": [site["id"]]},
        headers=stack.auth,
        timeout=10,
    )
    assert created.status_code == 201, created.text
    page = requests.get(f"{stack.url}/status/stack", timeout=10)
    assert page.status_code == 200 and "Stack shop" in page.text and "stack-secret" not in page.text
    assert page.headers["Cross-Origin-Resource-Policy"] == "same-origin"
    assert page.headers["Cache-Control"] == "public, max-age=30"
    twin = requests.get(stack.api("/public/status/stack"), timeout=10)
    assert twin.status_code == 200 and twin.json()["sites"][0]["state"] == "paused"
    assert twin.headers["Cache-Control"] == "public, max-age=30"
    badge = requests.get(f"{stack.url}/badge/stack/{site['id']}.svg", timeout=10)
    assert badge.status_code == 200 and badge.headers["Content-Type"].startswith("image/svg+xml")
    # The app's cross-origin policy on badges passes nginx (one header, not nginx's same-origin beside it).
    assert list(badge.raw.headers.getlist("Cross-Origin-Resource-Policy")) == ["cross-origin"]
    assert badge.headers["Cache-Control"] == "public, max-age=30"
    assert requests.get(f"{stack.url}/status/nope", timeout=10).status_code == 404


def test_the_report_form_takes_the_upload_size_through_nginx(stack):
    """nginx gives the console's report form (/sites/<id>/imports) the upload size, as the API's import;
    every other form gets MAX_REQUEST_BYTES (1 MiB) and nginx's 413 before the app reads a byte."""
    session = requests.Session()
    login = session.get(f"{stack.url}/login", timeout=10)
    done = session.post(
        f"{stack.url}/login",
        data={
            "username": "admin",
            "password": stack.admin_password,
            "csrf_token": CSRF.search(login.text).group(1),
        },
        allow_redirects=False,
        timeout=10,
    )
    assert done.status_code == 302, done.text
    site = requests.post(
        stack.api("/sites"),
        json={"name": "big reports", "url": "http://127.0.0.1:9/"},
        headers=stack.auth,
        timeout=10,
    ).json()["id"]
    form = session.get(f"{stack.url}/sites/{site}/imports", timeout=10)
    token = CSRF.search(form.text).group(1)
    line = (SAMPLES / "nuclei.jsonl").read_bytes().splitlines()[0] + b"\n"
    # Within the stack's report limit (MAX_REPORT_BYTES, 1 MiB), in a form over MAX_REQUEST_BYTES (1 MiB).
    report = line * ((MAX_REPORT_BYTES - 4096) // len(line))
    imported = session.post(
        f"{stack.url}/sites/{site}/imports",
        data={"csrf_token": token, "format": "nuclei", "padding": "x" * 65536},
        files={"file": ("big.jsonl", report)},
        allow_redirects=False,
        timeout=60,
    )
    assert imported.status_code == 302, re.findall(r"class=\"error\">([^<]*)<", imported.text)
    findings = requests.get(stack.api(f"/bugs?site_id={site}"), headers=stack.auth, timeout=10).json()
    assert findings["total"] == 1
    refused = session.post(
        f"{stack.url}/sites/new", data={"csrf_token": token, "name": "x" * (len(report) + 65536)}, timeout=30
    )
    assert refused.status_code == 413 and "X-Request-ID" not in refused.headers  # nginx's answer
