"""Alerts end to end, in process: a site behind a local HTTP server checked by the real worker
(`Worker.run_once`), its notifications sent by the real sender (`Notifier.run_once`) to real local
receivers — a webhook server, an SMTP server through Apprise's mailto://, and DingTalk/WeCom/Feishu
payloads caught at the HTTP boundary (their hosts are not reachable here)."""

import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
import urllib3.util.connection

from services.alerts import events
from services.extensions import db
from services.models import (
    Channel,
    ChannelSite,
    Incident,
    MaintenanceSite,
    MaintenanceWindow,
    Notification,
    Site,
    SiteMember,
    UsabilityRollup,
)
from services.usability import CheckResult, record_results, summary
from sync.notify import Notifier
from tests.factories import create_site, create_user, share
from tests.receivers import SmtpReceiver, WebhookReceiver

DOWN_PAGE = {"status": 503, "body": "down for maintenance"}


@pytest.fixture
def receiver():
    server = WebhookReceiver()
    yield server
    server.close()


@pytest.fixture
def notifier(app, ctx, monkeypatch):
    monkeypatch.setitem(app.config, "NOTIFY_BACKOFF_BASE_S", 0.02)
    monkeypatch.setitem(app.config, "NOTIFY_TIMEOUT_S", 5)
    monkeypatch.setitem(app.config, "CLOUDEYE_PUBLIC_URL", "https://cloudeye.example.test")
    instance = Notifier(app, "test-notifier")
    yield instance
    instance.close()


def add_channel(owner, url, **fields) -> Channel:
    site_ids = fields.pop("site_ids", None)
    channel = Channel(
        owner_id=owner.id,
        name=fields.pop("name", "ops"),
        url=url,
        kind="webhook" if url.startswith("http") else "apprise",
        events=fields.pop(
            "events",
            ["site.down", "site.up", "site.flapping", "tls.expiring", "tamper.opened", "findings.new"],
        ),
        all_sites=site_ids is None,
        **fields,
    )
    channel.sites = [ChannelSite(site_id=site_id) for site_id in site_ids or ()]
    db.session.add(channel)
    db.session.commit()
    return channel


def check(worker, site_id: int) -> None:
    """One real check of the site now (its next slot made due)."""
    db.session.rollback()
    site = db.session.get(Site, site_id)
    site.next_check_at = datetime.now(UTC)
    db.session.commit()
    report = worker.run_once()
    assert report.stored == 1, report
    db.session.rollback()


def deliver(notifier) -> dict:
    counts = notifier.run_once()
    db.session.rollback()
    return counts


def rows(*where) -> list[Notification]:
    db.session.rollback()
    return db.session.scalars(sa.select(Notification).where(*where).order_by(Notification.id)).all()


def test_one_down_and_one_up_per_channel_signed_and_actionable(worker, notifier, web, operator, receiver):
    other = WebhookReceiver()
    try:
        site = create_site(operator.user, name="Shop", url=web.set("/", "<p>hi</p>"), max_retries=1)
        add_channel(operator.user, receiver.url(), secret="hush")
        add_channel(operator.user, other.url("/other"))
        check(worker, site.id)  # up: nothing to say
        web.set("/", **DOWN_PAGE)
        for _ in range(4):  # pending, then down, then still down twice
            check(worker, site.id)
            deliver(notifier)
        web.set("/", "<p>back</p>")
        for _ in range(2):
            check(worker, site.id)
            deliver(notifier)
        for server in (receiver, other):
            assert [e["event"] for e in server.events()] == ["site.down", "site.up"]
        down, up = receiver.events()
        assert all(r.signature_ok("hush") for r in receiver.received)
        assert down["site"] == {"id": site.id, "name": "Shop", "url": site.url}
        assert down["summary"] == "[DOWN] Shop" and "503" in down["details"]["cause"]
        assert down["link"] == f"https://cloudeye.example.test/sites/{site.id}"
        assert up["details"]["downtime_s"] > 0 and up["details"]["down_since"] == down["details"]["since"]
        assert {r.status for r in rows()} == {"sent"}
    finally:
        other.close()


