"""Sites, sharing and who may see or change what.

Visibility: admins see every site; anybody else sees the sites they own and those shared with them.
An invisible site is reported as missing (404), never as forbidden, so ids leak nothing.

This module is the security boundary for everything that belongs to a site (checks, incidents, tamper
events, findings, imports): `get_site` for a site id, `get_site_row` for a row of a site's table, and
`filter_visible` for lists. Every other service goes through these three.
"""

import ipaddress
import logging
import re
import socket
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa
from flask import current_app
from marshmallow import ValidationError, validate
from sqlalchemy.orm import joinedload

from services.cache import cache
from services.errors import Conflict, Forbidden, Invalid, NotFound
from services.extensions import db
from services.locations import LOCATION_RULE, valid_name
from services.models import Site, SiteLocation, SiteMember, User
from services.search import contains_text

log = logging.getLogger(__name__)
STATUS_RANGE = re.compile(r"^\s*(\d{3})\s*(?:-\s*(\d{3})\s*)?$")
WRITE_ROLES = ("admin", "operator")


def parse_status_ranges(spec: str) -> list[tuple[int, int]]:
    """'200-299, 301' -> [(200, 299), (301, 301)]; ValueError on anything else."""
    ranges = []
    for part in spec.split(","):
        match = STATUS_RANGE.match(part)
        if not match:
            raise ValueError(f"{part.strip()!r} is not a status code or range like 200-399")
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if not (100 <= low <= high <= 599):
            raise ValueError(f"{part.strip()!r} must be within 100-599, low before high")
        ranges.append((low, high))
    if not ranges:
        raise ValueError("at least one status code or range is needed")
    return ranges


def status_accepted(spec: str, status: int) -> bool:
    return any(low <= status <= high for low, high in parse_status_ranges(spec))


# The rules of a site's settings. The API schema documents the same numbers (api/v1/site/schemas.py).
NUMBER_RANGES = {
    "check_interval_s": (10, 86400),
    "timeout_s": (1, 120),
    "max_retries": (0, 20),
    "tamper_threshold": (0.0, 1.0),
}
TEXT_LENGTHS = {"name": (1, 200), "url": (1, 2048), "accepted_status": (3, 100), "keyword": (1, 255)}
# list field -> (most items, (shortest, longest) item)
LIST_LIMITS = {"tamper_ignore": (50, (1, 500)), "forbidden_keywords": (100, (1, 200))}
MAX_LOCATIONS = 16  # a site's locations, at most
_URL_FORMAT = validate.URL(schemes={"http", "https"}, require_tld=False, error="must be an http(s) URL")


def _netloc_bounds(url: str) -> tuple[int, int] | None:
    """Where the authority (userinfo@host:port) of `url` starts and ends, as urlsplit reads it."""
    scheme_end = url.find("://")
    if scheme_end < 0:
        return None
    start = scheme_end + 3
    ends = [index for index in (url.find(ch, start) for ch in "/?#") if index >= 0]
    return start, min(ends, default=len(url))


def split_credentials(url: str) -> tuple[str, str | None]:
    """(`url` without the password of its userinfo, that password as written), or (url, None).

    A site's password is stored apart from its URL, so that nothing that shows, filters or logs the URL
    can carry it by accident; `join_credentials` puts it back for the probe."""
    bounds = _netloc_bounds(url)
    if bounds is None:
        return url, None
    start, end = bounds
    userinfo, at, hostport = url[start:end].rpartition("@")
    user, colon, password = userinfo.partition(":")
    if not at or not colon:
        return url, None
    return url[:start] + (f"{user}@" if user else "") + hostport + url[end:], password


def join_credentials(url: str, password: str | None) -> str:
    if password is None:
        return url
    start, end = _netloc_bounds(url)
    user, at, hostport = url[start:end].rpartition("@")
    return url[:start] + f"{user if at else ''}:{password}@{hostport}" + url[end:]


MASK = "***"


