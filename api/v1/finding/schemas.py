from flask_smorest.fields import Upload
from marshmallow import Schema, fields, validate

from api.common import AtLeastOneField, Id, PageArgs, Str
from services.findings import DEFAULT_SORT, SORTS
from services.models import FINDING_STATUSES, FORMATS, IMPORT_STATES, SEVERITIES


class FindingSchema(Schema):
    id = fields.Integer()
    site_id = fields.Integer()
    scanner = fields.String()
    rule_id = fields.String()
    title = fields.String()
    severity = fields.String(metadata={"enum": list(SEVERITIES)})
    status = fields.String(metadata={"enum": list(FINDING_STATUSES)})
    host = fields.String()
    path = fields.String()
    param = fields.String()
    location = fields.String()
    cwe = fields.String(allow_none=True)
    references = fields.List(fields.String())
    note = fields.String(allow_none=True)
    first_seen_at = fields.DateTime()
    last_seen_at = fields.DateTime()
    fixed_at = fields.DateTime(allow_none=True)
    last_import_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class FindingDetailSchema(FindingSchema):
    description = fields.String(allow_none=True)
    evidence = fields.String(allow_none=True)


class FindingQueryArgs(PageArgs):
    site_id = Id()
    severity = fields.List(
        fields.String(validate=validate.OneOf(SEVERITIES)),
        metadata={"description": "repeat to match several: severity=critical&severity=high"},
    )
    status = fields.List(
        fields.String(validate=validate.OneOf(FINDING_STATUSES)),
        metadata={"description": "repeat to match several: status=open&status=confirmed"},
    )
    scanner = Str(validate=validate.Length(min=1, max=32))
    q = Str(validate=validate.Length(min=1, max=200), metadata={"description": "in title or location"})
    sort = fields.String(load_default=DEFAULT_SORT, validate=validate.OneOf(list(SORTS)))


class FindingUpdateSchema(AtLeastOneField):
    status = fields.String(validate=validate.OneOf(FINDING_STATUSES))
    note = Str(allow_none=True, validate=validate.Length(max=10_000))


class FindingImportSchema(Schema):
    id = fields.Integer()
    site_id = fields.Integer()
    user_id = fields.Integer(allow_none=True)
    source = fields.String()
    format = fields.String(metadata={"enum": list(FORMATS)})
    scanner = fields.String()
    filename = fields.String(allow_none=True)
    file_sha256 = fields.String(allow_none=True)
    close_missing = fields.Boolean()
    findings_in_report = fields.Integer()
    created = fields.Integer()
    reopened = fields.Integer()
    unchanged = fields.Integer()
    closed = fields.Integer()
    duration_ms = fields.Float()
    created_at = fields.DateTime()
    state = fields.String(
        metadata={
            "enum": list(IMPORT_STATES),
            "description": "done at once for a report imported within its request; a queued one goes "
            "queued, running, then done or failed",
        }
    )
    rows_read = fields.Integer(
        metadata={"description": "findings read from the report so far (repeats included)"}
    )
    error = fields.String(allow_none=True, metadata={"description": "why it failed; nothing was changed"})
    attempts = fields.Integer(metadata={"description": "runs started by sync workers (queued imports)"})
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)


class FindingImportQueryArgs(PageArgs):
    site_id = Id()


class FindingImportForm(Schema):
    site_id = Id(required=True)
    format = fields.String(
        validate=validate.OneOf(FORMATS),
        metadata={"description": "detected from the content when absent"},
    )
    close_missing = fields.Boolean(
        load_default=False,
        metadata={"description": "fix the open findings of this scanner that the report no longer lists"},
    )


class FindingImportFiles(Schema):
    file = Upload(required=True, metadata={"description": "the scanner report"})