def test_no_message_carries_the_credentials_of_a_sites_url(worker, notifier, web, operator, receiver):
    """The probe sends the site's user and password (basic auth); the webhook's `site.url` and every message
    name the site without them."""
    plain = web.set("/", **DOWN_PAGE)
    site = create_site(operator.user, name="Private", url=plain.replace("http://", "http://watch:s3cr3t-pw@"))
    add_channel(operator.user, receiver.url())
    check(worker, site.id)
    deliver(notifier)
    assert web.request_headers["/"]["Authorization"].startswith("Basic ")  # the probe had the password
    [down] = receiver.events()
    assert down["event"] == "site.down" and down["site"]["url"] == plain
    assert all(b"s3cr3t" not in r.body and b"watch" not in r.body for r in receiver.received)


def test_reminders_only_for_channels_that_ask(worker, notifier, web, operator, receiver):
    asking = WebhookReceiver()
    try:
        site = create_site(operator.user, url=web.set("/", **DOWN_PAGE))
        add_channel(operator.user, receiver.url())
        add_channel(operator.user, asking.url(), remind_every_min=30)
        check(worker, site.id)
        deliver(notifier)
        now = datetime.now(UTC)
        assert events.tick(now + timedelta(minutes=10)) == {"settled": 0, "announced": 0, "reminders": 0}
        assert events.tick(now + timedelta(minutes=31))["reminders"] == 1
        assert events.tick(now + timedelta(minutes=40))["reminders"] == 0  # 30 min after the reminder
        assert events.tick(now + timedelta(minutes=62))["reminders"] == 1
        deliver(notifier)
        assert [e["event"] for e in receiver.events()] == ["site.down"]
        sent = asking.events()
        assert [e["event"] for e in sent] == ["site.down"] * 3
        assert [e["details"].get("reminder", False) for e in sent] == [False, True, True]
        assert sent[1]["summary"].startswith("[STILL DOWN]")
        web.set("/", "ok")
        check(worker, site.id)
        assert events.tick(now + timedelta(minutes=200))["reminders"] == 0  # up again: no more
    finally:
        asking.close()


def test_flapping_collapses_into_one_message_until_stable(worker, notifier, web, operator, receiver):
    site = create_site(operator.user, url=web.set("/", "ok"))
    add_channel(operator.user, receiver.url())
    check(worker, site.id)
    for _ in range(5):  # ten state changes
        web.set("/", **DOWN_PAGE)
        check(worker, site.id)
        web.set("/", "ok")
        check(worker, site.id)
    deliver(notifier)
    assert [e["event"] for e in receiver.events()] == ["site.down", "site.up", "site.down", "site.flapping"]
    flapping = receiver.events("site.flapping")[0]
    assert flapping["details"]["changes"] == 4 and "[FLAPPING]" in flapping["summary"]
    db.session.rollback()
    assert db.session.get(Site, site.id).flapping_since is not None
    now = datetime.now(UTC)
    assert events.tick(now + timedelta(minutes=5))["settled"] == 0  # changed within the last 10 minutes
    assert events.tick(now + timedelta(minutes=11))["settled"] == 1
    deliver(notifier)
    settled = receiver.events()[-1]
    assert settled["event"] == "site.up" and settled["details"]["after_flapping"] is True
    assert len(receiver.events()) == 5


def test_maintenance_silences_flags_incidents_and_leaves_uptime_alone(
    worker, notifier, web, operator, receiver
):
    site = create_site(operator.user, url=web.set("/", "ok"))
    add_channel(operator.user, receiver.url())
    check(worker, site.id)
    now = datetime.now(UTC)
    window = MaintenanceWindow(
        owner_id=operator.user.id,
        title="upgrade",
        starts_at=now - timedelta(minutes=1),
        ends_at=now + timedelta(hours=1),
    )
    window.sites = [MaintenanceSite(site_id=site.id)]
    db.session.add(window)
    db.session.commit()
    web.set("/", **DOWN_PAGE)
    for _ in range(3):
        check(worker, site.id)
    deliver(notifier)
    assert receiver.received == [] and rows() == []
    [incident] = db.session.scalars(sa.select(Incident)).all()
    assert incident.in_maintenance is True and incident.announced_at is None
    hourly = db.session.scalars(sa.select(UsabilityRollup).where(UsabilityRollup.period == "hour")).all()
    assert sum(r.checks_total for r in hourly) == 1 and sum(r.checks_maintenance for r in hourly) == 3
    assert summary(operator.user, site.id)["uptime"]["24h"] == 100.0  # the down checks were in maintenance
    # The window ends with the site still down: the down is announced then, once.
    assert events.tick(now + timedelta(minutes=30))["announced"] == 0
    assert events.tick(now + timedelta(hours=2))["announced"] == 1
    assert events.tick(now + timedelta(hours=2))["announced"] == 0
    deliver(notifier)
    [down] = receiver.events()
    assert down["event"] == "site.down" and down["details"]["after_maintenance"] is True


