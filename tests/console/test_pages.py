"""The console's pages and forms through the test client: bad input gives the form again with the API's
messages (never a 500), a missing CSRF token is a 400, another user's site is a 404, and every page
carries the strict Content-Security-Policy with nothing inline for it to block."""

import html
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from services import status_pages, users
from services.extensions import db
from services.models import ApiToken, Finding, Site, StatusPage, TamperEvent, User
from services.security import hash_token
from tests.api.helpers import statements
from tests.console.conftest import csrf_of
from tests.factories import PASSWORD, api, create_site, create_user, share, token_for

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
VALID_SITE = {
    "name": "Shop",
    "url": "https://shop.example.test/",
    "check_interval_s": "60",
    "timeout_s": "10",
    "accepted_status": "200-399",
    "max_retries": "0",
    "tamper_threshold": "0.05",
}


def text(response) -> str:
    return response.get_data(as_text=True)


def errors_in(response) -> list[str]:
    return [html.unescape(m) for m in re.findall(r'<small class="error">([^<]*)</small>', text(response))]


@pytest.fixture
def operator_console(console_as):
    return console_as(create_user("operator"))


@pytest.fixture
def seeded(ctx):
    """An owner's site with a tamper event, a finding and a status page, and an outsider."""
    owner = create_user("operator")
    site = create_site(owner, name="Owned", tamper_enabled=True)
    event = TamperEvent(site_id=site.id, status="open", diff="--- a\n+++ b\n@@ -1 +1 @@\n-a\n+b")
    finding = Finding(
        site_id=site.id,
        scanner="nuclei",
        dedup_key="k",
        rule_id="r",
        title="XSS",
        severity="high",
        severity_rank=3,
    )
    db.session.add_all([event, finding])
    db.session.commit()
    page = status_pages.create_page(owner, {"slug": "owned", "title": "Owned", "site_ids": [site.id]})
    return {"owner": owner, "site": site, "event": event, "finding": finding, "page": page}


# --- login and the session ----------------------------------------------------------------------------


