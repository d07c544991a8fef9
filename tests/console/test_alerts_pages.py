"""The console's alert pages through the test client: channels (the form with the services' messages,
masked URLs, a write-only secret, the test send against a real local receiver, the delivery log) and
maintenance windows (one-off in a time zone, weekly, the site page's notice), with the console's rules:
422 with the form again, 400 without CSRF, 404 for another user's, 403 for what a role may not do."""

import html
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from services.alerts import channels, maintenance
from services.extensions import db
from services.models import Channel, MaintenanceWindow, Notification
from tests.console.test_pages import InlineFinder
from tests.factories import create_site, create_user, share
from tests.receivers import WebhookReceiver

HOOK = "https://hooks.example.test/services/T000/B000/XXXXtoken?key=abc123"
MASKED_HOOK = "https://hooks.example.test/services/****?key=****"
DINGTALK = "dingtalk://s3cretSIGNkey@0123456789abcdef0123456789abcdef/"
VALID_CHANNEL = {
    "name": "ops",
    "url": HOOK,
    "events": ["site.down", "site.up"],
    "sites": "all",
    "min_severity": "high",
    "remind_every_min": "0",
    "language": "en",
    "enabled": "y",
}


def text(response) -> str:
    return response.get_data(as_text=True)


def errors_in(response) -> list[str]:
    found = re.findall(r'<small class="error">([^<]*)</small>|<div class="flash error" role="alert">(.*?)</div>',
                       text(response), re.S)  # fmt: skip
    return [html.unescape(re.sub(r"<[^>]+>", " ", field or whole)).strip() for field, whole in found]


def count(model) -> int:
    db.session.rollback()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


@pytest.fixture
def receiver():
    server = WebhookReceiver()
    yield server
    server.close()


def make_channel(owner, **fields) -> Channel:
    return channels.create_channel(owner, {"name": "hook", "url": HOOK, **fields})


def log_row(channel, status="sent", event="site.down", site=None, minutes_ago=0) -> Notification:
    at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    row = Notification(
        channel_id=channel.id,
        site_id=site.id if site else None,
        event=event,
        delivery_id=str(uuid.uuid4()),
        occurred_at=at,
        payload={
            "site": {"id": site.id, "name": site.name, "url": site.url} if site else None,
            "details": {},
        },
        status=status,
        attempts=1,
        next_attempt_at=at,
        last_error="receiver says no" if status == "failed" else None,
        created_at=at,
        sent_at=at if status == "sent" else None,
    )
    db.session.add(row)
    db.session.commit()
    return row


# --- navigation, login, CSRF, ownership ---------------------------------------------------------------


