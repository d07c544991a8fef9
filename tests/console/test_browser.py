"""The console in a real Chromium (Debian's, driven by Playwright): what a person does, on pages that
must raise no console error and no Content-Security-Policy violation (checked by the `browse` fixture
after every test)."""

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services import status_pages
from services.alerts import channels, maintenance
from services.extensions import db
from services.models import (
    Channel,
    Finding,
    Incident,
    MaintenanceWindow,
    Notification,
    Site,
    TamperEvent,
    UsabilityCheck,
    UsabilityRollup,
)
from services.usability import day_start, hour_start
from tests.console.conftest import login
from tests.factories import create_site, create_user, share
from tests.receivers import WebhookReceiver
from tests.sync.conftest import WebServer

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
PAGE = (
    "<html><body>\n" + "\n".join(f"<p>Product {i}: a fine thing</p>" for i in range(30)) + "\n</body></html>"
)


@pytest.fixture
def web():
    server = WebServer()
    yield server
    server.close()


@pytest.fixture
def receiver():
    server = WebhookReceiver()
    yield server
    server.close()


@pytest.fixture
def worker(app, ctx):
    from sync.worker import Worker

    instance = Worker(app)
    yield instance
    instance.close()


def run_worker(worker) -> None:
    worker.run_once()
    db.session.expire_all()


def test_an_operator_watches_a_site_from_login_to_logout(ctx, browse, web, worker):
    operator = create_user("operator")
    page, _ = browse()
    login(page, operator)
    assert page.locator("[data-test=sites]").count() == 0  # no site yet

    # Add a site through the form, pointing at a local test server.
    page.click("[data-test=add-site]")
    page.fill("input[name=name]", "Shop")
    page.fill("input[name=url]", web.set("/", PAGE))
    page.check("input[name=tamper_enabled]")
    page.fill("textarea[name=forbidden_keywords]", "hacked")
    page.click("[data-test=save-site]")
    page.wait_for_url("**/sites/*")
    site = db.session.scalar(db.select(Site).where(Site.name == "Shop"))
    assert site.owner_id == operator.id and site.forbidden_keywords == ["hacked"]
    assert page.locator("[data-test=no-checks]").is_visible()

    # The worker checks it (and takes the tamper baseline); the site turns up.
    run_worker(worker)
    page.reload()
    assert page.locator("h1 .state-up").is_visible()
    assert page.locator("[data-test=checks] tbody tr").count() == 1
    page.wait_for_selector(".chart[data-loaded='24h'] canvas")

    # The page is defaced: "Check now", the worker finds it, the event shows with its diff.
    web.set("/", PAGE.replace("a fine thing", "hacked by someone", 12))
    page.click("[data-test=check-now]")
    page.wait_for_selector(".flash.success")
    run_worker(worker)
    page.reload()
    event_row = page.locator("[data-test=events] tbody tr").first
    assert "hacked" in event_row.inner_text()
    event_row.locator("[data-test=view-diff]").click()
    page.wait_for_selector("[data-test=diff]")
    assert page.locator("table.diff td.added").first.inner_text().startswith("+")
    assert "hacked by someone" in page.locator("table.diff").inner_text()
    page.click("[data-test=split]")
    assert page.locator("table.diff.split td.removed").count() >= 1
    page.go_back()
    page.go_back()

    # Accept it: the current page becomes the baseline.
    page.locator("[data-test=events] tbody tr").first.locator("[data-test=accept]").click()
    page.wait_for_selector(".flash.success")
    assert page.locator("[data-test=events] .status-accepted").count() == 1
    event = db.session.scalar(db.select(TamperEvent).where(TamperEvent.site_id == site.id))
    assert event.status == "accepted" and event.handled_by_id == operator.id

    # Upload a nuclei report, filter the findings, triage one. (The worker has already listed the
    # security headers the test server does not send, as the built-in scanner's findings.)
    builtin = page.locator("[data-test=findings] tbody tr").count()
    page.click("details.upload summary")
    page.set_input_files("[data-test=import-form] input[name=file]", str(SAMPLES / "nuclei.jsonl"))
    page.click("[data-test=upload]")
    page.wait_for_selector(".flash.success")
    assert "6 new" in page.locator(".flash.success").inner_text()
    assert page.locator("[data-test=findings] tbody tr").count() == builtin + 6
    page.check("[data-test=finding-filters] input[name=severity][value=critical]")
    page.click("[data-test=apply-filters]")
    page.wait_for_url("**severity=critical**")
    rows = page.locator("[data-test=findings] tbody tr")
    assert rows.count() == 1 and "critical" in rows.first.inner_text()
    rows.first.locator("select[name=status]").select_option("false_positive")
    rows.first.locator("[data-test=triage]").click()
    page.wait_for_selector(".flash.success")
    assert "severity=critical" in page.url  # back on the same filtered list
    assert page.locator("[data-test=findings] tbody tr .status-false_positive").count() == 1
    critical = db.session.scalar(db.select(Finding).where(Finding.severity == "critical"))
    assert critical.status == "false_positive"

    # The chart's other windows load from their JSON.
    page.click("[data-test=chart-windows] a[data-window='7d']")
    page.wait_for_selector(".chart[data-loaded='7d'] canvas")

    page.goto("/")
    row = page.locator("[data-test=sites] tbody tr").first
    assert "Shop" in row.inner_text() and row.locator(".state-up").count() == 1
    assert row.locator(".uptime-bar rect").count() == 90
    assert row.locator(".sparkline polyline").count() == 1
    assert row.locator(".severities .sev-medium").inner_text().isdigit()  # open findings by severity

    page.click("[data-test=logout]")
    page.wait_for_url("**/login")
    page.goto("/")
    assert "/login" in page.url  # the session is gone


