"""Maintenance windows: one-off (`starts_at`..`ends_at`) or weekly (`weekdays` at `start_time`, local to
`timezone`, for `duration_min`). Inside a window checks still run and are stored, but no notification
is sent for its sites, incidents that open are flagged `in_maintenance`, and the checks are counted in
the rollups' `checks_maintenance` instead of `checks_total`, so uptime % leaves that time out.

Who: an admin, or an operator with write access to every site of the window; a window is managed by the
user who created it or an admin (docs/alerts.md, "Maintenance windows").
"""

import logging
import re
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from services.errors import Forbidden, Invalid, NotFound
from services.extensions import db
from services.models import WEEKDAYS, MaintenanceSite, MaintenanceWindow, Site, User
from services.sites import can_write, visible_site_ids

log = logging.getLogger(__name__)
MAX_DURATION_MIN = 7 * 24 * 60
MAX_SITES = 1000
TITLE_LENGTH = (1, 200)
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
ONE_OFF_FIELDS = ("starts_at", "ends_at")
WEEKLY_FIELDS = ("weekdays", "start_time", "duration_min", "timezone")


# --- when is a window on ---------------------------------------------------------------------------


def covers(window: MaintenanceWindow, moment: datetime) -> bool:
    """Whether `moment` (aware) falls inside `window`."""
    return occurrence_at(window, moment) is not None


def occurrence_at(window: MaintenanceWindow, moment: datetime) -> tuple[datetime, datetime] | None:
    """The (start, end) of the occurrence of `window` that `moment` (aware) falls in, or None."""
    if not window.recurring:
        if window.starts_at is not None and window.starts_at <= moment < window.ends_at:
            return window.starts_at, window.ends_at
        return None
    zone = ZoneInfo(window.timezone)
    duration = timedelta(minutes=window.duration_min)
    start_time = time.fromisoformat(window.start_time)
    local_day = moment.astimezone(zone).date()
    # A window that started on an earlier day may still be running (up to a week long).
    for back in range(duration.days + 2):
        day = local_day - timedelta(days=back)
        if WEEKDAYS[day.weekday()] not in window.weekdays:
            continue
        start = _local_start(day, start_time, zone)
        if start <= moment < start + duration:
            return start, start + duration
    return None