def test_pages_need_a_login(client):
    for path in ("/", "/sites/new", "/sites/1", "/users", "/tokens", "/status-pages"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login?next="), path


def test_login_sets_a_strict_session_cookie_and_logout_revokes_it(app, ctx):
    user = create_user("operator")
    client = app.test_client()
    form = client.get("/login", base_url="https://cloudeye.example.test")
    response = client.post(
        "/login",
        data={"username": user.username, "password": PASSWORD, "csrf_token": csrf_of(form)},
        base_url="https://cloudeye.example.test",
    )
    assert response.status_code == 302 and response.headers["Location"] == "/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie
    token = db.session.scalar(db.select(ApiToken).where(ApiToken.user_id == user.id))
    assert token.kind == "login" and token.revoked_at is None
    page = client.get("/", base_url="https://cloudeye.example.test")
    assert page.status_code == 200
    client.post("/logout", data={"csrf_token": csrf_of(page)}, base_url="https://cloudeye.example.test")
    db.session.expire_all()
    assert db.session.get(ApiToken, token.id).revoked_at is not None
    assert client.get("/", base_url="https://cloudeye.example.test").status_code == 302


def test_the_cookie_is_not_secure_over_plain_http(app, ctx):
    user = create_user("operator")
    client = app.test_client()
    response = client.post(
        "/login",
        data={"username": user.username, "password": PASSWORD, "csrf_token": csrf_of(client.get("/login"))},
    )
    assert "Secure" not in response.headers["Set-Cookie"]


def test_bad_logins_show_the_form_again(app, ctx):
    user = create_user("operator")
    client = app.test_client()
    token = csrf_of(client.get("/login"))
    for data, status, message in (
        ({"username": user.username, "password": "wrong"}, 401, "Invalid username or password."),
        ({"username": "", "password": ""}, 422, "Give a username and a password."),
        ({"username": "x" * 300, "password": "y"}, 401, "Invalid username or password."),
        ({}, 422, "Give a username and a password."),
    ):
        response = client.post("/login", data={**data, "csrf_token": token})
        assert response.status_code == status and message in text(response), data


def test_the_login_rate_limit_is_the_apis(app, ctx):
    app.config["LOGIN_RATE_LIMIT"], saved = 3, app.config["LOGIN_RATE_LIMIT"]
    try:
        user = create_user("operator")
        client = app.test_client()
        token = csrf_of(client.get("/login"))
        statuses = [
            client.post(
                "/login", data={"username": user.username, "password": "wrong", "csrf_token": token}
            ).status_code
            for _ in range(4)
        ]
        assert statuses == [401, 401, 401, 429]
        right = client.post(
            "/login", data={"username": user.username, "password": PASSWORD, "csrf_token": token}
        )
        assert right.status_code == 429 and right.headers["Retry-After"]
        assert "Too many login attempts" in text(right)
    finally:
        app.config["LOGIN_RATE_LIMIT"] = saved


def test_console_and_api_logins_share_the_limits(app, ctx):
    """One budget whichever door is used: failed logins per client (the console's and the API's count
    together, the client named by the trusted proxy's X-Real-IP), and attempts per account, whatever
    spelling of the name is tried."""
    saved = app.config["LOGIN_FAILURE_LIMIT"], app.config["LOGIN_RATE_LIMIT"]
    app.config["LOGIN_FAILURE_LIMIT"], app.config["LOGIN_RATE_LIMIT"] = 4, 3
    try:
        user = create_user("operator", username="victim")
        client = app.test_client()
        token = csrf_of(client.get("/login"))

        def console_login(username, password, ip):
            data = {"username": username, "password": password, "csrf_token": token}
            return client.post("/login", data=data, headers={"X-Real-IP": ip}).status_code

        def api_login(username, password, ip):
            body = {"username": username, "password": password}
            return client.post(api("/users/login"), json=body, headers={"X-Real-IP": ip}).status_code

        assert [console_login(f"nobody{n}", "wrong", "10.7.7.7") for n in range(2)] == [401, 401]
        assert [api_login(f"nobody{n}", "wrong", "10.7.7.7") for n in range(2, 4)] == [401, 401]
        assert console_login(user.username, PASSWORD, "10.7.7.7") == 429  # four failures from there
        assert api_login(user.username, PASSWORD, "10.7.7.7") == 429
        # Another client: its own failures, but the account's attempts are shared across spellings.
        assert [api_login("victim", "wrong", "10.7.7.8"), console_login("VICTIM ", "wrong", "10.7.7.8")] == [
            401,
            401,
        ]
        assert console_login("ｖｉｃｔｉｍ", "wrong", "10.7.7.8") == 401
        assert console_login("victim", PASSWORD, "10.7.7.8") == 429  # the account's 4th attempt
        assert console_login("victim", PASSWORD, "10.7.7.9") == 302
    finally:
        app.config["LOGIN_FAILURE_LIMIT"], app.config["LOGIN_RATE_LIMIT"] = saved


def test_a_deactivated_user_is_logged_out(console_as):
    user = create_user("operator")
    console = console_as(user)
    assert console.get("/").status_code == 200
    db.session.get(User, user.id).is_active = False
    db.session.commit()
    assert console.get("/").status_code == 302


def test_login_redirects_only_to_this_site(app, ctx):
    user = create_user("operator")
    client = app.test_client()
    token = csrf_of(client.get("/login"))
    for target, expected in (("/tokens", "/tokens"), ("https://evil.example/", "/"), ("//evil.example", "/")):
        client.post("/logout", data={"csrf_token": token})
        token = csrf_of(client.get("/login"))
        response = client.post(
            f"/login?next={target}",
            data={"username": user.username, "password": PASSWORD, "csrf_token": token},
        )
        assert response.headers["Location"] == expected, target
        token = csrf_of(client.get("/tokens"))


# --- CSRF -----------------------------------------------------------------------------------------------


def test_every_form_refuses_a_missing_or_wrong_csrf_token(console_as, seeded):
    admin = console_as(create_user("admin"))
    site, event, finding, page = seeded["site"], seeded["event"], seeded["finding"], seeded["page"]
    other = create_user("viewer")
    posts = [
        "/sites/new",
        f"/sites/{site.id}/edit",
        f"/sites/{site.id}/delete",
        f"/sites/{site.id}/check",
        f"/sites/{site.id}/baseline",
        f"/sites/{site.id}/events/{event.id}",
        f"/findings/{finding.id}",
        f"/sites/{site.id}/imports",
        "/users/new",
        f"/users/{other.id}/edit",
        f"/users/{other.id}/delete",
        "/tokens",
        "/tokens/1/revoke",
        "/status-pages/new",
        f"/status-pages/{page.id}/edit",
        f"/status-pages/{page.id}/delete",
        "/logout",
        "/login",
    ]
    for path in posts:
        missing = admin.post(path, data={"name": "x"}, csrf=False)
        assert missing.status_code == 400 and "CSRF" in text(missing), path
        wrong = admin.post(path, data={"name": "x", "csrf_token": "forged"}, csrf=False)
        assert wrong.status_code == 400, path
    db.session.expire_all()
    assert db.session.get(Site, site.id) is not None and db.session.get(User, other.id) is not None
    assert db.session.get(TamperEvent, event.id).status == "open"


# --- another user's things --------------------------------------------------------------------------------


def test_another_users_site_is_404_everywhere(console_as, seeded):
    outsider = console_as(create_user("operator"))
    site, event, finding, page = seeded["site"], seeded["event"], seeded["finding"], seeded["page"]
    gets = [
        f"/sites/{site.id}",
        f"/sites/{site.id}/edit",
        f"/sites/{site.id}/chart.json",
        f"/sites/{site.id}/imports",
        f"/sites/{site.id}/events/{event.id}",
        f"/findings/{finding.id}",
        f"/status-pages/{page.id}/edit",
    ]
    for path in gets:
        assert outsider.get(path).status_code == 404, path
    posts = {
        f"/sites/{site.id}/edit": VALID_SITE,
        f"/sites/{site.id}/delete": {},
        f"/sites/{site.id}/check": {},
        f"/sites/{site.id}/baseline": {},
        f"/sites/{site.id}/events/{event.id}": {"status": "accepted"},
        f"/findings/{finding.id}": {"status": "fixed"},
        f"/status-pages/{page.id}/edit": {"slug": "x", "title": "x", "site_ids": []},
        f"/status-pages/{page.id}/delete": {},
    }
    for path, data in posts.items():
        response = outsider.post(path, data=data)
        assert response.status_code == 404, path
        assert "<html" in text(response)  # the console's error page, not the API's JSON
    upload = outsider.post(
        f"/sites/{site.id}/imports", data={"file": ((SAMPLES / "nuclei.jsonl").open("rb"), "n.jsonl")}
    )
    assert upload.status_code == 404
    db.session.expire_all()
    assert db.session.get(Site, site.id).name == "Owned"
    assert db.session.get(TamperEvent, event.id).status == "open"
    assert db.session.get(Finding, finding.id).status == "open"
    assert db.session.get(StatusPage, page.id) is not None


def test_a_reader_may_look_but_not_change(console_as, seeded):
    reader = create_user("operator")
    share(seeded["site"], reader, "read")
    console = console_as(reader)
    site = seeded["site"]
    page = console.get(f"/sites/{site.id}")
    assert page.status_code == 200
    assert 'data-test="site-actions"' not in text(page) and 'data-test="triage"' not in text(page)
    assert console.get(f"/sites/{site.id}/edit").status_code == 403
    assert console.post(f"/sites/{site.id}/check").status_code == 403
    assert console.post(f"/findings/{seeded['finding'].id}", data={"status": "fixed"}).status_code == 403
    assert (
        console.post(f"/sites/{site.id}/events/{seeded['event'].id}", data={"status": "accepted"}).status_code
        == 403
    )


def test_admin_pages_are_403_for_others(operator_console):
    for path in ("/users", "/users/new", "/users/1/edit"):
        assert operator_console.get(path).status_code == 403, path
    assert (
        operator_console.post("/users/new", data={"username": "mallory", "password": "x" * 10}).status_code
        == 403
    )


def test_viewers_cannot_open_the_create_forms(console_as):
    viewer = console_as(create_user("viewer"))
    assert viewer.get("/sites/new").status_code == 403
    assert viewer.post("/sites/new", data=VALID_SITE).status_code == 403
    assert viewer.get("/status-pages/new").status_code == 403


# --- the site form: the API's rules and messages ---------------------------------------------------------


def test_a_site_is_created_with_the_forms_values(operator_console):
    response = operator_console.post(
        "/sites/new",
        data={
            **VALID_SITE,
            "tamper_enabled": "y",
            "tamper_ignore": "\\d+ visitors\n\n  csrf=\\w+ ",
            "forbidden_keywords": "casino\nhacked",
        },
    )
    assert response.status_code == 302
    site = db.session.scalar(db.select(Site).where(Site.name == "Shop"))
    assert response.headers["Location"] == f"/sites/{site.id}"
    assert site.tamper_enabled and site.tamper_ignore == ["\\d+ visitors", "csrf=\\w+"]
    assert site.forbidden_keywords == ["casino", "hacked"] and site.keyword is None and not site.paused


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"name": ""}, "name", "must be 1 to 200 characters long"),
        ({"url": "ftp://shop.example.test/"}, "url", "http/https only"),
        ({"url": "javascript:alert(1)"}, "url", "http/https only"),
        ({"check_interval_s": "5"}, "check_interval_s", "must be between 10 and 86400"),
        ({"check_interval_s": "often"}, "check_interval_s", "Not a valid integer."),
        ({"timeout_s": "100", "check_interval_s": "30"}, "timeout_s", "must not exceed check_interval_s"),
        (
            {"accepted_status": "399-200"},
            "accepted_status",
            "'399-200' must be within 100-599, low before high",
        ),
        ({"tamper_threshold": "1.5"}, "tamper_threshold", "must be between 0.0 and 1.0"),
        (
            {"tamper_ignore": "ok\n("},
            "tamper_ignore",
            "'(' is refused by the pattern engine (RE2 syntax): missing )",
        ),
        ({"name": "x\x00"}, "name", "must not contain NUL characters"),
    ],
)
def test_bad_site_input_gives_the_form_again_with_the_apis_message(
    operator, operator_console, changes, field, message
):
    form = operator_console.post("/sites/new", data={**VALID_SITE, **changes})
    assert form.status_code == 422
    assert any(message in error for error in errors_in(form)), errors_in(form)
    assert f'name="{field}"' in text(form)
    # The API says the same about the same input.
    body = {**VALID_SITE, **changes}
    for name in ("check_interval_s", "timeout_s", "max_retries"):
        body[name] = int(body[name]) if body[name].isdigit() else body[name]
    body["tamper_threshold"] = (
        float(body["tamper_threshold"])
        if body["tamper_threshold"].replace(".", "").isdigit()
        else body["tamper_threshold"]
    )
    body["tamper_ignore"] = [line for line in body.get("tamper_ignore", "").splitlines() if line]
    api = operator.post("/sites", json=body).get_json()
    assert api["status"] == 422
    api_messages = api["errors"][field]
    flat = str(api_messages)
    assert message in flat, api_messages
    assert db.session.scalar(db.select(db.func.count()).select_from(Site)) == 0