def without_userinfo(url: str) -> str:
    """`url` without the user and password of its authority: what messages, findings and errors say of a
    site (the host as written, IPv6 brackets and all)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def masked_url(site: Site) -> str:
    """The site's URL with `***` in place of its password (what readers see, and what the console shows
    everyone)."""
    return site.url if site.url_password is None else join_credentials(site.url, MASK)


def url_seen_by(user: User, site: Site) -> str:
    """The site's URL as `user` may see it: whole for those who may change the site, the password masked
    for everyone else."""
    if site.url_password is not None and can_write(user, site):
        return join_credentials(site.url, site.url_password)
    return masked_url(site)


def default_settings() -> dict:
    """The value of each setting a new site gets when it is not given (the model's column defaults)."""
    defaults = {}
    for name in (*NUMBER_RANGES, *TEXT_LENGTHS, *LIST_LIMITS, "keyword_absent", "tamper_enabled", "paused"):
        default = Site.__table__.c[name].default
        if default is not None:
            defaults[name] = default.arg(None) if default.is_callable else default.arg
    defaults.setdefault("keyword", None)
    defaults["locations"] = []
    defaults["quorum"] = None
    return defaults


def check_settings(values: dict, current: Site | None = None) -> None:
    """Raise Invalid, naming every offending field, unless `values` (all of a new site's settings, or the
    changed ones of `current`) obey the rules: ranges and lengths, an http(s) URL to an allowed target,
    status ranges, ignore patterns the pattern engine accepts, and a timeout within the interval."""
    errors: dict[str, list[str]] = {}

    def refuse(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    for name, (low, high) in NUMBER_RANGES.items():
        value = values.get(name)
        if value is not None and not (low <= value <= high):
            refuse(name, f"must be between {low} and {high}")
    for name, (shortest, longest) in TEXT_LENGTHS.items():
        value = values.get(name)
        if value is not None and not (shortest <= len(value) <= longest):
            refuse(name, f"must be {shortest} to {longest} characters long")
    for name, (most, (shortest, longest)) in LIST_LIMITS.items():
        items = values.get(name)
        if items is None:
            continue
        if len(items) > most:
            refuse(name, f"at most {most} entries")
        if any(not (shortest <= len(item) <= longest) for item in items):
            refuse(name, f"each entry must be {shortest} to {longest} characters long")
    if values.get("url") is not None and "url" not in errors:
        try:
            check_target(values["url"])
        except Invalid as exc:
            errors.setdefault("url", []).extend((exc.errors or {}).get("url", [exc.message]))
    if values.get("accepted_status") is not None and "accepted_status" not in errors:
        try:
            parse_status_ranges(values["accepted_status"])
        except ValueError as exc:
            refuse("accepted_status", str(exc))
    if values.get("tamper_ignore") and "tamper_ignore" not in errors:
        from services.tamper_detect import compile_ignore_pattern

        for pattern in values["tamper_ignore"]:
            try:
                compile_ignore_pattern(pattern)
            except ValueError as exc:
                refuse("tamper_ignore", str(exc))
    _check_locations(values, current, errors)
    timeout = values.get("timeout_s", current.timeout_s if current else None)
    interval = values.get("check_interval_s", current.check_interval_s if current else None)
    if timeout is not None and interval is not None and timeout > interval and "timeout_s" not in errors:
        refuse("timeout_s", "must not exceed check_interval_s")
    if errors:
        raise Invalid("the site's settings break its rules", errors=errors)


# IPv6 prefixes whose addresses carry an IPv4 address in their last 32 bits: NAT64 (well-known and
# local-use) and the deprecated IPv4-compatible form. 6to4, Teredo and IPv4-mapped have ipaddress helpers.
_IPV4_IN_LAST_32_BITS = tuple(
    ipaddress.ip_network(net) for net in ("64:ff9b::/96", "64:ff9b:1::/48", "::/96")
)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    embedded = []
    if address.sixtofour is not None:
        embedded.append(address.sixtofour)
    if address.teredo is not None:
        embedded.extend(address.teredo)  # (server, client)
    if any(address in network for network in _IPV4_IN_LAST_32_BITS):
        embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return embedded


def is_public_address(address) -> bool:
    """Whether connecting to `address` (text or ipaddress object) reaches the public internet: a globally
    routable unicast address, and so is every IPv4 address an IPv6 one carries (NAT64, 6to4, Teredo,
    IPv4-mapped and -compatible), which a translator on the way would connect to instead. The one rule of
    ALLOW_PRIVATE_TARGETS=false, for the API (literal addresses) and the probe (resolved ones)."""
    try:
        ip = address if not isinstance(address, str) else ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if not ip.is_global or ip.is_multicast:
        return False
    return ip.version == 4 or all(is_public_address(inner) for inner in _embedded_ipv4(ip))


def _numeric_host_is_canonical(host: str) -> bool:
    """False for host names the resolver takes for an IPv4 address written in another way than the
    dotted quad (2130706433, 0x7f000001, 127.1, 127.000.000.001, 0177.0.0.1): they are refused, so that
    no check here and no resolver there read one address two ways."""
    try:
        socket.inet_aton(host)
    except OSError:
        return True  # not an IPv4 address in any form: a DNS name
    try:
        return str(ipaddress.IPv4Address(host)) == host
    except ValueError:
        return False


def _check_locations(values: dict, current: Site | None, errors: dict[str, list[str]]) -> None:
    """`locations`: distinct names (any name: a location nobody runs yet is simply not alive); `quorum`:
    null (a majority) or between 1 and the number of locations, and null for a site without locations."""

    def refuse(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    names = values.get("locations", current.locations if current else []) or []
    if "locations" in values:
        if len(names) > MAX_LOCATIONS:
            refuse("locations", f"at most {MAX_LOCATIONS} locations")
        if any(not valid_name(name) for name in names):
            refuse("locations", f"each location is {LOCATION_RULE}")
        if len(set(names)) != len(names):
            refuse("locations", "each location may appear only once")
    quorum = values.get("quorum", current.quorum if current else None)
    if quorum is None or "locations" in errors:
        return
    if not names:
        refuse("quorum", "must be null for a site checked from any location (no locations)")
    elif not 1 <= quorum <= len(names):
        refuse("quorum", f"must be between 1 and {len(names)} (the number of locations)")


def check_target(url: str) -> None:
    """http/https with a host; private addresses only when ALLOW_PRIVATE_TARGETS (the default)."""
    try:
        _URL_FORMAT(url)
    except ValidationError:
        raise Invalid(
            "url must be an http or https URL with a host", errors={"url": ["http/https only"]}
        ) from None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid("url must be an http or https URL with a host", errors={"url": ["http/https only"]})
    host = parts.hostname.rstrip(".")
    if not _numeric_host_is_canonical(host):
        message = "write an IPv4 address as four decimal numbers (e.g. 192.0.2.10)"
        raise Invalid(message, errors={"url": [message]})
    if current_app.config.get("ALLOW_PRIVATE_TARGETS", True):
        return
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host == "localhost" or host.endswith(".localhost"):
            raise Invalid("private targets are disabled", errors={"url": ["private target"]}) from None
        return  # a name: its addresses are checked when the probe connects
    if not is_public_address(address):
        raise Invalid("private targets are disabled", errors={"url": ["private target"]})


def visible_site_ids(user: User):
    """A subquery of the site ids `user` may read."""
    if user.is_admin:
        return sa.select(Site.id)
    shared = sa.select(SiteMember.site_id).where(SiteMember.user_id == user.id)
    return sa.select(Site.id).where(sa.or_(Site.owner_id == user.id, Site.id.in_(shared)))


def only_visible_sites(query: sa.Select, site_id_column, user: User) -> sa.Select:
    """Restrict `query` to rows of sites `user` may read.

    The ids go in as a literal list, not as the `visible_site_ids` subquery: with a subquery MySQL
    walks the whole big table (findings, checks) in sort order and probes the subquery per row, which
    took 54 s for an operator's first page over a million findings; with the list it is an index
    range per site (9 ms)."""
    ids = visible_ids(user)
    return query if ids is None else query.where(site_id_column.in_(ids))


# session.info key of visible_ids' answers, by user id.
_VISIBLE_MEMO = "cloudeye_visible_site_ids"


def visible_ids(user: User) -> list[int] | None:
    """The ids of the sites `user` may read, resolved now; None for an admin (all). Two indexed lookups
    (owned, shared) rather than `visible_site_ids`, whose OR made MariaDB scan the owner index of every
    site (10,000 entries on each list request of an operator).

    Read once per transaction (a list request asks for them twice: to filter and to read site by site);
    the answer is forgotten when the transaction ends or the session writes anything."""
    if user.is_admin:
        return None
    session = db.session
    known = session.info.get(_VISIBLE_MEMO, {}).get(user.id)
    if known is not None and not (session.new or session.dirty or session.deleted):
        return list(known)
    # The reads flush pending changes first (which forgets every memo: after_flush below).
    owned = session.scalars(sa.select(Site.id).where(Site.owner_id == user.id)).all()
    shared = session.scalars(sa.select(SiteMember.site_id).where(SiteMember.user_id == user.id)).all()
    known = tuple(sorted(set(owned) | set(shared)))
    session.info.setdefault(_VISIBLE_MEMO, {})[user.id] = known
    return list(known)


@sa.event.listens_for(sa.orm.Session, "after_transaction_end")
@sa.event.listens_for(sa.orm.Session, "after_flush")
def _forget_visible_ids(session, *_):
    session.info.pop(_VISIBLE_MEMO, None)


def can_write(user: User, site: Site) -> bool:
    if user.is_admin:
        return True
    if user.role != "operator":
        return False
    if site.owner_id == user.id:
        return True
    member = db.session.get(SiteMember, (site.id, user.id))
    return member is not None and member.permission == "write"


def _can_read(user: User, site: Site) -> bool:
    if user.is_admin or site.owner_id == user.id:
        return True
    return db.session.get(SiteMember, (site.id, user.id)) is not None


def get_site(user: User, site_id: int, write: bool = False) -> Site:
    site = db.session.get(Site, site_id)
    if site is None or not _can_read(user, site):
        raise NotFound(f"site {site_id} not found")
    if write and not can_write(user, site):
        raise Forbidden("you may read this site but not change it")
    return site


def get_site_row(user: User, model, row_id: int, *, label: str, write: bool = False):
    """The row `row_id` of a site-scoped table (one with a `site_id`), if `user` may read its site (and,
    with `write`, change it). Missing and invisible rows are both 404 (with the row's own name, not the
    site's); a readable row of a site the user may not change is 403."""
    row = db.session.get(model, row_id)
    if row is None:
        raise NotFound(f"{label} {row_id} not found")
    try:
        get_site(user, row.site_id, write=write)
    except NotFound:
        raise NotFound(f"{label} {row_id} not found") from None
    return row


def filter_visible(query: sa.Select, site_id_column, user: User, site_id: int | None = None) -> sa.Select:
    """Restrict a list to what `user` may read: one site when `site_id` is given (404 when the user may
    not see it), otherwise every site the user may see."""
    if site_id is not None:
        get_site(user, site_id)
        return query.where(site_id_column == site_id)
    return only_visible_sites(query, site_id_column, user)


def list_sites(user: User, q: str | None = None, state: str | None = None):
    query = only_visible_sites(sa.select(Site), Site.id, user)
    if q:
        query = query.where(contains_text((Site.name, Site.url), q))
    if state:
        query = query.where(Site.state == state)
    return query.order_by(Site.id)


def create_site(user: User, data: dict) -> Site:
    if user.role not in WRITE_ROLES:
        raise Forbidden("viewers cannot create sites")
    missing = [name for name in ("name", "url") if data.get(name) is None]
    if missing:
        raise Invalid("name and url are required", errors={name: ["required"] for name in missing})
    values = {**default_settings(), **data}
    check_settings(values)
    values["url"], values["url_password"] = split_credentials(values["url"])
    site = Site(owner_id=user.id, **values)
    db.session.add(site)
    db.session.flush()
    place_locations(site, datetime.now(UTC))
    db.session.commit()
    log.info("site created: id=%s url=%s by user=%s", site.id, site.url, user.id)
    return site


def update_site(user: User, site_id: int, changes: dict) -> Site:
    site = get_site(user, site_id, write=True)
    required = [name for name in ("name", "url") if name in changes and changes[name] is None]
    if required:
        raise Invalid("name and url cannot be removed", errors={name: ["required"] for name in required})
    if site.locations or changes.get("locations"):
        _lock(site)
    check_settings(changes, current=site)
    changes = dict(changes)
    if "url" in changes:
        changes["url"], changes["url_password"] = split_credentials(changes["url"])
        if changes["url_password"] == MASK and site.url_password is not None:
            # The URL as it was shown masked (the console's form, a reader's copy): the password stays.
            changes["url_password"] = site.url_password
    new_target = "url" in changes and (changes["url"], changes["url_password"]) != (
        site.url,
        site.url_password,
    )
    tamper_switched_on = changes.get("tamper_enabled") is True and not site.tamper_enabled
    moved = "locations" in changes and list(changes["locations"]) != list(site.locations or [])
    for field, value in changes.items():
        setattr(site, field, value)
    now = datetime.now(UTC)
    if moved or "paused" in changes:
        place_locations(site, now)
    if new_target or tamper_switched_on:
        # Another page, or tamper detection after a pause in it: check at once, and let the first fetch be
        # the tamper baseline rather than compare it with an old page.
        _schedule_now(site, now)
        site.baseline_requested_at = now
    elif "check_interval_s" in changes or changes.get("paused") is False:
        _schedule_now(site, now)
    db.session.commit()
    invalidate_site(site.id)
    return site


def delete_site(user: User, site_id: int) -> None:
    site = get_site(user, site_id, write=True)
    if not (user.is_admin or site.owner_id == user.id):
        raise Forbidden("only the owner or an admin deletes a site")
    db.session.delete(site)
    db.session.commit()
    invalidate_site(site_id)
    log.info("site deleted: id=%s by user=%s", site_id, user.id)


def request_check(user: User, site_id: int) -> Site:
    """Ask the worker to check the site at once (it polls for due sites)."""
    site = get_site(user, site_id, write=True)
    _refuse_if_paused(site)
    if site.locations:
        _lock(site)
    now = datetime.now(UTC)
    site.check_requested_at = now
    _schedule_now(site, now)
    db.session.commit()
    return site


def request_baseline(user: User, site_id: int) -> Site:
    """Ask the worker to take the current page as the new tamper baseline on its next fetch."""
    site = get_site(user, site_id, write=True)
    if not site.tamper_enabled:
        raise Conflict("tamper detection is not enabled for this site")
    _refuse_if_paused(site)
    if site.locations:
        _lock(site)
    now = datetime.now(UTC)
    site.baseline_requested_at = now
    _schedule_now(site, now)
    db.session.commit()
    return site


def _lock(site: Site) -> None:
    """Lock the site's row before touching its location rows (only a site with locations has any): the
    worker's writers lock the site, then its locations, and so must everybody else, or two transactions
    could wait for each other."""
    db.session.refresh(site, with_for_update=True)


def place_locations(site: Site, now: datetime) -> None:
    """Keep the site's schedule where its `locations` say, in the caller's transaction (site row locked):
    one `site_locations` row per location — a new one due at once, the others kept with their votes —
    and none left for a location it no longer names; the site's own `next_check_at` only for a site
    checked from any location. A paused site's rows are never due (no next_check_at)."""
    rows = {
        row.location: row
        for row in db.session.scalars(
            sa.select(SiteLocation).where(SiteLocation.site_id == site.id).with_for_update()
        )
    }
    names = list(site.locations or [])
    # Another set of locations: all of them due now, so that they keep checking the same slots.
    regrid = set(rows) != set(names)
    for name, row in rows.items():
        if name not in names:
            db.session.delete(row)
        elif site.paused:
            row.next_check_at = None
        elif regrid or row.next_check_at is None:
            row.next_check_at = now
    for name in names:
        if name not in rows:
            db.session.add(
                SiteLocation(
                    site_id=site.id,
                    location=name,
                    next_check_at=None if site.paused else now,
                    state="unknown",
                    consecutive_failures=0,
                )
            )
    if names:
        site.next_check_at = None
    elif site.next_check_at is None:
        site.next_check_at = now


def _schedule_now(site: Site, now: datetime) -> None:
    """Make the site due at once: its own schedule, or that of each of its locations (all on one grid)."""
    if not site.locations:
        site.next_check_at = now
        return
    db.session.execute(
        sa.update(SiteLocation)
        .where(SiteLocation.site_id == site.id)
        .values(next_check_at=None if site.paused else now)
        .execution_options(synchronize_session="fetch")
    )


def _refuse_if_paused(site: Site) -> None:
    # The worker never claims a paused site: accepting the request would promise a check that never runs.
    if site.paused:
        raise Conflict("the site is paused: resume it (PATCH paused=false) to check it")


def _require_owner_or_admin(user: User, site: Site) -> None:
    # An owner who has since become a viewer writes nothing, sharing included.
    if not (user.is_admin or (site.owner_id == user.id and user.role in WRITE_ROLES)):
        raise Forbidden("only the owner or an admin manages members")


def member_name_seen_by(user: User, member: SiteMember) -> str | None:
    """A member's username, for admins (who manage users) and for the member themselves; None for anybody
    else. Sharing takes a user id: were the answer to name the user, any operator could learn every
    username by sharing its own site with id after id."""
    if user.is_admin or member.user_id == user.id:
        return member.user.username
    return None


def list_members(user: User, site_id: int):
    site = get_site(user, site_id)
    # The answer names each member: their user rows come with the page, not one query per member.
    return (
        sa.select(SiteMember)
        .options(joinedload(SiteMember.user))
        .where(SiteMember.site_id == site.id)
        .order_by(SiteMember.user_id)
    )


def put_member(user: User, site_id: int, member_id: int, permission: str) -> tuple[SiteMember, bool]:
    site = get_site(user, site_id)
    _require_owner_or_admin(user, site)
    target = db.session.get(User, member_id)
    if target is None:
        raise NotFound(f"user {member_id} not found")
    if target.id == site.owner_id:
        raise Invalid("the owner already has full access", errors={"user_id": ["is the owner"]})
    member = db.session.get(SiteMember, (site.id, target.id))
    created = member is None
    if created:
        member = SiteMember(site_id=site.id, user_id=target.id, permission=permission)
        db.session.add(member)
    else:
        member.permission = permission
    try:
        db.session.commit()
    except sa.exc.IntegrityError as exc:  # the same share added meanwhile, or the user just deleted
        db.session.rollback()
        raise Conflict("the site's members changed meanwhile; try again") from exc
    return member, created


def delete_member(user: User, site_id: int, member_id: int) -> None:
    site = get_site(user, site_id)
    _require_owner_or_admin(user, site)
    member = db.session.get(SiteMember, (site.id, member_id))
    if member is None:
        raise NotFound(f"user {member_id} is not a member of site {site_id}")
    db.session.delete(member)
    db.session.commit()


def invalidate_site(site_id: int) -> None:
    """Drop every cached read derived from this site; called after each write that changes them."""
    invalidate_sites([site_id])


def invalidate_sites(site_ids) -> None:
    """`invalidate_site` of each of `site_ids`, in one round trip to the cache."""
    cache.invalidate(*(cache.key("summary", site_id) for site_id in sorted(site_ids)))


def lock_in_order(site_ids) -> dict[int, Site]:
    """Lock the sites in id order (every writer does the same, so writers never deadlock) and read their
    latest committed state: {id: site}."""
    if not site_ids:
        return {}
    return {
        site.id: site
        for site in db.session.scalars(
            sa.select(Site)
            .where(Site.id.in_(sorted(site_ids)))
            .order_by(Site.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    }