def test_the_alert_pages_need_a_login_and_are_in_the_navigation(client, console_as):
    for path in ("/channels", "/channels/new", "/channels/1", "/maintenance", "/maintenance/new"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login?next="), path
    page = text(console_as(create_user("viewer")).get("/channels"))
    assert 'href="/channels" class="active" aria-current="page"' in page and 'href="/maintenance"' in page


def test_every_alert_form_refuses_a_missing_or_wrong_csrf_token(console_as):
    owner = create_user("operator")
    console = console_as(owner)
    channel = make_channel(owner)
    site = create_site(owner)
    window = maintenance.create_window(
        owner, {"title": "w", "site_ids": [site.id], "weekdays": ["sun"], "start_time": "02:00",
                "duration_min": 60},
    )  # fmt: skip
    posts = {
        "/channels/new": VALID_CHANNEL,
        f"/channels/{channel.id}/edit": VALID_CHANNEL,
        f"/channels/{channel.id}/test": {},
        f"/channels/{channel.id}/delete": {},
        "/maintenance/new": {"title": "x"},
        f"/maintenance/{window.id}/edit": {"title": "x"},
        f"/maintenance/{window.id}/delete": {},
    }
    for path, data in posts.items():
        missing = console.post(path, data=data, csrf=False)
        assert missing.status_code == 400 and "CSRF" in text(missing), path
        assert console.post(path, data={**data, "csrf_token": "forged"}, csrf=False).status_code == 400, path
    assert count(Channel) == 1 and count(MaintenanceWindow) == 1
    assert db.session.get(Channel, channel.id).name == "hook"
    assert count(Notification) == 0  # no test was sent


def test_another_users_channel_or_window_is_404(console_as):
    owner = create_user("operator")
    site = create_site(owner)
    channel = make_channel(owner)
    window = maintenance.create_window(
        owner, {"title": "w", "site_ids": [site.id], "starts_at": datetime(2030, 1, 1, tzinfo=UTC),
                "ends_at": datetime(2030, 1, 2, tzinfo=UTC)},
    )  # fmt: skip
    outsider = console_as(create_user("operator"))
    for path in (f"/channels/{channel.id}", f"/channels/{channel.id}/edit", f"/maintenance/{window.id}/edit"):
        assert outsider.get(path).status_code == 404, path
    for path, data in {
        f"/channels/{channel.id}/edit": VALID_CHANNEL,
        f"/channels/{channel.id}/test": {},
        f"/channels/{channel.id}/delete": {},
        f"/maintenance/{window.id}/edit": {"title": "mine now", "kind": "once"},
        f"/maintenance/{window.id}/delete": {},
    }.items():
        response = outsider.post(path, data=data)
        assert response.status_code == 404 and "<html" in text(response), path
    assert "data-channel-id" not in text(outsider.get("/channels"))
    assert "data-window-id" not in text(outsider.get("/maintenance"))
    db.session.expire_all()
    assert db.session.get(Channel, channel.id).name == "hook" and db.session.get(MaintenanceWindow, window.id)
    assert count(Notification) == 0


# --- channels ---------------------------------------------------------------------------------------------


def test_a_channel_is_created_with_the_forms_values_and_its_secrets_stay_hidden(console_as):
    owner = create_user("operator")
    console = console_as(owner)
    shop = create_site(owner, name="Shop")
    create_site(owner, name="Blog")
    form = console.get("/channels/new")
    assert form.status_code == 200 and "Shop" in text(form) and "Blog" in text(form)
    response = console.post(
        "/channels/new",
        data={**VALID_CHANNEL, "secret": "hush-hush", "sites": "chosen", "site_ids": [str(shop.id)],
              "min_severity": "critical", "remind_every_min": "30", "language": "zh-CN"},
    )  # fmt: skip
    assert response.status_code == 302, errors_in(response)
    channel = db.session.scalar(sa.select(Channel))
    assert response.headers["Location"] == f"/channels/{channel.id}"
    assert (channel.name, channel.url, channel.kind, channel.secret) == ("ops", HOOK, "webhook", "hush-hush")
    assert channel.events == ["site.down", "site.up"] and channel.site_ids == [shop.id]
    assert (channel.min_severity, channel.remind_every_min, channel.language) == ("critical", 30, "zh-CN")
    assert channel.enabled and channel.owner_id == owner.id
    for path in ("/channels", f"/channels/{channel.id}", f"/channels/{channel.id}/edit"):
        page = text(console.get(path))
        assert MASKED_HOOK.replace("&", "&amp;") in page, path
        assert "XXXXtoken" not in page and "abc123" not in page and "hush-hush" not in page, path
    assert "Shop" in text(console.get(f"/channels/{channel.id}"))


def test_an_apprise_channel_is_masked_by_apprise_and_every_site_is_the_default(console_as):
    owner = create_user("viewer")  # any role may own channels
    console = console_as(owner)
    response = console.post("/channels/new", data={**VALID_CHANNEL, "name": "钉钉", "url": DINGTALK})
    assert response.status_code == 302, errors_in(response)
    channel = db.session.scalar(sa.select(Channel))
    assert channel.kind == "apprise" and channel.all_sites and channel.site_ids is None
    page = text(console.get(f"/channels/{channel.id}/edit"))
    assert "s3cretSIGNkey" not in page and "0123456789abcdef0123456789abcdef" not in page
    assert f'value="{html.escape(channels.masked_url(channel))}"' in page


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"name": ""}, "name", "must be 1 to 200 characters long"),
        ({"name": "x" * 201}, "name", "must be 1 to 200 characters long"),
        ({"url": ""}, "url", "must be 1 to 2048 characters long"),
        ({"url": "foo://bar"}, "url", channels.url_problem),
        ({"url": "https://"}, "url", "a webhook URL needs a host"),
        ({"url": "dingtalk://"}, "url", channels.url_problem),
        ({"url": DINGTALK, "secret": "only for webhooks"}, "secret", "only webhooks (http/https) are signed"),
        ({"events": []}, "events", "at least one of site.down, site.up"),
        ({"events": ["site.exploded"]}, "events", "each one of site.down, site.up"),
        ({"sites": "chosen"}, "site_ids", "at least one site, or null for every site the owner can see"),
        ({"min_severity": "urgent"}, "min_severity", "one of critical, high, medium, low, info"),
        ({"remind_every_min": "99999"}, "remind_every_min", "must be between 0 and 10080"),
        ({"language": "fr"}, "language", "one of en, zh-CN"),
    ],
)
def test_bad_channel_input_gives_the_form_again_with_the_services_message(
    operator, console_as, changes, field, message
):
    create_site(operator.user)  # a site to choose (or not)
    if callable(message):  # Apprise's own words for a URL it cannot use
        message = message(changes["url"])
    form = console_as(operator.user).post("/channels/new", data={**VALID_CHANNEL, **changes})
    assert form.status_code == 422
    assert any(message in error for error in errors_in(form)), errors_in(form)
    assert f'name="{field}"' in text(form)
    # The API refuses the same body, on the same field.
    body = {"name": "ops", "url": HOOK, "events": VALID_CHANNEL["events"]}
    body.update({name: value for name, value in changes.items() if name != "sites"})
    if changes.get("sites") == "chosen":
        body["site_ids"] = []
    if "remind_every_min" in changes:
        body["remind_every_min"] = int(changes["remind_every_min"])
    answer = operator.post("/channels", json=body).get_json()
    assert answer["status"] == 422 and field in answer["errors"], answer
    assert count(Channel) == 0