def test_the_form_keeps_what_was_typed(operator_console):
    form = operator_console.post(
        "/sites/new", data={**VALID_SITE, "name": "Kept", "check_interval_s": "often"}
    )
    assert 'value="Kept"' in text(form) and 'value="often"' in text(form)


def test_editing_changes_only_what_changed(operator_console):
    site = create_site(operator_console.user, name="Before", check_interval_s=60)
    due = db.session.get(Site, site.id).next_check_at
    form = operator_console.get(f"/sites/{site.id}/edit")
    assert 'value="Before"' in text(form)
    response = operator_console.post(
        f"/sites/{site.id}/edit", data={**VALID_SITE, "name": "After", "url": site.url}
    )
    assert response.status_code == 302
    db.session.expire_all()
    edited = db.session.get(Site, site.id)
    assert edited.name == "After" and edited.next_check_at == due and edited.baseline_requested_at is None
    bad = operator_console.post(f"/sites/{site.id}/edit", data={**VALID_SITE, "url": "nope"})
    assert bad.status_code == 422 and "http/https only" in errors_in(bad)


SECRET_URL = "https://watch:s3cr3t-pw@shop.example.test/admin"
MASKED_URL = "https://watch:***@shop.example.test/admin"


def test_the_console_never_shows_a_sites_password(console_as, operator_console):
    """Pages and the edit form show `***` in its place, to readers and writers alike; the form saved as
    shown keeps it, even with another path; a URL with a new password replaces it, one without drops it."""
    owner = operator_console.user
    site = create_site(owner, name="Private", url=SECRET_URL)
    reader = console_as(create_user("operator"))
    share(site, reader.user, "read")
    for console in (operator_console, reader):
        for path in ("/", f"/sites/{site.id}"):
            page = text(console.get(path))
            assert MASKED_URL in page and "s3cr3t" not in page, path
    form = text(operator_console.get(f"/sites/{site.id}/edit"))
    assert f'value="{MASKED_URL}"' in form and "s3cr3t" not in form
    assert reader.get(f"/sites/{site.id}/edit").status_code == 403

    def save(url):
        response = operator_console.post(
            f"/sites/{site.id}/edit", data={**VALID_SITE, "name": "Private", "url": url}
        )
        assert response.status_code == 302, errors_in(response)
        db.session.expire_all()
        return db.session.get(Site, site.id)

    due = db.session.get(Site, site.id).next_check_at
    unchanged = save(MASKED_URL)
    assert (unchanged.url, unchanged.url_password) == ("https://watch@shop.example.test/admin", "s3cr3t-pw")
    assert unchanged.next_check_at == due and unchanged.baseline_requested_at is None  # the same target
    moved = save("https://watch:***@shop.example.test/login")
    assert (moved.url, moved.url_password) == ("https://watch@shop.example.test/login", "s3cr3t-pw")
    renewed = save("https://watch:n3w-pw@shop.example.test/login")
    assert renewed.url_password == "n3w-pw"
    dropped = save("https://shop.example.test/login")
    assert (dropped.url, dropped.url_password) == ("https://shop.example.test/login", None)