def _local_start(day: date, start_time: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of `start_time` on `day` in `zone` (a time skipped by a DST jump moves forward)."""
    return datetime.combine(day, start_time, tzinfo=zone).astimezone(UTC)


def next_start(window: MaintenanceWindow, after: datetime) -> datetime | None:
    """The next time the window begins after `after` (None for a one-off that has begun)."""
    if not window.recurring:
        return window.starts_at if window.starts_at > after else None
    zone = ZoneInfo(window.timezone)
    start_time = time.fromisoformat(window.start_time)
    day = after.astimezone(zone).date()
    for ahead in range(8):
        candidate = day + timedelta(days=ahead)
        if WEEKDAYS[candidate.weekday()] in window.weekdays:
            start = _local_start(candidate, start_time, zone)
            if start > after:
                return start
    return None


class Coverage:
    """The windows of a set of sites, loaded once: `active(site_id, moment)` for each check or event."""

    def __init__(self, windows_by_site: dict[int, list[MaintenanceWindow]]):
        self._by_site = windows_by_site

    def active(self, site_id: int, moment: datetime) -> bool:
        return any(covers(window, moment) for window in self._by_site.get(site_id, ()))


def coverage(site_ids) -> Coverage:
    """The maintenance windows of `site_ids` (one query)."""
    ids = sorted(set(site_ids))
    by_site: dict[int, list[MaintenanceWindow]] = defaultdict(list)
    if ids:
        rows = db.session.execute(
            sa.select(MaintenanceSite.site_id, MaintenanceWindow)
            .join(MaintenanceWindow, MaintenanceWindow.id == MaintenanceSite.window_id)
            .where(MaintenanceSite.site_id.in_(ids))
        ).all()
        for site_id, window in rows:
            by_site[site_id].append(window)
    return Coverage(by_site)


def in_maintenance(site_id: int, moment: datetime | None = None) -> bool:
    return coverage([site_id]).active(site_id, moment or datetime.now(UTC))


def site_schedule(site_id: int, moment: datetime | None = None) -> dict:
    """What a site's page says of its maintenance, whoever made the windows: the occurrence it is in
    now (`current`, the one ending last when several overlap) and the next one to begin (`next`), each
    `{"window", "starts_at", "ends_at"}` or None. The caller has checked that the site is visible."""
    moment = moment or datetime.now(UTC)
    windows = db.session.scalars(
        sa.select(MaintenanceWindow)
        .join(MaintenanceSite, MaintenanceSite.window_id == MaintenanceWindow.id)
        .where(MaintenanceSite.site_id == site_id)
        .order_by(MaintenanceWindow.id)
    ).all()
    current = upcoming = None
    for window in windows:
        now_on = occurrence_at(window, moment)
        if now_on is not None and (current is None or now_on[1] > current["ends_at"]):
            current = {"window": window, "starts_at": now_on[0], "ends_at": now_on[1]}
        start = next_start(window, moment)
        if start is not None and (upcoming is None or start < upcoming["starts_at"]):
            end = window.ends_at if not window.recurring else start + timedelta(minutes=window.duration_min)
            upcoming = {"window": window, "starts_at": start, "ends_at": end}
    return {"current": current, "next": upcoming}


# --- people's side -----------------------------------------------------------------------------------


def list_windows(user: User, site_id: int | None = None) -> sa.Select:
    query = sa.select(MaintenanceWindow)
    if not user.is_admin:
        query = query.where(MaintenanceWindow.owner_id == user.id)
    if site_id is not None:
        query = query.where(
            MaintenanceWindow.id.in_(
                sa.select(MaintenanceSite.window_id).where(MaintenanceSite.site_id == site_id)
            )
        )
    return query.order_by(MaintenanceWindow.id)


def get_window(user: User, window_id: int) -> MaintenanceWindow:
    window = db.session.get(MaintenanceWindow, window_id)
    if window is None or not (user.is_admin or window.owner_id == user.id):
        raise NotFound(f"maintenance window {window_id} not found")
    return window


def create_window(user: User, data: dict) -> MaintenanceWindow:
    if user.role not in ("admin", "operator"):
        raise Forbidden("viewers cannot create maintenance windows")
    values = _checked(data, None)
    window = MaintenanceWindow(owner_id=user.id)
    _apply(window, values, user)
    db.session.add(window)
    db.session.commit()
    log.info("maintenance window %s created by user %s for sites %s", window.id, user.id, window.site_ids)
    return window


def update_window(user: User, window_id: int, changes: dict) -> MaintenanceWindow:
    window = get_window(user, window_id)
    if user.role not in ("admin", "operator"):
        raise Forbidden("viewers cannot change maintenance windows")
    values = _checked(changes, window)
    _apply(window, values, user)
    db.session.commit()
    return window


def delete_window(user: User, window_id: int) -> None:
    window = get_window(user, window_id)
    db.session.delete(window)
    db.session.commit()


def _checked(data: dict, current: MaintenanceWindow | None) -> dict:
    """The window's fields after `data` is applied to `current` (or to nothing), if they obey the rules;
    Invalid naming every offending field otherwise."""
    errors: dict[str, list[str]] = {}

    def refuse(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    one_off_given = [name for name in ONE_OFF_FIELDS if data.get(name) is not None]
    weekly_given = [name for name in WEEKLY_FIELDS if data.get(name) is not None and name != "timezone"]
    if one_off_given and weekly_given:
        for name in one_off_given + weekly_given:
            refuse(name, "give either starts_at and ends_at, or weekdays, start_time and duration_min")
        raise Invalid("a window is one-off or weekly, not both", errors=errors)
    if current is None:
        recurring = bool(weekly_given) or ("timezone" in data and not one_off_given)
    else:
        recurring = current.recurring if not (one_off_given or weekly_given) else bool(weekly_given)
    keep = current is not None and recurring == current.recurring

    def value(name):
        if name in data:
            return data[name]
        return getattr(current, name) if keep else None

    values = {"title": value("title"), "site_ids": data.get("site_ids")}
    if values["title"] is None:
        refuse("title", "required")
    elif not (TITLE_LENGTH[0] <= len(values["title"]) <= TITLE_LENGTH[1]):
        refuse("title", f"must be {TITLE_LENGTH[0]} to {TITLE_LENGTH[1]} characters long")
    if current is None and not values["site_ids"]:
        refuse("site_ids", "at least one site")
    elif values["site_ids"] is not None:
        if not values["site_ids"]:
            refuse("site_ids", "at least one site")
        elif len(set(values["site_ids"])) > MAX_SITES:
            refuse("site_ids", f"at most {MAX_SITES} sites")
    if recurring:
        weekdays = value("weekdays")
        start_time = value("start_time")
        duration = value("duration_min")
        zone = value("timezone") or "UTC"
        if not weekdays:
            refuse("weekdays", f"at least one of {', '.join(WEEKDAYS)}")
        elif any(day not in WEEKDAYS for day in weekdays):
            refuse("weekdays", f"each one of {', '.join(WEEKDAYS)}")
        if start_time is None:
            refuse("start_time", "required (HH:MM, 24-hour, in the window's timezone)")
        elif not _HHMM.match(start_time):
            refuse("start_time", "must be HH:MM (24-hour)")
        if duration is None:
            refuse("duration_min", "required")
        elif not (1 <= duration <= MAX_DURATION_MIN):
            refuse("duration_min", f"must be between 1 and {MAX_DURATION_MIN}")
        if not _valid_zone(zone):
            refuse("timezone", "unknown time zone (an IANA name such as Asia/Shanghai or UTC)")
        values.update(
            weekdays=sorted(set(weekdays or []) & set(WEEKDAYS), key=WEEKDAYS.index),  # errors: unused
            start_time=start_time,
            duration_min=duration,
            timezone=zone,
            starts_at=None,
            ends_at=None,
        )
    else:
        starts_at, ends_at = value("starts_at"), value("ends_at")
        if starts_at is None:
            refuse("starts_at", "required (or give a weekly recurrence)")
        if ends_at is None:
            refuse("ends_at", "required (or give a weekly recurrence)")
        if starts_at is not None and ends_at is not None and ends_at <= starts_at:
            refuse("ends_at", "must be after starts_at")
        if data.get("timezone") is not None and not _valid_zone(data["timezone"]):
            refuse("timezone", "unknown time zone (an IANA name such as Asia/Shanghai or UTC)")
        values.update(
            starts_at=starts_at,
            ends_at=ends_at,
            weekdays=None,
            start_time=None,
            duration_min=None,
            timezone=data.get("timezone") or "UTC",
        )
    if errors:
        raise Invalid("the maintenance window breaks its rules", errors=errors)
    return values


def _valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _apply(window: MaintenanceWindow, values: dict, user: User) -> None:
    site_ids = values.pop("site_ids")
    if site_ids is not None:
        _check_sites(user, site_ids)
    for name, value in values.items():
        setattr(window, name, value)
    if site_ids is not None:
        window.sites = [MaintenanceSite(site_id=site_id) for site_id in sorted(set(site_ids))]


def _check_sites(user: User, site_ids: list[int]) -> None:
    """Every site must be one the user may change: unknown or invisible ones are 422 (named), readable
    ones the user may not change are 403."""
    ids = sorted(set(site_ids))
    visible = set(
        db.session.scalars(
            sa.select(Site.id).where(Site.id.in_(ids), Site.id.in_(visible_site_ids(user)))
        ).all()
    )
    missing = [site_id for site_id in ids if site_id not in visible]
    if missing:
        raise Invalid(
            "some sites do not exist or are not visible to you",
            errors={"site_ids": [f"site {site_id} not found" for site_id in missing]},
        )
    sites = db.session.scalars(sa.select(Site).where(Site.id.in_(ids))).all()
    read_only = [site.id for site in sites if not can_write(user, site)]
    if read_only:
        raise Forbidden(f"you may read but not change sites {read_only}: no maintenance window for them")