def test_a_channel_form_with_bad_types_says_so_and_keeps_what_was_typed(console_as):
    console = console_as(create_user("operator"))
    form = console.post(
        "/channels/new",
        data={**VALID_CHANNEL, "name": "Kept", "remind_every_min": "often", "sites": "chosen",
              "site_ids": ["x"], "secret": "typed secret"},
    )  # fmt: skip
    assert form.status_code == 422
    assert "Not a valid integer." in errors_in(form)
    assert 'value="Kept"' in text(form) and 'value="often"' in text(form)
    assert "typed secret" not in text(form)  # a secret is never sent back, not even the one just typed
    nul = console.post("/channels/new", data={**VALID_CHANNEL, "name": "a\x00b"})
    assert nul.status_code == 422 and "must not contain NUL characters" in errors_in(nul)
    assert count(Channel) == 0


def test_a_viewer_owns_channels_only_about_the_sites_it_can_see(console_as):
    owner = create_user("operator")
    shared, hidden = create_site(owner, name="Shared"), create_site(owner, name="Hidden")
    viewer = create_user("viewer")
    share(shared, viewer, "read")
    console = console_as(viewer)
    form = text(console.get("/channels/new"))
    assert "Shared" in form and "Hidden" not in form
    forged = console.post(
        "/channels/new", data={**VALID_CHANNEL, "sites": "chosen", "site_ids": [str(hidden.id)]}
    )
    assert forged.status_code == 422 and f"site {hidden.id} not found" in errors_in(forged)
    assert "Hidden" not in text(forged)
    ok = console.post(
        "/channels/new", data={**VALID_CHANNEL, "sites": "chosen", "site_ids": [str(shared.id)]}
    )
    assert ok.status_code == 302
    assert db.session.scalar(sa.select(Channel)).site_ids == [shared.id]