def test_a_revoked_share_stops_the_news(worker, notifier, web, operator, viewer, receiver):
    site = create_site(operator.user, url=web.set("/", **DOWN_PAGE))
    member = share(site, viewer.user)
    add_channel(viewer.user, receiver.url())
    check(worker, site.id)  # down: the viewer's channel is owed a message
    [owed] = rows()
    assert owed.status == "pending" and owed.channel_id
    db.session.delete(db.session.get(SiteMember, (member.site_id, member.user_id)))
    db.session.commit()
    deliver(notifier)
    assert receiver.received == []
    [refused] = rows()
    assert refused.status == "failed" and "can no longer see" in refused.last_error
    web.set("/", "ok")
    check(worker, site.id)
    assert len(rows()) == 1  # the up is not even addressed to it


def test_a_receiver_failing_three_times_gets_the_message_once(worker, notifier, web, operator, receiver):
    receiver.statuses = [500, 500, 500]
    site = create_site(operator.user, url=web.set("/", **DOWN_PAGE))
    add_channel(operator.user, receiver.url())
    check(worker, site.id)
    give_up = time.monotonic() + 30
    while rows(Notification.status == "pending") and time.monotonic() < give_up:
        deliver(notifier)
        time.sleep(0.05)
    [row] = rows()
    assert row.status == "sent" and row.attempts == 4 and row.sent_at is not None
    assert len(receiver.received) == 4
    assert {r.headers["X-Cloudeye-Delivery"] for r in receiver.received} == {row.delivery_id}
    assert receiver.answered == 4


def test_eight_failures_give_up_with_the_last_error(worker, notifier, web, operator, receiver):
    receiver.statuses = [503] * 20
    site = create_site(operator.user, url=web.set("/", **DOWN_PAGE))
    add_channel(operator.user, receiver.url())
    check(worker, site.id)
    give_up = time.monotonic() + 60
    while rows(Notification.status == "pending") and time.monotonic() < give_up:
        deliver(notifier)
        time.sleep(0.05)
    [row] = rows()
    assert row.status == "failed" and row.attempts == 8 and "HTTP 503" in row.last_error
    assert len(receiver.received) == 8


def test_email_through_apprise_to_a_real_smtp_server(worker, notifier, web, operator):
    smtp = SmtpReceiver()
    try:
        site = create_site(operator.user, name="Shop", url=web.set("/", **DOWN_PAGE))
        query = "from=cloudeye@example.test&to=oncall@example.test&mode=insecure"
        add_channel(operator.user, f"mailto://127.0.0.1:{smtp.port}?{query}")
        add_channel(
            operator.user, f"mailto://127.0.0.1:{smtp.port}?{query.replace('oncall', 'zh')}", language="zh-CN"
        )
        check(worker, site.id)
        deliver(notifier)
        assert {r.status for r in rows()} == {"sent"}
        mails = {rcpt[0]: message for _, rcpt, message in smtp.messages}
        english, chinese = mails["oncall@example.test"], mails["zh@example.test"]
        assert english["Subject"] == "[DOWN] Shop" and chinese["Subject"] == "【故障】Shop"
        text = english.get_body(preferencelist=("plain",)).get_content()
        assert "Shop" in text and "is down since" in text and "503" in text
        assert f"https://cloudeye.example.test/sites/{site.id}" in text
        assert "无法访问" in chinese.get_body(preferencelist=("plain",)).get_content()
    finally:
        smtp.close()


CHAT_HOSTS = ("oapi.dingtalk.com", "qyapi.weixin.qq.com", "open.feishu.cn")