def test_a_viewer_sees_no_button_that_would_change_anything(ctx, browse):
    owner = create_user("operator")
    viewer = create_user("viewer")
    site = create_site(owner, name="Shared shop", tamper_enabled=True)
    share(site, viewer, "write")  # a viewer never writes, whatever the share says
    db.session.add(TamperEvent(site_id=site.id, status="open", diff="--- a\n+++ b\n@@ -1 +1 @@\n-x\n+y"))
    db.session.add(
        Finding(
            site_id=site.id,
            scanner="nuclei",
            dedup_key="k",
            rule_id="r",
            title="XSS",
            severity="high",
            severity_rank=3,
        )
    )
    db.session.commit()
    page, _ = browse()
    login(page, viewer)
    assert page.locator("[data-test=add-site]").count() == 0
    assert "Shared shop" in page.locator("[data-test=sites]").inner_text()
    page.click("text=Shared shop")
    page.wait_for_selector("[data-test=events]")
    for selector in (
        "[data-test=site-actions]",
        "[data-test=accept]",
        "[data-test=triage]",
        "[data-test=import-form]",
        "[data-test=baseline]",
    ):
        assert page.locator(selector).count() == 0, selector
    page.click("[data-test=view-diff]")
    page.wait_for_selector("[data-test=diff]")
    assert page.locator("[data-test=event-form]").count() == 0
    page.goto("/status-pages")
    assert page.locator("[data-test=add-status-page]").count() == 0
    assert page.locator("a[href='/users']").count() == 0  # admins only


def test_a_status_page_renders_without_login_and_leaks_no_url(ctx, browse):
    owner = create_user("operator")
    site = create_site(
        owner, name="Public shop", url="https://secret-origin.example.test/private", state="up"
    )
    status_pages.create_page(owner, {"slug": "shop", "title": "Shop status", "site_ids": [site.id]})
    page, _ = browse()
    response = page.goto("/status/shop")
    assert response.status == 200
    assert page.locator("h1").inner_text() == "Shop status"
    assert "Public shop" in page.locator(".public-site").inner_text()
    assert page.locator(".public-site .uptime-bar rect").count() == 90
    assert page.locator("[data-test=overall]").inner_text() == "All systems operational"
    html = page.content()
    assert "secret-origin" not in html and "/private" not in html
    badge = page.request.get(f"/badge/shop/{site.id}.svg")
    assert badge.ok and badge.headers["content-type"].startswith("image/svg+xml")
    assert "secret-origin" not in badge.text()


