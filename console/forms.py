"""The console's forms. Flask-WTF renders them and carries the CSRF token; the field rules are not here
but in `services/schemas.py`, which the API uses too, so a form says exactly what the API would say
(`load_form`)."""

import re

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from marshmallow import Schema, fields
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
from services.sites import masked_url

INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")


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

    LIST_FIELDS = ("tamper_ignore", "forbidden_keywords")
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
        if body["keyword"] == "":
            body["keyword"] = None
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
    role = SelectField(_l("Role"), choices=list(ROLES), default="viewer")


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