def test_a_paused_site_cannot_be_checked(operator_console):
    site = create_site(operator_console.user, paused=True)
    response = operator_console.post(f"/sites/{site.id}/check")
    assert response.status_code == 302
    assert "paused" in text(operator_console.get(response.headers["Location"]))


def test_delete_a_site(operator_console):
    site = create_site(operator_console.user)
    assert operator_console.post(f"/sites/{site.id}/delete").headers["Location"] == "/"
    assert db.session.get(Site, site.id) is None


# --- tamper events, findings, imports ---------------------------------------------------------------------


def test_tamper_event_form(console_as, seeded):
    owner = console_as(seeded["owner"])
    site, event = seeded["site"], seeded["event"]
    page = owner.get(f"/sites/{site.id}/events/{event.id}?view=split")
    assert page.status_code == 200 and 'class="diff split"' in text(page)
    bad = owner.post(f"/sites/{site.id}/events/{event.id}", data={"status": "deleted"})
    assert bad.status_code == 422 and "Must be one of" in text(bad)
    no_content = owner.post(f"/sites/{site.id}/events/{event.id}", data={"status": "accepted"})
    assert no_content.status_code == 422 and "no content" in text(no_content)
    done = owner.post(
        f"/sites/{site.id}/events/{event.id}", data={"status": "resolved", "note": "fixed the CMS"}
    )
    assert done.status_code == 302
    db.session.expire_all()
    assert db.session.get(TamperEvent, event.id).status == "resolved"
    again = owner.post(f"/sites/{site.id}/events/{event.id}", data={"status": "accepted"})
    assert again.status_code == 422 and "allowed from resolved" in text(again)
    other_site = create_site(seeded["owner"])
    assert owner.get(f"/sites/{other_site.id}/events/{event.id}").status_code == 404


def test_finding_form(console_as, seeded):
    owner = console_as(seeded["owner"])
    finding = seeded["finding"]
    assert owner.get(f"/findings/{finding.id}").status_code == 200
    bad = owner.post(f"/findings/{finding.id}", data={"status": "gone"})
    assert bad.status_code == 422 and "Must be one of" in text(bad)
    long = owner.post(f"/findings/{finding.id}", data={"status": "fixed", "note": "x" * 10_001})
    assert long.status_code == 422
    back = f"/sites/{seeded['site'].id}?severity=high"
    done = owner.post(
        f"/findings/{finding.id}", data={"status": "accepted_risk", "note": "WAF", "next": back}
    )
    assert done.status_code == 302 and done.headers["Location"] == back
    db.session.expire_all()
    assert db.session.get(Finding, finding.id).status == "accepted_risk"
    assert (
        owner.post(
            f"/findings/{finding.id}", data={"status": "open", "next": "https://evil.example/"}
        ).headers["Location"]
        == f"/sites/{seeded['site'].id}"
    )