def test_every_page_loads_clean_for_an_admin(ctx, browse, web, worker):
    """Each page of the console once, as an admin, with data on it: no console error, no CSP violation."""
    admin = create_user("admin")
    site = create_site(admin, name="Shop", url=web.set("/", PAGE), tamper_enabled=True)
    run_worker(worker)
    event = TamperEvent(site_id=site.id, status="open", diff="--- a\n+++ b\n@@ -1,2 +1,2 @@\n x\n-old\n+new")
    finding = Finding(
        site_id=site.id,
        scanner="zap",
        dedup_key="k",
        rule_id="r",
        title="SQLi",
        severity="critical",
        severity_rank=4,
    )
    db.session.add_all([event, finding])
    db.session.commit()
    status_pages.create_page(admin, {"slug": "all", "title": "All", "site_ids": [site.id]})
    channel = channels.create_channel(admin, {"name": "hook", "url": "https://hooks.example.test/x"})
    window = maintenance.create_window(
        admin,
        {"title": "w", "site_ids": [site.id], "weekdays": ["sun"], "start_time": "02:00", "duration_min": 60},
    )
    page, _ = browse()
    login(page, admin)
    for path in (
        "/channels",
        "/channels/new",
        f"/channels/{channel.id}",
        f"/channels/{channel.id}/edit",
        "/maintenance",
        "/maintenance/new",
        f"/maintenance/{window.id}/edit",
        "/",
        f"/sites/{site.id}",
        f"/sites/{site.id}/edit",
        f"/sites/{site.id}/imports",
        f"/sites/{site.id}/events/{event.id}",
        f"/sites/{site.id}/events/{event.id}?view=split",
        f"/findings/{finding.id}",
        "/sites/new",
        "/users",
        "/users/new",
        f"/users/{admin.id}/edit",
        "/tokens",
        "/status-pages",
        "/status-pages/new",
        "/status/all",
    ):
        response = page.goto(path)
        assert response.status == 200, path
        page.wait_for_load_state("networkidle")
    page.goto(f"/sites/{site.id}")
    page.wait_for_selector(".chart[data-loaded='24h'] canvas")