def test_editing_keeps_the_masked_url_and_the_secret_unless_changed(console_as):
    owner = create_user("operator")
    console = console_as(owner)
    channel = make_channel(owner, secret="first secret")
    form = console.get(f"/channels/{channel.id}/edit")
    assert 'name="remove_secret"' in text(form) and "first secret" not in text(form)
    assert 'id="secret" name="secret" type="password" value="">' in text(form)
    # What the form shows, sent back as it is: nothing changes but the name.
    unchanged = {**VALID_CHANNEL, "url": MASKED_HOOK, "name": "renamed"}
    assert console.post(f"/channels/{channel.id}/edit", data=unchanged).status_code == 302
    db.session.expire_all()
    saved = db.session.get(Channel, channel.id)
    assert (saved.name, saved.url, saved.secret) == ("renamed", HOOK, "first secret")
    assert (
        console.post(f"/channels/{channel.id}/edit", data={**unchanged, "secret": "second"}).status_code
        == 302
    )
    db.session.expire_all()
    assert db.session.get(Channel, channel.id).secret == "second"
    # A secret cannot stay on an Apprise URL: the service says so, and removing it is a checkbox.
    apprise = {**unchanged, "url": DINGTALK}
    refused = console.post(f"/channels/{channel.id}/edit", data=apprise)
    assert refused.status_code == 422 and any("only webhooks" in m for m in errors_in(refused))
    assert "second" not in text(refused)
    assert (
        console.post(f"/channels/{channel.id}/edit", data={**apprise, "remove_secret": "y"}).status_code
        == 302
    )
    db.session.expire_all()
    saved = db.session.get(Channel, channel.id)
    assert saved.url == DINGTALK and saved.secret is None and saved.kind == "apprise"
    assert 'name="remove_secret"' not in text(console.get(f"/channels/{channel.id}/edit"))
    # Unticked: disabled; "all my sites" back from chosen ones.
    site = create_site(owner)
    console.post(f"/channels/{channel.id}/edit",
                 data={**VALID_CHANNEL, "url": DINGTALK, "sites": "chosen", "site_ids": [str(site.id)]})  # fmt: skip
    db.session.expire_all()
    assert db.session.get(Channel, channel.id).site_ids == [site.id]
    data = {k: v for k, v in VALID_CHANNEL.items() if k != "enabled"}
    assert console.post(f"/channels/{channel.id}/edit", data={**data, "url": DINGTALK}).status_code == 302
    db.session.expire_all()
    saved = db.session.get(Channel, channel.id)
    assert not saved.enabled and saved.all_sites


def test_an_admin_sees_every_channel_and_edits_with_the_owners_sites(console_as):
    owner = create_user("operator", username="olivia")
    mine = create_site(owner, name="Olivia's shop")
    create_site(create_user("operator"), name="Someone else's")
    channel = make_channel(owner)
    admin = console_as(create_user("admin"))
    listing = text(admin.get("/channels"))
    assert "olivia" in listing and "hook" in listing
    form = text(admin.get(f"/channels/{channel.id}/edit"))
    assert "Olivia&#39;s shop" in form and "Someone else" not in form
    assert "olivia" in text(admin.get(f"/channels/{channel.id}"))
    response = admin.post(
        f"/channels/{channel.id}/edit",
        data={**VALID_CHANNEL, "url": MASKED_HOOK, "sites": "chosen", "site_ids": [str(mine.id)]},
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Channel, channel.id).site_ids == [mine.id]


