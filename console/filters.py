"""Template helpers: fingerprinted asset URLs, formatting of times and numbers, the navigation, and the
geometry of the server-drawn SVG charts (90-day uptime bar, sparklines)."""

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Flask, current_app, g, request, url_for
from flask_babel import format_datetime, get_locale
from flask_babel import lazy_gettext as _l

from console import HERE, LANGUAGES
from console.forms import EVENT_LABELS, WEEKDAY_LABELS
from services.alerts.channels import masked_url as masked_channel_url
from services.models import EVENTS, SEVERITIES
from services.sites import WRITE_ROLES
from services.sites import masked_url as masked_site_url

_fingerprints: dict[str, str] = {}


def asset(filename: str) -> str:
    """/assets/<file>?v=<hash of its content>: cached for a year by browsers and nginx, and a new URL
    whenever the file changes."""
    digest = _fingerprints.get(filename)
    if digest is None or current_app.debug:
        digest = hashlib.sha256((HERE / "static" / filename).read_bytes()).hexdigest()[:12]
        _fingerprints[filename] = digest
    return url_for("console.static", filename=filename, v=digest)


@dataclass(frozen=True)
class NavItem:
    endpoint: str
    label: object
    admin_only: bool = False
    section: str = ""  # the first path segment that marks it current


# The console's sections, in order. A feature adds its pages by adding an item here.
NAV = [
    NavItem("console.overview", _l("Overview"), section=""),
    NavItem("console.status_pages", _l("Status pages"), section="status-pages"),
    NavItem("console.channels", _l("Alert channels"), section="channels"),
    NavItem("console.maintenance", _l("Maintenance"), section="maintenance"),
    NavItem("console.users", _l("Users"), admin_only=True, section="users"),
    NavItem("console.tokens", _l("API tokens"), section="tokens"),
]


# A notification's status in the delivery log.
DELIVERY_STATUS_LABELS = {"pending": _l("pending"), "sent": _l("sent"), "failed": _l("failed")}


def nav_items():
    user = g.get("user")
    if user is None:
        return []
    current = request.path.strip("/").split("/", 1)[0]
    if current == "sites":
        current = ""
    return [(item, item.section == current) for item in NAV if not item.admin_only or user.is_admin]


def when(moment: datetime | str | None, fmt: str = "medium") -> str:
    if moment is None:
        return "—"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return format_datetime(moment, fmt, rebase=False) + " UTC"


def percent(value) -> str:
    return "—" if value is None else f"{value:.2f}%".replace(".00%", "%")


def millis(value) -> str:
    return "—" if value is None else f"{value:.0f} ms"


def duration(seconds) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes}m"
    return f"{hours // 24}d {hours % 24}h"


def days_until(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    return int((moment - datetime.now(UTC)).total_seconds() // 86400)


def uptime_class(value) -> str:
    """The colour class of one day of uptime."""
    if value is None:
        return "none"
    if value >= 99.9:
        return "good"
    if value >= 99:
        return "fair"
    if value >= 95:
        return "poor"
    return "bad"


def sparkline(values: list, width: int = 120, height: int = 28) -> str:
    """SVG polyline points for a sparkline of `values` (None: no data, a gap is bridged)."""
    known = [(index, value) for index, value in enumerate(values) if value is not None]
    if not known:
        return ""
    top = max(value for _, value in known) or 1.0
    step = width / max(1, len(values) - 1)
    points = [(index * step, height - 2 - (value / top) * (height - 4)) for index, value in known]
    if len(points) == 1:  # one hour of data: a short stroke, so that it shows
        x, y = points[0]
        points.insert(0, (max(0.0, x - 4), y))
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)


def can_create_sites(user) -> bool:
    return user is not None and user.role in WRITE_ROLES


def init_app(app: Flask) -> None:
    app.jinja_env.globals.update(
        asset=asset,
        nav_items=nav_items,
        languages=LANGUAGES,
        severities=SEVERITIES,
        can_create_sites=can_create_sites,
        all_events=EVENTS,
        event_labels=EVENT_LABELS,
        status_labels=DELIVERY_STATUS_LABELS,
        weekday_labels=WEEKDAY_LABELS,
        current_locale=lambda: str(get_locale() or "en"),
    )
    app.jinja_env.filters.update(
        when=when,
        percent=percent,
        millis=millis,
        duration=duration,
        days_until=days_until,
        uptime_class=uptime_class,
        sparkline=sparkline,
        site_url=masked_site_url,  # a site's URL, never its password: `***` in its place
        channel_url=masked_channel_url,  # a channel's URL with its secrets masked
    )