def test_an_operator_sets_up_a_webhook_and_a_maintenance_window(ctx, browse, receiver):
    operator = create_user("operator")
    shop = create_site(operator, name="Shop")
    create_site(operator, name="Blog")
    page, _ = browse()
    login(page, operator)

    # A webhook channel about one site, signed with a secret.
    page.click("nav.main-nav a[href='/channels']")
    page.click("[data-test=add-channel]")
    page.fill("input[name=name]", "ops hook")
    page.fill("input[name=url]", receiver.url("/cloudeye"))
    page.fill("input[name=secret]", "a long random secret")
    page.uncheck("[data-test=events] input[value='findings.new']")
    page.check("input[name=sites][value=chosen]")
    page.check(f"input[name=site_ids][value='{shop.id}']")
    page.fill("input[name=remind_every_min]", "30")
    page.click("[data-test=save-channel]")
    page.wait_for_url("**/channels/*")
    db.session.rollback()
    channel = db.session.scalar(db.select(Channel))
    assert channel.site_ids == [shop.id] and "findings.new" not in channel.events
    assert channel.remind_every_min == 30 and channel.secret == "a long random secret"

    # Test: the receiver gets a signed request, the page says it was delivered and logs it.
    page.click("[data-test=test-channel]")
    page.wait_for_selector(".flash.success")
    assert page.locator(".flash.success").inner_text().startswith("Test message delivered in")
    [request] = receiver.received
    assert request.path == "/cloudeye" and request.json["event"] == "test"
    assert request.signature_ok("a long random secret")
    assert request.headers["X-Cloudeye-Delivery"] == request.json["delivery_id"]
    row = page.locator("[data-test=deliveries] tbody tr")
    assert row.count() == 1 and "sent" in row.inner_text()
    page.click("[data-test=log-filter] a[data-status=failed]")
    page.wait_for_selector("[data-test=no-deliveries]")

    # The form shows the URL masked and never the secret.
    page.click("[data-test=edit-channel]")
    assert page.locator("input[name=secret]").input_value() == ""
    assert "a long random secret" not in page.content()
    page.goto("/channels")
    assert "sent" in page.locator("[data-test=last-delivery]").inner_text()

    # A weekly maintenance window in Shanghai time: the form shows the fields of the kind chosen.
    page.click("nav.main-nav a[href='/maintenance']")
    page.click("[data-test=add-window]")
    assert page.locator("[data-kind-of=weekly]").is_hidden()
    page.fill("input[name=title]", "weekly patching")
    page.check("input[name=kind][value=weekly]")
    assert (
        page.locator("[data-kind-of=once]").is_hidden() and page.locator("[data-kind-of=weekly]").is_visible()
    )
    page.check("[data-test=weekdays] input[value=sun]")
    page.fill("input[name=start_time]", "02:00")
    page.fill("input[name=duration_min]", "90")
    page.select_option("select[name=timezone]", "Asia/Shanghai")
    page.check(f"input[name=site_ids][value='{shop.id}']")
    page.click("[data-test=save-window]")
    page.wait_for_url("**/maintenance")
    assert "weekly patching" in page.locator("[data-test=windows]").inner_text()

    # A one-off window on now, from the site's page: the site page says it is in maintenance.
    page.goto(f"/sites/{shop.id}")
    page.click("[data-test=schedule-maintenance]")
    now = datetime.now(UTC)
    page.fill("input[name=title]", "DB upgrade")
    page.fill("input[name=starts_at]", (now - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M"))
    page.fill("input[name=ends_at]", (now + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
    assert page.locator(f"input[name=site_ids][value='{shop.id}']").is_checked()
    page.click("[data-test=save-window]")
    page.wait_for_url("**/maintenance")
    db.session.rollback()
    windows = db.session.scalars(db.select(MaintenanceWindow).order_by(MaintenanceWindow.id)).all()
    assert [window.title for window in windows] == ["weekly patching", "DB upgrade"]
    assert windows[0].timezone == "Asia/Shanghai" and windows[0].weekdays == ["sun"]
    page.goto(f"/sites/{shop.id}")
    assert "DB upgrade" in page.locator("[data-test=in-maintenance]").inner_text()
    assert "weekly patching" in page.locator("[data-test=next-maintenance]").inner_text()
    assert db.session.scalar(db.select(db.func.count()).select_from(Notification)) == 1


def test_the_alert_pages_in_chinese(ctx, browse):
    viewer = create_user("viewer")
    page, _ = browse(locale="zh-CN")
    login(page, viewer)
    page.goto("/channels/new")
    assert page.locator("h1").inner_text() == "新建渠道"
    assert "站点宕机" in page.locator("[data-test=events]").inner_text()
    page.goto("/maintenance")
    assert page.locator("h1").inner_text() == "维护窗口"
    assert page.locator("[data-test=add-window]").count() == 0  # viewers schedule no maintenance


def test_chinese_from_the_browser_language_and_the_switch(ctx, browse):
    page, _ = browse(locale="zh-CN")
    page.goto("/login")
    assert page.locator("h1").inner_text() == "登录 cloudeye"
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    page.click("a[lang=en]")
    page.wait_for_url("**/login")
    assert page.locator("h1").inner_text() == "Log in to cloudeye"
    page.click("a[lang=zh]")
    assert page.locator("h1").inner_text() == "登录 cloudeye"


def test_a_wrong_password_shows_the_form_again(ctx, browse):
    user = create_user("operator")
    page, watch = browse()
    watch.allow("status of 401")  # the login page answers 401 after a wrong password
    page.goto("/login")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "not the password")
    page.click("[data-test=login]")
    assert page.locator(".flash.error").inner_text() == "Invalid username or password."
    assert page.locator("input[name=username]").input_value() == user.username


def seed_history(site: Site, seed: int, latency: float) -> None:
    """90 days of daily uptime, 30 days of hourly rollups and 24 hours of checks every 10 minutes, with
    a dip or two: what a site looks like after a season of monitoring."""
    now = datetime.now(UTC)
    today = day_start(now)
    rows = []
    for day in range(90):
        down = 14 if (day * 7 + seed) % 23 == 0 else (3 if (day + seed) % 11 == 0 else 0)
        rows.append(
            UsabilityRollup(site_id=site.id, period="day", bucket_start=today - timedelta(days=day),
                            checks_total=1440, checks_up=1440 - down * (1 + seed % 3))
        )  # fmt: skip
    current = hour_start(now)
    for hour in range(30 * 24):
        wave = latency * (1 + 0.35 * math.sin((hour + seed) / 5.0) + 0.1 * ((hour * 13 + seed) % 7) / 7)
        rows.append(
            UsabilityRollup(site_id=site.id, period="hour", bucket_start=current - timedelta(hours=hour),
                            checks_total=60, checks_up=60 - (hour % 97 == seed), latency_sum_ms=60 * wave, latency_count=60,
                            latency_max_ms=wave * 2)
        )  # fmt: skip
    for step in range(144):
        at = now - timedelta(minutes=10 * step)
        ms = latency * (1 + 0.3 * math.sin(step / 9.0 + seed) + 0.25 * ((step * 7 + seed) % 5) / 5)
        rows.append(
            UsabilityCheck(site_id=site.id, due_at=at, checked_at=at, status="up", http_status=200,
                           response_ms=round(ms, 1))
        )  # fmt: skip
    rows.append(
        Incident(site_id=site.id, started_at=now - timedelta(days=3 + seed, hours=2),
                 ended_at=now - timedelta(days=3 + seed, hours=1, minutes=40), cause="timeout: no answer in 10 s")
    )  # fmt: skip
    db.session.add_all(rows)
    db.session.commit()


def test_screenshots_of_a_console_with_history(ctx, browse, screenshots):
    """The README's pictures (make screenshots writes them to docs/): several sites with a season of
    history, findings and an open tamper event; the pages must draw every chart without an error."""
    operator = create_user("operator", username="alice")
    sites = []
    for seed, (name, state, latency) in enumerate(
        [("Shop", "up", 180), ("Blog", "up", 95), ("API gateway", "up", 60), ("Payments", "pending", 240),
         ("Intranet wiki", "down", 130), ("Docs", "up", 75)]
    ):  # fmt: skip
        site = create_site(operator, name=name, url=f"https://{name.lower().replace(' ', '-')}.example.com/",
                           state=state, tamper_enabled=True, last_checked_at=datetime.now(UTC), tls_expires_at=datetime.now(UTC) + timedelta(days=40 + seed * 9))  # fmt: skip
        seed_history(site, seed, latency)
        sites.append(site)
    shop = sites[0]
    db.session.add(Incident(site_id=sites[4].id, started_at=datetime.now(UTC) - timedelta(minutes=25),
                            cause="refused: connection refused"))  # fmt: skip
    db.session.add(TamperEvent(site_id=shop.id, status="open", severity="high", change_ratio=0.21,
                               forbidden_found=["casino"], diff="--- baseline\n+++ current\n@@ -1,2 +1,2 @@\n <h1>Shop</h1>\n-<p>Spring sale</p>\n+<p>Best online casino</p>"))  # fmt: skip
    for index, (severity, rank) in enumerate(
        [("critical", 4), ("high", 3), ("high", 3), ("medium", 2), ("low", 1), ("info", 0)]
    ):
        for site in sites[: 6 - index]:
            db.session.add(Finding(site_id=site.id, scanner="nuclei", dedup_key=f"{index}-{site.id}", rule_id=f"rule-{index}",
                                   title=["Apache path traversal", "Reflected XSS in search", "Open redirect", "Missing CSP header",
                                          "phpinfo disclosure", "Server banner"][index],
                                   severity=severity, severity_rank=rank, location=f"{site.url}search?q="))  # fmt: skip
    db.session.commit()

    page, _ = browse()
    login(page, operator)
    assert page.locator("[data-test=sites] tbody tr").count() == 6
    assert page.locator("[data-test=sites] .sparkline polyline").count() == 6
    page.screenshot(path=str(screenshots / "console-overview.png"))
    page.goto(f"/sites/{shop.id}")
    page.wait_for_selector(".chart[data-loaded='24h'] canvas")
    page.screenshot(path=str(screenshots / "console-site.png"))
    page.click("[data-test=chart-windows] a[data-window='30d']")
    page.wait_for_selector(".chart[data-loaded='30d'] canvas")