def test_the_test_button_sends_now_and_says_how_it_went(console_as, receiver):
    owner = create_user("viewer")
    console = console_as(owner)
    channel = make_channel(owner, url=receiver.url(), secret="s3cret", enabled=False)
    response = console.post(f"/channels/{channel.id}/test")
    assert response.status_code == 302 and response.headers["Location"] == f"/channels/{channel.id}"
    page = text(console.get(response.headers["Location"]))
    assert re.search(r'class="flash success"[^>]*>Test message delivered in \d+ ms\.<', page), page
    [request] = receiver.received
    assert request.json["event"] == "test" and request.signature_ok("s3cret")
    receiver.statuses = [500]
    back = console.post(f"/channels/{channel.id}/test", data={"next": "/channels?page=1"})
    assert back.headers["Location"] == "/channels?page=1"
    listing = text(console.get("/channels"))
    assert "The test message was not delivered: 127.0.0.1:" in listing and "answered HTTP 500" in listing
    assert 'data-test="last-delivery"><span class="status status-failed">failed</span>' in listing
    assert (
        console.post(f"/channels/{channel.id}/test", data={"next": "https://evil.example/"}).headers[
            "Location"
        ]
        == f"/channels/{channel.id}"
    )
    rows = db.session.scalars(sa.select(Notification).order_by(Notification.id)).all()
    assert [row.status for row in rows] == ["sent", "failed", "sent"]


def test_the_delivery_log_is_paginated_and_filtered_by_status(console_as):
    owner = create_user("operator")
    console = console_as(owner)
    site = create_site(owner, name="Shop")
    channel = make_channel(owner)
    other = make_channel(create_user("operator"))
    for minute in range(55):
        log_row(channel, status="sent", site=site, minutes_ago=minute + 10)
    log_row(channel, status="failed", event="tamper.opened", site=site, minutes_ago=1)
    log_row(channel, status="pending", event="test", minutes_ago=0)
    log_row(other, status="failed")
    first = text(console.get(f"/channels/{channel.id}"))
    assert first.count("data-notification-id=") == 50 and "page 1 of 2" in first
    assert "receiver says no" in first and "Shop" in first
    second = text(console.get(f"/channels/{channel.id}?page=2"))
    assert second.count("data-notification-id=") == 7
    failed = text(console.get(f"/channels/{channel.id}?status=failed"))
    assert failed.count("data-notification-id=") == 1 and "tamper.opened" in failed
    assert text(console.get(f"/channels/{channel.id}?status=pending")).count("data-notification-id=") == 1
    for query in ("status=bogus", "page=-3", "page=abc", "status=%00"):
        assert console.get(f"/channels/{channel.id}?{query}").status_code == 200, query
    assert "No delivery with this status." in text(
        console.get(f"/channels/{make_channel(owner).id}?status=sent")
    )
    listing = text(console.get("/channels"))
    assert (
        'data-test="last-delivery"><span class="status status-pending">pending</span> <code>test</code>'
        in listing
    )


def test_delete_a_channel(console_as):
    owner = create_user("operator")
    console = console_as(owner)
    channel = make_channel(owner)
    log_row(channel)
    response = console.post(f"/channels/{channel.id}/delete")
    assert response.status_code == 302 and response.headers["Location"] == "/channels"
    assert count(Channel) == 0 and count(Notification) == 0


# --- maintenance windows -----------------------------------------------------------------------------------


@pytest.fixture
def maintainer(console_as):
    owner = create_user("operator")
    console = console_as(owner)
    console.site = create_site(owner, name="Shop")
    return console