def test_findings_filters_are_checked(console_as, seeded):
    owner = console_as(seeded["owner"])
    site = seeded["site"]
    for query in (
        "severity=high",
        "severity=bogus&status=nope&sort=evil&page=-4",
        "q=%00&scanner=" + "x" * 500,
    ):
        assert owner.get(f"/sites/{site.id}?{query}").status_code == 200, query
    assert "XSS" not in text(owner.get(f"/sites/{site.id}?severity=low"))
    assert "XSS" in text(owner.get(f"/sites/{site.id}?severity=high&status=open"))
    # q= before the search index has the findings (the tail) and after (the references)
    from services import search

    for _ in range(2):
        assert "XSS" in text(owner.get(f"/sites/{site.id}?q=xss"))
        assert "XSS" not in text(owner.get(f"/sites/{site.id}?q=no-such-words"))
        search.index_pending()
    assert owner.get(f"/sites/{site.id}/chart.json?window=1y").status_code == 400
    for window in ("24h", "7d", "30d"):
        assert owner.get(f"/sites/{site.id}/chart.json?window={window}").get_json()["points"] == []


def test_report_upload(console_as, seeded):
    owner = console_as(seeded["owner"])
    site = seeded["site"]
    missing = owner.post(f"/sites/{site.id}/imports", data={})
    assert missing.status_code == 422 and "Choose a report file." in text(missing)
    broken = owner.post(f"/sites/{site.id}/imports", data={"file": (io.BytesIO(b"just notes"), "notes.txt")})
    assert broken.status_code == 422 and "the report is not JSON" in text(broken)
    wrong_format = owner.post(
        f"/sites/{site.id}/imports",
        data={"file": ((SAMPLES / "nuclei.jsonl").open("rb"), "n.jsonl"), "format": "pdf"},
    )
    assert wrong_format.status_code == 422 and "Unknown format." in text(wrong_format)
    done = owner.post(
        f"/sites/{site.id}/imports",
        data={"file": ((SAMPLES / "nuclei.jsonl").open("rb"), "n.jsonl"), "format": "nuclei"},
    )
    assert done.status_code == 302
    assert "6 new" in text(owner.get(done.headers["Location"]))


