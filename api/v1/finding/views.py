from flask import url_for
from flask.views import MethodView

from api.common import Blueprint, current_user, page_of, paginate
from api.v1.finding.schemas import (
    FindingDetailSchema,
    FindingImportFiles,
    FindingImportForm,
    FindingImportQueryArgs,
    FindingImportSchema,
    FindingQueryArgs,
    FindingSchema,
    FindingUpdateSchema,
)
from services import findings, imports
from services.uploads import accepts_upload, offload

# Findings live under /bugs (the URL of the contract); in the code and the document they are findings.
blp = Blueprint(
    "finding", __name__, url_prefix="/bugs", description="Vulnerability findings (/bugs) and report imports"
)


@blp.route("")
class Findings(MethodView):
    @blp.arguments(FindingQueryArgs, location="query")
    @blp.response(200, page_of(FindingSchema))
    def get(self, args):
        """Findings of the sites the caller may see (default order: most severe first)"""
        return findings.list_page(
            current_user(),
            args["page"],
            args["per_page"],
            site_id=args.get("site_id"),
            severity=args.get("severity"),
            status=args.get("status"),
            scanner=args.get("scanner"),
            q=args.get("q"),
            sort=args["sort"],
        )


@blp.route("/<id:finding_id>")
class FindingById(MethodView):
    @blp.response(200, FindingDetailSchema)
    def get(self, finding_id):
        """One finding with its description and evidence"""
        return findings.get_finding(current_user(), finding_id)

    @blp.arguments(FindingUpdateSchema)
    @blp.response(200, FindingDetailSchema)
    def patch(self, changes, finding_id):
        """Triage a finding: status (open, confirmed, fixed, false_positive, accepted_risk) and note"""
        return findings.update_finding(current_user(), finding_id, changes)


@blp.route("/imports")
class FindingImports(MethodView):
    @blp.arguments(FindingImportQueryArgs, location="query")
    @blp.response(200, page_of(FindingImportSchema))
    def get(self, args):
        """History of imports, newest first"""
        return paginate(findings.list_imports(current_user(), args.get("site_id")), args)

    @accepts_upload("MAX_UPLOAD_BYTES")
    @blp.arguments(FindingImportForm, location="form")
    @blp.arguments(FindingImportFiles, location="files")
    @blp.response(201, FindingImportSchema, description="imported (state done)")
    @blp.alt_response(
        202,
        schema=FindingImportSchema,
        description="queued for the sync worker (a report above IMPORT_QUEUE_BYTES): state queued; "
        "the Location header is the import's URL, which shows its progress",
    )
    @blp.alt_response(413, description="the report is larger than MAX_REPORT_BYTES")
    def post(self, form, files):
        """Import a scanner report (multipart: file, site_id, format, close_missing)

        Formats: nuclei (JSON lines or array), zap (traditional JSON or XML, xml-plus), sarif (2.1.0),
        burp (issues XML), nikto (JSON or XML), xray (JSON), wapiti (JSON or XML), generic
        ({"findings": [...]}). A malformed report is refused with 422 and changes nothing; an empty one
        (with its format given when it is a zero-byte file) is a scan that found nothing.

        A report of up to IMPORT_QUEUE_BYTES (10 MiB by default) is imported within the request: 201
        with what it did. A bigger one is queued: 202 with the import (state `queued`) and its URL in
        `Location`; a sync worker imports it, `GET /bugs/imports/{id}` shows its progress, and a report
        found malformed on the way ends `failed` with nothing changed.
        """
        upload = files["file"]
        record, queued = imports.import_upload(
            current_user(),
            form["site_id"],
            upload.stream,
            format=form.get("format"),
            close_missing=form["close_missing"],
            filename=upload.filename,
            offload=offload,
        )
        if queued:
            return record, 202, {"Location": url_for(".FindingImportById", import_id=record.id)}
        return record


@blp.route("/imports/<id:import_id>")
class FindingImportById(MethodView):
    @blp.response(200, FindingImportSchema)
    def get(self, import_id):
        """One import: its state (queued, running, done, failed), what it read and did so far"""
        return findings.get_import(current_user(), import_id)