def test_a_one_off_window_is_read_in_its_time_zone(maintainer):
    site = maintainer.site
    form = maintainer.get(f"/maintenance/new?site_id={site.id}")
    assert form.status_code == 200
    assert f'value="{site.id}" checked' in text(form) and '<option selected value="UTC">UTC</option>' in text(
        form
    )
    response = maintainer.post(
        "/maintenance/new",
        data={"title": "DB upgrade", "kind": "once", "starts_at": "2030-03-01T02:00",
              "ends_at": "2030-03-01T04:30", "timezone": "Asia/Shanghai", "site_ids": [str(site.id)]},
    )  # fmt: skip
    assert response.status_code == 302 and response.headers["Location"] == "/maintenance"
    window = db.session.scalar(sa.select(MaintenanceWindow))
    assert window.starts_at == datetime(2030, 2, 28, 18, 0, tzinfo=UTC)  # 02:00 in Shanghai (UTC+8)
    assert window.ends_at == datetime(2030, 2, 28, 20, 30, tzinfo=UTC)
    assert window.timezone == "Asia/Shanghai" and not window.recurring and window.site_ids == [site.id]
    listing = text(maintainer.get("/maintenance"))
    assert "DB upgrade" in listing and "Shop" in listing and "next" in listing
    edit = text(maintainer.get(f"/maintenance/{window.id}/edit"))
    assert 'value="2030-03-01T02:00"' in edit and 'value="2030-03-01T04:30"' in edit
    assert '<option selected value="Asia/Shanghai">' in edit


def test_a_weekly_window_and_switching_kinds(maintainer):
    site = maintainer.site
    weekly = {"title": "patching", "kind": "weekly", "weekdays": ["sun", "wed"], "start_time": "02:00",
              "duration_min": "90", "timezone": "Europe/Berlin", "site_ids": [str(site.id)]}  # fmt: skip
    assert maintainer.post("/maintenance/new", data=weekly).status_code == 302
    window = db.session.scalar(sa.select(MaintenanceWindow))
    assert (window.weekdays, window.start_time, window.duration_min) == (["wed", "sun"], "02:00", 90)
    assert window.timezone == "Europe/Berlin" and window.starts_at is None
    edit = text(maintainer.get(f"/maintenance/{window.id}/edit"))
    assert 'checked data-kind="weekly"' in edit and 'value="sun" checked' in edit and 'value="90"' in edit
    # Switched to once without its times: said, not silently kept weekly.
    switched = maintainer.post(f"/maintenance/{window.id}/edit", data={**weekly, "kind": "once"})
    assert switched.status_code == 422
    assert errors_in(switched).count("Required for a one-off window.") == 2
    once = {**weekly, "kind": "once", "starts_at": "2030-01-01T00:00", "ends_at": "2030-01-01T01:00"}
    assert maintainer.post(f"/maintenance/{window.id}/edit", data=once).status_code == 302
    db.session.expire_all()
    window = db.session.get(MaintenanceWindow, window.id)
    assert not window.recurring and window.starts_at == datetime(2029, 12, 31, 23, 0, tzinfo=UTC)
    assert maintainer.post(f"/maintenance/{window.id}/edit", data=weekly).status_code == 302
    db.session.expire_all()
    assert db.session.get(MaintenanceWindow, window.id).recurring


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"title": ""}, "title", "must be 1 to 200 characters long"),
        ({"site_ids": []}, "site_ids", "at least one site"),
        ({"starts_at": ""}, "starts_at", "required (or give a weekly recurrence)"),
        ({"ends_at": "2030-01-01T00:00"}, "ends_at", "must be after starts_at"),
        ({"starts_at": "yesterday"}, "starts_at", "Not a valid datetime."),
        ({"starts_at": "1900-01-01T00:00"}, "starts_at", "must be between 1970 and 9999"),
        ({"ends_at": "9999-12-31T23:59", "timezone": "America/New_York"}, "ends_at", "Not a valid datetime."),
        ({"timezone": "Mars/Olympus"}, "timezone", "unknown time zone"),
        ({"timezone": "x" * 300}, "timezone", "unknown time zone"),
        ({"kind": "weekly", "weekdays": []}, "weekdays", "at least one of mon, tue, wed, thu, fri, sat, sun"),
        (
            {"kind": "weekly", "weekdays": ["someday"]},
            "weekdays",
            "each one of mon, tue, wed, thu, fri, sat, sun",
        ),
        ({"kind": "weekly", "start_time": "25:00"}, "start_time", "must be HH:MM (24-hour)"),
        (
            {"kind": "weekly", "start_time": ""},
            "start_time",
            "required (HH:MM, 24-hour, in the window's timezone)",
        ),
        ({"kind": "weekly", "duration_min": "0"}, "duration_min", "must be between 1 and 10080"),
        ({"kind": "weekly", "duration_min": "long"}, "duration_min", "Not a valid integer."),
        ({"kind": "weekly", "timezone": "Mars/Olympus"}, "timezone", "unknown time zone"),
    ],
)
def test_bad_window_input_gives_the_form_again(maintainer, changes, field, message):
    data = {"title": "w", "kind": "once", "starts_at": "2030-01-01T00:00", "ends_at": "2030-01-01T02:00",
            "weekdays": ["sun"], "start_time": "02:00", "duration_min": "60", "timezone": "UTC",
            "site_ids": [str(maintainer.site.id)], **changes}  # fmt: skip
    form = maintainer.post("/maintenance/new", data=data)
    assert form.status_code == 422
    assert any(message in error for error in errors_in(form)), errors_in(form)
    assert f'name="{field}"' in text(form)
    assert count(MaintenanceWindow) == 0