def test_dingtalk_wecom_and_feishu_payloads_at_the_http_boundary(
    worker, notifier, web, operator, certificates, monkeypatch
):
    """Apprise builds and sends the real requests; only the TCP connection to the services' hosts is
    pointed at a local TLS server whose certificate (for those names) the test CA signed."""
    chat = WebhookReceiver(certificates.server_context(30, dns_names=CHAT_HOSTS))
    connect = urllib3.util.connection.create_connection

    def to_local(address, *args, **kwargs):
        host, port = address
        return connect(("127.0.0.1", chat.port) if host in CHAT_HOSTS else address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", to_local)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certificates.ca_file)
    try:
        site = create_site(operator.user, name="Shop", url=web.set("/", **DOWN_PAGE))
        add_channel(operator.user, "dingtalk://SEC0123456789@0123456789abcdef0123456789abcdef/")
        add_channel(operator.user, "wecombot://wecom-key-123", language="zh-CN")
        add_channel(operator.user, "feishu://feishu-token-456")
        check(worker, site.id)
        deliver(notifier)
        assert {r.status for r in rows()} == {"sent"}, [r.last_error for r in rows()]
        by_path = {r.path.split("?")[0]: r for r in chat.received}
        ding = by_path["/robot/send"]
        assert "access_token=0123456789abcdef0123456789abcdef" in ding.path and "sign=" in ding.path
        assert ding.json["msgtype"] == "text" and "[DOWN] Shop" in ding.json["text"]["content"]
        wecom = by_path["/cgi-bin/webhook/send"]
        assert "key=wecom-key-123" in wecom.path and "【故障】Shop" in wecom.json["text"]["content"]
        feishu = by_path["/open-apis/bot/v2/hook/feishu-token-456/"]
        assert feishu.json["msg_type"] == "text" and "Shop" in feishu.json["content"]["text"]
    finally:
        chat.close()


def test_tls_expiry_once_per_threshold(app, ctx, operator):
    site = create_site(operator.user, url="https://shop.example.test/")
    add_channel(operator.user, "https://hooks.example.test/x")
    now = datetime.now(UTC).replace(microsecond=0)

    def seen(minutes: int, expires_in_days: float):
        at = now + timedelta(minutes=minutes)
        record_results(
            [
                CheckResult(
                    site.id, at, at, True, 200, 10.0, tls_expires_at=now + timedelta(days=expires_in_days)
                )
            ]
        )
        db.session.commit()

    seen(1, 40)
    seen(2, 13.5)  # crosses 14
    seen(3, 13.4)
    seen(4, 6.9)  # crosses 7
    seen(5, 90)  # renewed
    seen(6, 2.5)  # a new, short certificate: crosses 3
    sent = rows(Notification.event == "tls.expiring")
    assert [(r.payload["details"]["threshold_days"], r.payload["details"]["days_left"]) for r in sent] == [
        (14, 13),
        (7, 6),
        (3, 2),
    ]


def test_tamper_opened_carries_the_reason_and_a_diff_excerpt(worker, notifier, web, operator, receiver):
    site = create_site(operator.user, url=web.set("/", "<p>Welcome to the shop</p>"), tamper_enabled=True)
    add_channel(operator.user, receiver.url())
    check(worker, site.id)  # baseline
    web.set("/", "<p>HACKED by someone</p>")
    check(worker, site.id)
    deliver(notifier)
    [opened] = receiver.events("tamper.opened")
    assert opened["details"]["change_ratio"] > 0.05 and "HACKED" in opened["details"]["diff_excerpt"]
    assert opened["summary"].startswith("[TAMPER]")


def test_built_in_findings_are_one_message_per_refresh(worker, notifier, web, operator, receiver):
    site = create_site(operator.user, url=web.set("/", "<p>no headers</p>"))
    add_channel(operator.user, receiver.url(), min_severity="low")
    add_channel(operator.user, receiver.url("/critical-only"), min_severity="critical")
    check(worker, site.id)
    check(worker, site.id)  # the same findings: nothing new
    deliver(notifier)
    [news] = receiver.events("findings.new")
    assert news["details"]["counts"] == {"medium": 2, "low": 1} and news["details"]["total"] == 3
    assert news["details"]["source"] == "cloudeye checks"


def test_channel_selection_events_sites_and_disabled(worker, notifier, web, operator, receiver):
    one = create_site(operator.user, url=web.set("/one", **DOWN_PAGE))
    two = create_site(operator.user, url=web.set("/two", **DOWN_PAGE))
    add_channel(operator.user, receiver.url("/only-two"), site_ids=[two.id])
    add_channel(operator.user, receiver.url("/only-up"), events=["site.up"])
    add_channel(operator.user, receiver.url("/off"), enabled=False)
    admin = create_user("admin")
    add_channel(admin, receiver.url("/admin"))  # admins hear about every site
    assert worker.run_once().stored == 2  # both sites are new, so due
    deliver(notifier)
    paths = sorted((r.path, r.json["site"]["id"]) for r in receiver.received)
    assert paths == sorted([("/only-two", two.id), ("/admin", one.id), ("/admin", two.id)])
