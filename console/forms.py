"""The console's forms. Flask-WTF renders them and carries the CSRF token; the field rules are not here
but in `services/schemas.py`, which the API uses too, so a form says exactly what the API would say
(`load_form`)."""

import re
from datetime import UTC, datetime
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from marshmallow import Schema, ValidationError, fields
from wtforms import (
    BooleanField,
    DecimalField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.widgets import DateTimeLocalInput, TimeInput

from services.models import EVENT_STATUSES, EVENTS, FINDING_STATUSES, FORMATS, ROLES, SEVERITIES, WEEKDAYS
from services.schemas import Id, Str
from services.sites import masked_url

INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")


def as_id(value: str) -> int | None:
    """A form's or query's id: ASCII digits that fit a 64-bit integer (SQLite refuses bigger ones with an
    error, and `isdigit` alone takes "９"); None for anything else."""
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 18 else None


def as_ids(values) -> set[int]:
    """The valid ids among `values` (a multi-valued field such as site_ids); the rest are dropped."""
    return {number for number in map(as_id, values) if number is not None}


def load_form(schema: Schema, body: dict) -> dict:
    """`body` (a form's values) loaded through the API's `schema`. The schema takes JSON's types (an
    integer field takes 60, not "60"), and a form sends only text: a value that reads as the number its
    field wants becomes that number first; anything else stays as typed, for the schema to refuse with
    the message the API would give. Booleans come from checkboxes, already as booleans."""
    return schema.load({name: _typed(schema.fields.get(name), value) for name, value in body.items()})


def _typed(field, value):
    if isinstance(field, fields.List) and isinstance(value, list):
        return [_typed(field.inner, item) for item in value]
    if not isinstance(value, str):
        return value
    text = value.strip()
    if isinstance(field, fields.Integer) and INTEGER_TEXT.fullmatch(text):
        return int(text)
    if isinstance(field, fields.Float):
        try:
            return float(text)
        except ValueError:
            return value
    return value


class LoginForm(FlaskForm):
    username = StringField(_l("Username"))
    password = PasswordField(_l("Password"))


class SiteForm(FlaskForm):
    name = StringField(_l("Name"))
    url = StringField(_l("URL"))
    check_interval_s = IntegerField(_l("Check every (seconds)"), default=60)
    timeout_s = IntegerField(_l("Timeout (seconds)"), default=10)
    accepted_status = StringField(_l("Accepted status codes"), default="200-399")
    keyword = StringField(_l("Keyword"))
    keyword_absent = BooleanField(_l("Down when the keyword is present (instead of absent)"))
    max_retries = IntegerField(_l("Failures before down"), default=0)
    tamper_enabled = BooleanField(_l("Tamper detection"))
    tamper_threshold = DecimalField(_l("Change ratio that opens an event (0-1)"), default=0.05, places=None)
    tamper_ignore = TextAreaField(_l("Ignore patterns (regular expressions, one per line)"))
    forbidden_keywords = TextAreaField(_l("Forbidden words (one per line)"))
    paused = BooleanField(_l("Paused"))
    locations = TextAreaField(_l("Check from these locations (one per line; none: from any one)"))
    quorum = StringField(_l("Locations that must see it down (empty: a majority)"))

    LIST_FIELDS = ("tamper_ignore", "forbidden_keywords", "locations")
    BOOLEAN_FIELDS = ("keyword_absent", "tamper_enabled", "paused")

    def body(self, formdata) -> dict:
        """The request as the API would receive it: raw strings (the schema converts and checks them),
        lists from one line each, checkboxes as booleans, an empty keyword as none."""
        body = {}
        for field in self:
            name = field.name
            if name == "csrf_token":
                continue
            if name in self.BOOLEAN_FIELDS:
                body[name] = name in formdata
            elif name in self.LIST_FIELDS:
                body[name] = [line.strip() for line in formdata.get(name, "").splitlines() if line.strip()]
            else:
                body[name] = formdata.get(name, "").strip()
        for name in ("keyword", "quorum"):
            if body[name] == "":
                body[name] = None
        return body

    def fill(self, site) -> None:
        for field in self:
            if field.name == "csrf_token":
                continue
            field.data = self.current(site, field.name)

    @classmethod
    def current(cls, site, name: str):
        """The value the form shows for the site's setting `name`: lists one item a line, and the URL with
        `***` for its password (never sent to the browser; saved back as it is, it keeps the password)."""
        if name == "url":
            return masked_url(site)
        value = getattr(site, name)
        return "\n".join(value) if name in cls.LIST_FIELDS else value


class UserCreateForm(FlaskForm):
    username = StringField(_l("Username"))
    password = PasswordField(_l("Password"))
    email = StringField(_l("Email"))
    # Probe accounts (remote agents) need a location: the API or `flask user create --role probe`.
    role = SelectField(_l("Role"), choices=[role for role in ROLES if role != "probe"], default="viewer")


class UserEditForm(FlaskForm):
    username = StringField(_l("Username"))
    email = StringField(_l("Email"))
    role = SelectField(_l("Role"), choices=list(ROLES))
    is_active = BooleanField(_l("Active"))
    password = PasswordField(_l("New password (leave empty to keep it)"))
    revoke_api_tokens = BooleanField(
        _l("With a new password, revoke their API tokens too (their logins always end)"), default=True
    )


class PasswordForm(FlaskForm):
    current_password = PasswordField(_l("Current password"))
    new_password = PasswordField(_l("New password"))
    revoke_api_tokens = BooleanField(
        _l("Revoke my API tokens too (my other logins always end)"), default=True
    )


class TokenForm(FlaskForm):
    name = StringField(_l("Name"))
    expires_in_days = StringField(_l("Expires after (days, empty: never)"))


class StatusPageForm(FlaskForm):
    slug = StringField(_l("Slug (the address: /status/<slug>)"))
    title = StringField(_l("Title"))
    description = TextAreaField(_l("Description"))


class EventForm(FlaskForm):
    status = SelectField(_l("Status"), choices=list(EVENT_STATUSES))
    note = TextAreaField(_l("Note"))


class FindingForm(FlaskForm):
    status = SelectField(_l("Status"), choices=list(FINDING_STATUSES))
    note = TextAreaField(_l("Note"))


class ImportForm(FlaskForm):
    file = FileField(_l("Report file"))
    format = SelectField(_l("Format"), choices=[SelectChoice("", _l("detect from the content")), *FORMATS])
    close_missing = BooleanField(_l("Mark the open findings this report no longer lists as fixed"))


# --- alerts: channels and maintenance windows ---------------------------------------------------------
# The forms only turn their strings into the types the API's JSON would carry (with marshmallow's own
# messages for what is not a number); every rule and its message is services.alerts' (as for the API).

EVENT_LABELS = {
    "site.down": _l("A site goes down"),
    "site.up": _l("A site comes back up"),
    "site.flapping": _l("A site keeps going up and down"),
    "tls.expiring": _l("A TLS certificate expires soon"),
    "tamper.opened": _l("A page was changed (a tamper event)"),
    "findings.new": _l("New findings (a report or the built-in scan)"),
    "test": _l("Test message"),
}
CHANNEL_LANGUAGES = [SelectChoice("en", "English"), SelectChoice("zh-CN", "简体中文")]
WEEKDAY_LABELS = dict(
    zip(WEEKDAYS, (_l("Mon"), _l("Tue"), _l("Wed"), _l("Thu"), _l("Fri"), _l("Sat"), _l("Sun")), strict=True)
)


@cache
def zone_names() -> list[str]:
    """The time zones the form offers: the IANA database's Area/Location names (the tzdata package's,
    so the same on every host) and UTC. A window saved through the API with another name the service
    accepts keeps it (MaintenanceForm.fill)."""
    return sorted(name for name in available_timezones() if "/" in name or name == "UTC")


class ChannelForm(FlaskForm):
    name = StringField(_l("Name"))
    url = StringField(_l("URL"))
    secret = PasswordField(_l("Secret (webhooks only: signs every message)"))
    remove_secret = BooleanField(_l("Remove the secret"))
    events = SelectMultipleField(_l("Events"), default=list(EVENTS))
    sites = RadioField(
        _l("Sites"),
        choices=[
            SelectChoice("all", _l("All my sites, now and later")),
            SelectChoice("chosen", _l("Only these sites")),
        ],
        default="all",
    )
    site_ids = SelectMultipleField(_l("Sites"))
    min_severity = SelectField(_l("New findings from severity"), choices=list(SEVERITIES), default="high")
    remind_every_min = IntegerField(_l("Remind while down, every (minutes; 0: never)"), default=0)
    language = SelectField(_l("Language of the messages"), choices=CHANNEL_LANGUAGES, default="en")
    enabled = BooleanField(_l("Enabled"), default=True)

    def body(self, formdata) -> dict:
        """The request as the API would receive it: the secret only when one is typed (or removed), the
        sites as null for "all my sites"."""
        body = {
            "name": formdata.get("name", "").strip(),
            "url": formdata.get("url", "").strip(),
            "events": formdata.getlist("events"),
            "site_ids": formdata.getlist("site_ids") if formdata.get("sites") == "chosen" else None,
            "min_severity": formdata.get("min_severity", ""),
            "remind_every_min": formdata.get("remind_every_min", "").strip() or "0",
            "language": formdata.get("language", ""),
            "enabled": "enabled" in formdata,
        }
        if formdata.get("secret"):
            body["secret"] = formdata["secret"]
        elif "remove_secret" in formdata:
            body["secret"] = None
        return body

    def fill(self, channel, masked_url: str) -> None:
        self.name.data, self.url.data, self.events.data = channel.name, masked_url, list(channel.events)
        self.sites.data = "all" if channel.all_sites else "chosen"
        self.min_severity.data, self.remind_every_min.data = channel.min_severity, channel.remind_every_min
        self.language.data, self.enabled.data = channel.language, channel.enabled


class ChannelBody(Schema):
    """The types of a channel's fields, as the API's JSON carries them."""

    name = Str()
    url = Str()
    events = fields.List(Str())
    site_ids = fields.List(Id(), allow_none=True)
    min_severity = Str()
    remind_every_min = fields.Integer()
    language = Str()
    enabled = fields.Boolean()
    secret = Str(allow_none=True)


class MaintenanceForm(FlaskForm):
    title = StringField(_l("Title"))
    kind = RadioField(
        _l("When"),
        choices=[SelectChoice("once", _l("Once")), SelectChoice("weekly", _l("Every week"))],
        default="once",
    )
    starts_at = StringField(_l("Starts"), widget=DateTimeLocalInput())
    ends_at = StringField(_l("Ends"), widget=DateTimeLocalInput())
    weekdays = SelectMultipleField(_l("On"))
    start_time = StringField(_l("At"), widget=TimeInput())
    duration_min = IntegerField(_l("For (minutes)"))
    timezone = SelectField(_l("Time zone"), default="UTC")
    site_ids = SelectMultipleField(_l("Sites"))

    LOCAL_FORMAT = "%Y-%m-%dT%H:%M"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.timezone.choices = list(zone_names())

    def body(self, formdata, current=None) -> dict:
        """The request as the API would receive it, for the kind chosen: a one-off window's local times
        (in the chosen time zone) as UTC instants, or the weekly recurrence. ValidationError with the
        fields' messages when a time is not one."""
        body = {"title": formdata.get("title", "").strip(), "site_ids": formdata.getlist("site_ids")}
        zone = formdata.get("timezone") or "UTC"
        if formdata.get("kind") == "weekly":
            return {
                **body,
                "weekdays": formdata.getlist("weekdays"),
                "start_time": formdata.get("start_time", "").strip() or None,
                "duration_min": formdata.get("duration_min", "").strip() or None,
                "timezone": zone,
            }
        errors: dict[str, list] = {}
        given = {}
        for name in ("starts_at", "ends_at"):
            text = formdata.get(name, "").strip()
            if not text:
                # A weekly window switched to once needs both times (the service would keep it weekly).
                if current is not None and current.recurring:
                    errors[name] = [_l("Required for a one-off window.")]
                continue
            try:
                given[name] = local_instant(text, zone)
            except ValidationError as exc:
                errors[name] = exc.messages
        if errors:
            raise ValidationError(errors)
        # A time zone alone would make the service read a weekly window: it is sent with the times (and
        # the service says if it is unknown).
        return {**body, **given, **({"timezone": zone} if given else {})}

    def fill(self, window) -> None:
        self.title.data = window.title
        self.kind.data = "weekly" if window.recurring else "once"
        self.timezone.data = window.timezone
        if window.timezone not in self.timezone.choices:
            self.timezone.choices.append(window.timezone)
        if window.recurring:
            self.weekdays.data, self.start_time.data = list(window.weekdays), window.start_time
            self.duration_min.data = window.duration_min
        else:
            zone = zone_or_utc(window.timezone)
            self.starts_at.data = window.starts_at.astimezone(zone).strftime(self.LOCAL_FORMAT)
            self.ends_at.data = window.ends_at.astimezone(zone).strftime(self.LOCAL_FORMAT)


class MaintenanceBody(Schema):
    """The types of a window's fields, as the API's JSON carries them (times already parsed)."""

    title = Str()
    site_ids = fields.List(Id())
    starts_at = fields.Raw()
    ends_at = fields.Raw()
    weekdays = fields.List(Str())
    start_time = Str(allow_none=True)
    duration_min = fields.Integer(allow_none=True)
    timezone = Str()


def zone_or_utc(name: str) -> ZoneInfo:
    """The time zone `name`, or UTC for a name that is none (the service refuses it with its message)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return ZoneInfo("UTC")


def local_instant(text: str, zone: str) -> datetime:
    """A browser's local date and time (`2026-12-01T02:00`) in `zone`, as an aware UTC datetime."""
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone_or_utc(zone))
        moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValidationError("Not a valid datetime.") from None
    if not 1970 <= moment.year <= 9999:
        raise ValidationError("must be between 1970 and 9999")
    return moment


def apply_errors(form, errors: dict) -> None:
    """Put a schema's or a service's field errors ({field: [messages]}) on the form's fields; errors of
    fields the form does not have go to the whole form."""
    for name, messages in (errors or {}).items():
        flat = list(_flatten(messages))
        field = form._fields.get(name)
        if field is not None and name != "csrf_token":
            field.errors = list(field.errors) + flat
        else:
            form.form_errors.extend(flat if name == "_schema" else [f"{name}: {m}" for m in flat])


def _flatten(messages, prefix=""):
    if isinstance(messages, dict):  # a list field's errors by index: {0: [...]}
        for key, inner in messages.items():
            label = f"line {int(key) + 1}: " if str(key).isdigit() else f"{key}: "
            yield from _flatten(inner, prefix + label)
    elif isinstance(messages, list | tuple):
        for message in messages:
            yield from _flatten(message, prefix)
    else:
        yield prefix + str(messages)