def test_who_may_schedule_maintenance(console_as):
    owner = create_user("operator")
    site = create_site(owner, name="Shop")
    viewer = create_user("viewer")
    share(site, viewer, "write")
    as_viewer = console_as(viewer)
    assert as_viewer.get("/maintenance/new").status_code == 403
    assert as_viewer.post("/maintenance/new", data={"title": "x"}).status_code == 403
    assert 'data-test="add-window"' not in text(as_viewer.get("/maintenance"))
    reader = create_user("operator")
    share(site, reader, "read")
    as_reader = console_as(reader)
    assert "Shop" not in text(as_reader.get("/maintenance/new"))  # offered only what it may change
    forged = as_reader.post(
        "/maintenance/new",
        data={"title": "x", "kind": "once", "starts_at": "2030-01-01T00:00", "ends_at": "2030-01-01T01:00",
              "site_ids": [str(site.id)]},
    )  # fmt: skip
    assert forged.status_code == 403 and any("may read but not change" in m for m in errors_in(forged))
    assert 'name="title"' in text(forged)
    hidden = create_site(create_user("operator"))
    unknown = as_reader.post(
        "/maintenance/new",
        data={"title": "x", "kind": "once", "starts_at": "2030-01-01T00:00", "ends_at": "2030-01-01T01:00",
              "site_ids": [str(hidden.id)]},
    )  # fmt: skip
    assert unknown.status_code == 422 and f"site {hidden.id} not found" in errors_in(unknown)
    assert count(MaintenanceWindow) == 0


def test_delete_a_window(maintainer):
    window = maintenance.create_window(
        maintainer.user, {"title": "w", "site_ids": [maintainer.site.id], "weekdays": ["mon"],
                          "start_time": "01:00", "duration_min": 30},
    )  # fmt: skip
    response = maintainer.post(f"/maintenance/{window.id}/delete")
    assert response.status_code == 302 and count(MaintenanceWindow) == 0


