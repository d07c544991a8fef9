"""The console's forms. Flask-WTF renders them and carries the CSRF token; the field rules are not here
but in `services/schemas.py`, which the API uses too, so a form says exactly what the API would say."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DecimalField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice

from services.models import EVENT_STATUSES, FINDING_STATUSES, FORMATS, ROLES


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
            value = getattr(site, field.name)
            field.data = "\n".join(value) if field.name in self.LIST_FIELDS else value


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