def test_the_report_form_takes_the_upload_size_and_other_forms_the_small_one(app, console_as, seeded):
    """As in the API: the report upload alone takes MAX_UPLOAD_BYTES; every other form MAX_REQUEST_BYTES
    (a 413 page before the form is read)."""
    owner = console_as(seeded["owner"])
    site = seeded["site"]
    line = (SAMPLES / "nuclei.jsonl").read_bytes().splitlines()[0] + b"\n"
    report = line * (app.config["MAX_REQUEST_BYTES"] // len(line) + 1)
    assert app.config["MAX_REQUEST_BYTES"] < len(report) < app.config["MAX_UPLOAD_BYTES"]
    done = owner.post(f"/sites/{site.id}/imports", data={"file": (io.BytesIO(report), "big.jsonl")})
    assert done.status_code == 302, errors_in(done)
    big_note = owner.post(
        f"/findings/{seeded['finding'].id}", data={"status": "open", "note": "x" * len(report)}
    )
    assert big_note.status_code == 413 and "<html" in text(big_note)
    saved = app.config["MAX_UPLOAD_BYTES"]
    app.config["MAX_UPLOAD_BYTES"] = len(report) // 2
    try:
        too_big = owner.post(f"/sites/{site.id}/imports", data={"file": (io.BytesIO(report), "big.jsonl")})
    finally:
        app.config["MAX_UPLOAD_BYTES"] = saved
    assert too_big.status_code == 413
    db.session.expire_all()
    assert db.session.get(Finding, seeded["finding"].id).note is None


# --- users, tokens, status pages ---------------------------------------------------------------------------


def test_user_forms(console_as):
    admin = console_as(create_user("admin"))
    # The shape of each field first, then the account rules of services.users (as in the API).
    bad = admin.post(
        "/users/new", data={"username": "a b", "password": "short", "email": "nope", "role": "god"}
    )
    assert bad.status_code == 422
    messages = errors_in(bad)
    assert "Not a valid email address." in messages and any("Must be one of" in m for m in messages)
    bad = admin.post("/users/new", data={"username": "a b", "password": "long enough", "role": "viewer"})
    assert bad.status_code == 422 and any("3-64 letters, digits or _ . @ -" in m for m in errors_in(bad))
    bad = admin.post("/users/new", data={"username": "carol", "password": "short", "role": "viewer"})
    assert bad.status_code == 422 and any("8 to 256 characters" in m for m in errors_in(bad))
    # The password rules of services.users, as in the API and the CLI, with the reason.
    for weak, reason in (
        ("password1", "most common"),
        ("carol's secret", "username"),
        ("abababab", "different"),
    ):
        bad = admin.post("/users/new", data={"username": "carol", "password": weak, "role": "viewer"})
        assert bad.status_code == 422 and any(reason in m for m in errors_in(bad)), weak
    assert (
        admin.post(
            "/users/new", data={"username": "carol", "password": "long enough", "role": "viewer"}
        ).status_code
        == 302
    )
    taken = admin.post("/users/new", data={"username": "carol", "password": "long enough", "role": "viewer"})
    assert taken.status_code == 422 and "already taken" in errors_in(taken)
    carol = db.session.scalar(db.select(User).where(User.username == "carol"))
    edit = admin.post(
        f"/users/{carol.id}/edit", data={"username": "carol", "role": "operator", "is_active": "y"}
    )
    assert edit.status_code == 302
    db.session.expire_all()
    assert db.session.get(User, carol.id).role == "operator"
    self_demote = admin.post(
        f"/users/{admin.user.id}/edit",
        data={"username": admin.user.username, "role": "viewer", "is_active": "y"},
    )
    assert self_demote.status_code == 422 and "cannot change own role" in errors_in(self_demote)
    assert admin.get("/users/999999/edit").status_code == 404
    assert admin.post(f"/users/{carol.id}/delete").status_code == 302
    assert db.session.get(User, carol.id) is None


def test_a_new_password_from_the_user_form_says_what_was_revoked(console_as):
    admin = console_as(create_user("admin"))
    user = create_user("viewer")
    form = admin.get(f"/users/{user.id}/edit")
    # ticked by default, as the API's default is to revoke them
    assert re.search(r'<input(?=[^>]*\bchecked\b)(?=[^>]*name="revoke_api_tokens")', text(form))
    base = {"username": user.username, "role": "viewer", "is_active": "y"}

    def save(**fields):
        response = admin.post(f"/users/{user.id}/edit", data={**base, **fields}, follow_redirects=True)
        assert response.status_code == 200
        return text(response)

    token_for(user)
    kept = token_for(user, kind="api", expires_in=None)
    page = save(password="a brand new one")  # the box unticked: API tokens stay
    assert "1 login sessions ended, 0 API tokens revoked" in html.unescape(page)
    page = save(password="another new one", revoke_api_tokens="y")
    assert "0 login sessions ended, 1 API tokens revoked" in html.unescape(page)
    assert db.session.scalar(db.select(ApiToken).where(ApiToken.token_hash == hash_token(kept))).revoked_at
    assert f"User {user.username} saved." in html.unescape(save())  # no new password: nothing revoked
    # An admin's own new password leaves the console session that set it.
    own = {
        "username": admin.user.username,
        "role": "admin",
        "is_active": "y",
        "password": "a fresh phrase of mine",
    }
    assert admin.post(f"/users/{admin.user.id}/edit", data=own).status_code == 302
    assert admin.get("/users").status_code == 200


def test_users_change_their_own_password(app, console_as):
    """As POST /users/me/password: the current password is required (wrong ones count as failed logins),
    the new one follows the rules, every other session ends, API tokens too unless unticked, and the
    console session that changed it goes on."""
    user = create_user("viewer")
    console = console_as(user)
    other_session = token_for(user)
    api_token = token_for(user, kind="api", expires_in=None)
    assert 'data-test="password"' in text(console.get("/"))
    form = console.get("/password")
    assert form.status_code == 200 and re.search(
        r'<input(?=[^>]*\bchecked\b)(?=[^>]*name="revoke_api_tokens")', text(form)
    )
    wrong = console.post(
        "/password", data={"current_password": "guess", "new_password": "a fresh passphrase"}
    )
    assert wrong.status_code == 422 and "wrong password" in errors_in(wrong)
    weak = console.post("/password", data={"current_password": PASSWORD, "new_password": "password1"})
    assert weak.status_code == 422 and any("most common" in m for m in errors_in(weak))
    done = console.post(
        "/password",
        data={"current_password": PASSWORD, "new_password": "a fresh passphrase", "revoke_api_tokens": "y"},
        follow_redirects=True,
    )
    assert "1 other login sessions ended, 1 API tokens revoked" in html.unescape(text(done))
    assert console.get("/").status_code == 200  # this session goes on
    db.session.expire_all()
    revoked = {t.token_hash: t.revoked_at for t in db.session.scalars(db.select(ApiToken))}
    assert revoked[hash_token(other_session)] and revoked[hash_token(api_token)]
    assert users.login(user.username, "a fresh passphrase")[0].id == user.id
    saved = app.config["LOGIN_FAILURE_LIMIT"]
    app.config["LOGIN_FAILURE_LIMIT"] = 2
    try:
        for _ in range(2):
            console.post("/password", data={"current_password": "guess", "new_password": "another phrase"})
        limited = console.post(
            "/password", data={"current_password": "a fresh passphrase", "new_password": "another phrase"}
        )
    finally:
        app.config["LOGIN_FAILURE_LIMIT"] = saved
    assert limited.status_code == 429 and limited.headers["Retry-After"]


def test_token_form_shows_the_secret_once(operator_console):
    bad = operator_console.post("/tokens", data={"name": "", "expires_in_days": "forever"})
    assert bad.status_code == 422
    assert "Length must be between 1 and 100." in errors_in(bad) and "Not a valid integer." in errors_in(bad)
    created = operator_console.post("/tokens", data={"name": "ci", "expires_in_days": "30"})
    secret = re.search(r'<code class="secret">(ce_[^<]+)</code>', text(created)).group(1)
    assert (
        operator_console.client.get(
            "/api/cloudeye/v1/users/me", headers={"Authorization": f"Bearer {secret}"}
        ).status_code
        == 200
    )
    listing = operator_console.get("/tokens")
    assert secret not in text(listing) and secret[:10] in text(listing)
    token = db.session.scalar(db.select(ApiToken).where(ApiToken.kind == "api"))
    assert operator_console.post(f"/tokens/{token.id}/revoke").status_code == 302
    assert operator_console.post(f"/tokens/{token.id}/revoke").status_code == 404


def test_status_page_forms(console_as):
    owner = create_user("operator")
    console = console_as(owner)
    mine = create_site(owner, name="Mine")
    theirs = create_site(create_user("operator"), name="Theirs")
    form = console.get("/status-pages/new")
    assert "Mine" in text(form) and "Theirs" not in text(form)
    bad = console.post(
        "/status-pages/new", data={"slug": "Bad Slug", "title": "", "site_ids": [str(mine.id), "x"]}
    )
    assert bad.status_code == 422
    assert "1-64 lower-case letters, digits and -, not at either end" in errors_in(bad)
    assert "Length must be between 1 and 200." in errors_in(bad) and "Not a valid integer." in text(bad)
    huge = console.post("/status-pages/new", data={"slug": "s", "title": "t", "site_ids": ["9" * 23]})
    assert huge.status_code == 422  # an id no database column holds is refused by the schema, never queried
    forged = console.post(
        "/status-pages/new", data={"slug": "shop", "title": "Shop", "site_ids": [str(theirs.id)]}
    )
    assert forged.status_code == 422 and f"site {theirs.id} not found" in text(forged)
    assert (
        console.post(
            "/status-pages/new", data={"slug": "shop", "title": "Shop", "site_ids": [str(mine.id)]}
        ).status_code
        == 302
    )
    page = db.session.scalar(db.select(StatusPage))
    taken = console_as(create_user("admin")).post(
        "/status-pages/new", data={"slug": "shop", "title": "x", "site_ids": []}
    )
    assert taken.status_code == 422 and "already taken" in errors_in(taken)
    assert (
        console.post(
            f"/status-pages/{page.id}/edit", data={"slug": "shop", "title": "New", "site_ids": []}
        ).status_code
        == 302
    )
    assert console.post(f"/status-pages/{page.id}/delete").status_code == 302


# --- public pages ------------------------------------------------------------------------------------------


def test_public_status_page_and_badge(client, seeded):
    site = seeded["site"]
    page = client.get("/status/owned")
    assert page.status_code == 200 and "Owned" in text(page)
    assert site.url not in text(page) and "XSS" not in text(page) and "Set-Cookie" not in page.headers
    assert page.headers["Cache-Control"] == "public, max-age=30"
    assert page.headers["Cross-Origin-Resource-Policy"] == "same-origin"
    assert "form-action 'self'" in page.headers["Content-Security-Policy"]  # the console's, not the API's
    badge = client.get(f"/badge/owned/{site.id}.svg")
    assert badge.status_code == 200 and badge.mimetype == "image/svg+xml"
    # Embedded by other sites, cached like the page; the app's other headers still apply.
    assert badge.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert badge.headers["Cache-Control"] == "public, max-age=30"
    assert badge.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert badge.headers["X-Content-Type-Options"] == "nosniff"
    twin = client.get("/api/cloudeye/v1/public/status/owned")
    assert twin.status_code == 200 and twin.headers["Cache-Control"] == "public, max-age=30"
    # What is not there is not cached (a page published a moment later shows at once).
    assert client.get("/status/missing").headers["Cache-Control"] == "no-store"
    assert "uptime" in text(badge) and "no data" in text(badge)
    assert client.get("/status/missing").status_code == 404
    assert client.get(f"/badge/owned/{site.id + 1000}.svg").status_code == 404
    assert client.get(f"/badge/missing/{site.id}.svg").status_code == 404


def test_a_burst_of_visitors_costs_the_database_nothing(client, seeded):
    badge = f"/badge/owned/{seeded['site'].id}.svg"
    client.get("/status/owned")
    client.get("/status/nothing-here")
    with statements() as sent:
        for _ in range(10):
            assert client.get("/status/owned").status_code == 200
            assert client.get(badge).status_code == 200
            assert client.get("/status/nothing-here").status_code == 404
            assert client.get("/status/nothing-here").status_code == 404
    assert sent == []


def test_names_are_escaped(client, ctx):
    owner = create_user("operator")
    site = create_site(owner, name='<script>alert("x")</script>')
    status_pages.create_page(owner, {"slug": "xss", "title": "<b>t</b>", "site_ids": [site.id]})
    assert "<script>alert" not in text(client.get("/status/xss"))
    assert "<script>" not in text(client.get(f"/badge/xss/{site.id}.svg"))


# --- headers and nothing inline ------------------------------------------------------------------------------


class InlineFinder(HTMLParser):
    def __init__(self):
        super().__init__()
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        names = {name for name, _ in attrs}
        if tag == "style":
            self.problems.append("<style>")
        if "style" in names:
            self.problems.append(f"style= on <{tag}>")
        if any(name.startswith("on") for name in names):
            self.problems.append(f"event handler on <{tag}>")
        if tag == "script":
            self._in_script = "src" not in names
        for name, value in attrs:
            if name in ("href", "src", "action") and (value or "").startswith("javascript:"):
                self.problems.append(f"javascript: URL on <{tag}>")

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.problems.append("inline <script> body")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False


def test_every_page_has_the_strict_csp_and_nothing_inline(console_as, seeded, client):
    admin = console_as(create_user("admin"))
    site, event, finding, page = seeded["site"], seeded["event"], seeded["finding"], seeded["page"]
    paths = [
        "/", f"/sites/{site.id}", f"/sites/{site.id}/edit", f"/sites/{site.id}/imports",
        f"/sites/{site.id}/events/{event.id}", f"/findings/{finding.id}", "/sites/new", "/users", "/users/new",
        f"/users/{admin.user.id}/edit", "/tokens", "/status-pages", "/status-pages/new",
        f"/status-pages/{page.id}/edit", "/status/owned", "/sites/999999",
    ]  # fmt: skip
    for path in paths:
        response = admin.get(path)
        assert response.status_code in (200, 404), path
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp, path
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        if path != "/status/owned":
            assert response.headers["Cache-Control"] == "no-store", path
        finder = InlineFinder()
        finder.feed(text(response))
        assert finder.problems == [], (path, finder.problems)
    login = client.get("/login")
    finder = InlineFinder()
    finder.feed(text(login))
    assert finder.problems == [] and "default-src 'self'" in login.headers["Content-Security-Policy"]


def test_assets_are_fingerprinted_and_cached_long(client):
    page = text(client.get("/login"))
    css = re.search(r'href="(/assets/console\.css\?v=[0-9a-f]{12})"', page).group(1)
    response = client.get(css)
    assert (
        response.status_code == 200
        and response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    )
    assert client.get("/assets/nope.css").status_code == 404
    assert client.get("/assets/../../services/config.py").status_code == 404


def test_public_pages_are_gzipped_once_for_clients_that_accept_it(client, seeded):
    import gzip

    plain = client.get("/status/owned")
    packed = client.get("/status/owned", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert packed.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in packed.headers["Vary"]
    assert gzip.decompress(packed.get_data()) == plain.get_data()
    assert "Content-Encoding" not in plain.headers
    twin = client.get("/api/cloudeye/v1/public/status/owned", headers={"Accept-Encoding": "gzip"})
    assert twin.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(twin.get_data()) == client.get("/api/cloudeye/v1/public/status/owned").get_data()


def test_a_queued_report_shows_its_progress(app, console_as, seeded):
    """A report above IMPORT_QUEUE_BYTES: the form leads to the import's page, which reloads itself
    (a meta refresh, no script) until the sync worker is done."""
    from sync.imports import ImportQueue
    from tests.services.test_imports import nuclei_report

    owner = console_as(seeded["owner"])
    site = seeded["site"]
    saved = app.config["IMPORT_QUEUE_BYTES"]
    app.config["IMPORT_QUEUE_BYTES"] = 1024
    try:
        queued = owner.post(
            f"/sites/{site.id}/imports", data={"file": (io.BytesIO(nuclei_report(50)), "big.jsonl")}
        )
    finally:
        app.config["IMPORT_QUEUE_BYTES"] = saved
    assert queued.status_code == 302
    status_url = queued.headers["Location"]
    assert re.fullmatch(rf"/sites/{site.id}/imports/\d+", status_url)
    page = owner.get(status_url)
    assert page.status_code == 200 and 'data-state="queued"' in page.get_data(as_text=True)
    assert '<meta http-equiv="refresh"' in page.get_data(as_text=True) and "queued" in text(page)
    assert 'data-test="import-link"' in owner.get(f"/sites/{site.id}").get_data(as_text=True)
    # Another operator does not see it; the import of another site is not found under this one.
    assert console_as(create_user("operator")).get(status_url).status_code == 404
    other_site = create_site(seeded["owner"])
    assert owner.get(status_url.replace(f"/sites/{site.id}/", f"/sites/{other_site.id}/")).status_code == 404

    assert ImportQueue(app.config["DATA_DIR"]).run() == {"done": 1}
    page = owner.get(status_url)
    body = page.get_data(as_text=True)
    assert 'data-state="done"' in body and "refresh" not in body and "50 new" in text(page)


def test_the_console_pager_says_more_than(console_as, monkeypatch):
    """The console shows a bounded total as "N+" pages and keeps the link to the next page."""
    from console.views import pages
    from services import paging

    user = create_user("operator")
    for number in range(25):
        create_site(user, name=f"site-{number:02d}")
    monkeypatch.setattr(paging, "COUNT_EXACT_UP_TO", 10)
    monkeypatch.setattr(pages, "PER_PAGE", 5)
    html = console_as(user).get("/").get_data(as_text=True)
    assert 'data-test="pager-estimate"' in html and "page 1 of 2+" in html and "more than 10 match" in html
    assert "page=2" in html