def test_the_site_page_says_when_the_site_is_in_maintenance_and_the_next_window(console_as):
    owner = create_user("operator")
    site = create_site(owner, name="Shop")
    reader = create_user("viewer")
    share(site, reader, "read")
    now = datetime.now(UTC)
    page = text(console_as(owner).get(f"/sites/{site.id}"))
    assert "No maintenance planned." in page and f'href="/maintenance/new?site_id={site.id}"' in page
    maintenance.create_window(
        owner, {"title": "DB upgrade", "site_ids": [site.id], "starts_at": now - timedelta(minutes=5),
                "ends_at": now + timedelta(hours=1)},
    )  # fmt: skip
    maintenance.create_window(
        owner, {"title": "Later patching", "site_ids": [site.id], "starts_at": now + timedelta(days=2),
                "ends_at": now + timedelta(days=2, hours=1)},
    )  # fmt: skip
    maintenance.create_window(
        owner, {"title": "Weekly", "site_ids": [site.id], "weekdays": ["mon", "tue", "wed", "thu", "fri", "sat",
                "sun"], "start_time": "00:00", "duration_min": 1, "timezone": "Pacific/Kiritimati"},
    )  # fmt: skip
    for console in (console_as(owner), console_as(reader)):
        page = html.unescape(text(console.get(f"/sites/{site.id}")))
        assert (
            'data-test="in-maintenance"' in page and "In maintenance until" in page and "(DB upgrade)" in page
        )
        assert "Next maintenance: Weekly," in page  # the daily one comes before the one in two days
    assert 'data-test="schedule-maintenance"' not in text(console_as(reader).get(f"/sites/{site.id}"))


def test_the_alert_pages_have_the_strict_csp_and_nothing_inline(console_as, receiver):
    owner = create_user("admin")
    console = console_as(owner)
    site = create_site(owner)
    channel = make_channel(owner, url=receiver.url(), secret="x", site_ids=[site.id])
    log_row(channel, status="failed", site=site)
    window = maintenance.create_window(
        owner, {"title": "w", "site_ids": [site.id], "weekdays": ["sun"], "start_time": "02:00", "duration_min": 60},
    )  # fmt: skip
    for path in ("/channels", "/channels/new", f"/channels/{channel.id}", f"/channels/{channel.id}/edit",
                 "/maintenance", "/maintenance/new", f"/maintenance/{window.id}/edit", f"/sites/{site.id}"):  # fmt: skip
        response = console.get(path)
        assert response.status_code == 200, path
        assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
        assert response.headers["Cache-Control"] == "no-store", path
        finder = InlineFinder()
        finder.feed(text(response))
        assert finder.problems == [], (path, finder.problems)


def test_the_alert_pages_speak_chinese(console_as):
    owner = create_user("operator")
    console = console_as(owner)
    make_channel(owner)
    headers = {"Accept-Language": "zh-CN"}
    assert "告警渠道" in text(console.get("/channels", headers=headers))
    assert "维护窗口" in text(console.get("/maintenance", headers=headers))


ODD_VALUES = [
    "",
    "\x00",
    "x" * 5000,
    "-1",
    "1e309",
    "99999999999999999999999",
    "９",
    "<script>",
    "null",
    "../../etc",
]


def test_no_input_on_the_alert_forms_is_a_500(console_as):
    owner = create_user("operator")
    console = console_as(owner)
    site = create_site(owner)
    channel = make_channel(owner)
    window = maintenance.create_window(
        owner,
        {"title": "w", "site_ids": [site.id], "weekdays": ["sun"], "start_time": "02:00", "duration_min": 60},
    )
    channel_form = {**VALID_CHANNEL, "sites": "chosen", "site_ids": [str(site.id)], "secret": "s"}
    window_form = {"title": "w", "kind": "weekly", "starts_at": "2030-01-01T00:00", "ends_at": "2030-01-01T02:00",
                   "weekdays": ["sun"], "start_time": "02:00", "duration_min": "60", "timezone": "UTC",
                   "site_ids": [str(site.id)]}  # fmt: skip
    for path, form in (
        ("/channels/new", channel_form),
        (f"/channels/{channel.id}/edit", channel_form),
        ("/maintenance/new", window_form),
        (f"/maintenance/{window.id}/edit", window_form),
        (f"/maintenance/{window.id}/edit", {**window_form, "kind": "once"}),
    ):
        for name in form:
            for value in ODD_VALUES:
                response = console.post(path, data={**form, name: value})
                assert response.status_code in (302, 422), (path, name, value, response.status_code)
    assert console.get("/channels").status_code == 200 and console.get("/maintenance").status_code == 200
