"""Console fixtures: a logged-in test client for the server-side tests, and for the browser tests the
app served on a loopback port (the session's app, so the tests' factories and the worker share its
database) with Debian's Chromium driven by Playwright."""

import os
import re
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.factories import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CLOUDEYE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CSRF_FIELD = re.compile(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"')


def csrf_of(response) -> str:
    match = CSRF_FIELD.search(response.get_data(as_text=True))
    assert match, "no CSRF token in the page"
    return match.group(1)


class ConsoleClient:
    """A test client logged in to the console through its login form, with the CSRF token at hand."""

    def __init__(self, client, user):
        self.client = client
        self.user = user
        page = client.get("/login")
        response = client.post(
            "/login", data={"username": user.username, "password": PASSWORD, "csrf_token": csrf_of(page)}
        )
        assert response.status_code == 302, response.get_data(as_text=True)
        self.csrf = csrf_of(client.get("/tokens"))

    def get(self, path, **kwargs):
        return self.client.get(path, **kwargs)

    def post(self, path, data=None, csrf=True, **kwargs):
        data = dict(data or {})
        if csrf:
            data.setdefault("csrf_token", self.csrf)
        return self.client.post(path, data=data, **kwargs)


@pytest.fixture
def console_as(app, ctx):
    """console_as(user): a fresh client (its own cookie jar) logged in as `user`."""

    def login(user):
        return ConsoleClient(app.test_client(), user)

    return login


# --- the browser ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def live_server(app):
    """The app on 127.0.0.1:<free port>, threaded (the page's requests for scripts, styles and the chart
    overlap)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="session")
def chromium():
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: `make test` installs Debian's chromium (scripts/ensure-browser.sh)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class PageWatch:
    """What a page reported: console errors and warnings, uncaught errors, CSP violations."""

    problems: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)

    def allow(self, fragment: str) -> None:
        """A console message the test expects (an error page it opens on purpose)."""
        self.allowed.append(fragment)

    def unexpected(self) -> list[str]:
        return [p for p in self.problems if not any(fragment in p for fragment in self.allowed)]


# Reported to Python from every document of the context: the event itself, not only the console line.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cloudeyeCsp(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} on ${document.location.pathname}`);
});
"""


@pytest.fixture
def browse(chromium, live_server):
    """browse(locale="en-US") -> (page, watch): a fresh browser context (no cookies) on the live server.
    At the end of the test every page must have reported no console error or warning, no uncaught
    exception and no Content-Security-Policy violation."""
    contexts, watches = [], []

    def open_page(locale: str = "en-US"):
        context = chromium.new_context(
            base_url=live_server, locale=locale, viewport={"width": 1360, "height": 900}
        )
        watch = PageWatch()
        context.expose_function("__cloudeyeCsp", lambda text: watch.problems.append(f"CSP: {text}"))
        context.add_init_script(CSP_LISTENER)
        page = context.new_page()
        page.on(
            "console",
            lambda message: (
                watch.problems.append(f"console {message.type}: {message.text}")
                if message.type in ("error", "warning")
                else None
            ),
        )
        page.on("pageerror", lambda error: watch.problems.append(f"page error: {error}"))
        page.on("dialog", lambda dialog: dialog.accept())  # the confirm() of delete buttons
        contexts.append(context)
        watches.append(watch)
        return page, watch

    yield open_page
    for context in contexts:
        context.close()
    for watch in watches:
        assert watch.unexpected() == [], watch.unexpected()


def login(page, user) -> None:
    page.goto("/login")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("[data-test=login]")
    page.wait_for_url("**/")


@pytest.fixture
def screenshots(tmp_path):
    """Where screenshots go: docs/ when CLOUDEYE_SCREENSHOTS=1 (make screenshots: the README's pictures),
    else the test's temporary directory."""
    return ROOT / "docs" if os.environ.get("CLOUDEYE_SCREENSHOTS") == "1" else tmp_path
