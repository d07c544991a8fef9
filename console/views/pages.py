"""The overview, a site's page and everything done from it: the site form, checks, tamper events,
findings and report imports."""

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError

from console.auth import current_user, login_required, safe_next
from console.diff import parse_unified
from console.forms import EventForm, FindingForm, ImportForm, SiteForm, apply_errors, load_form
from console.views import bp
from services import dashboard, findings, imports, sites, tamper, usability
from services.errors import Conflict, DomainError, Invalid
from services.extensions import db
from services.findings import DEFAULT_SORT, SORTS
from services.models import FINDING_STATUSES, FORMATS, SEVERITIES, SITE_STATES
from services.schemas import SiteWriteSchema
from services.uploads import accepts_upload, offload

PER_PAGE = 25
FINDINGS_PER_PAGE = 50


def _page_arg() -> int:
    return min(max(request.args.get("page", 1, type=int) or 1, 1), 10**6)


@bp.get("/")
@login_required
def overview():
    state = request.args.get("state")
    state = state if state in SITE_STATES else None
    q = (request.args.get("q") or "").strip()[:200] or None
    data = dashboard.overview(current_user(), q=q, state=state, page=_page_arg(), per_page=PER_PAGE)
    return render_template("console/overview.html", data=data, q=q or "", state=state)


# --- sites -------------------------------------------------------------------------------------------


def _finding_filters() -> dict:
    """The findings filters of a site page, from the query string; anything unknown is dropped."""
    args = request.args
    sort = args.get("sort")
    return {
        "severity": [value for value in args.getlist("severity") if value in SEVERITIES],
        "status": [value for value in args.getlist("status") if value in FINDING_STATUSES] or None,
        "scanner": (args.get("scanner") or "").strip()[:32] or None,
        "q": (args.get("q") or "").strip()[:200] or None,
        "sort": sort if sort in SORTS else DEFAULT_SORT,
    }


@bp.get("/sites/<id:site_id>")
@login_required
def site(site_id):
    user = current_user()
    detail = dashboard.site_detail(user, site_id)
    filters = _finding_filters()
    page = findings.list_page(user, _page_arg(), FINDINGS_PER_PAGE, site_id=site_id, **filters)
    return render_template(
        "console/site.html",
        d=detail,
        findings=page,
        filters={**filters, "status": filters["status"] or []},
        import_form=ImportForm(),
        window=request.args.get("window")
        if request.args.get("window") in usability.SERIES_WINDOWS
        else "24h",
    )


@bp.get("/sites/<id:site_id>/chart.json")
@login_required
def site_chart(site_id):
    window = request.args.get("window", "24h")
    if window not in usability.SERIES_WINDOWS:
        abort(400, description=f"window must be one of {', '.join(usability.SERIES_WINDOWS)}")
    return jsonify(usability.response_series(current_user(), site_id, window))


def _load_site_body(form: SiteForm) -> dict | None:
    try:
        return load_form(SiteWriteSchema(), form.body(request.form))
    except ValidationError as exc:
        apply_errors(form, exc.messages)
        return None


@bp.route("/sites/new", methods=["GET", "POST"])
@login_required
def site_new():
    user = current_user()
    if user.role not in sites.WRITE_ROLES:
        abort(403, description=_("Viewers cannot create sites."))
    form = SiteForm()
    if request.method == "POST":
        data = _load_site_body(form)
        if data is not None:
            try:
                created = sites.create_site(user, data)
            except Invalid as exc:
                apply_errors(form, exc.errors or {"_schema": [exc.message]})
            else:
                flash(_("Site %(name)s added: its first check runs now.", name=created.name), "success")
                return redirect(url_for("console.site", site_id=created.id))
        return render_template("console/site_form.html", form=form, site=None), 422
    return render_template("console/site_form.html", form=form, site=None)


@bp.route("/sites/<id:site_id>/edit", methods=["GET", "POST"])
@login_required
def site_edit(site_id):
    user = current_user()
    site_ = sites.get_site(user, site_id, write=True)
    form = SiteForm()
    if request.method == "GET":
        form.fill(site_)
        return render_template("console/site_form.html", form=form, site=site_)
    data = _load_site_body(form)
    if data is not None:
        # Only what changed: an untouched interval must not move the next check, nor an untouched URL
        # take a new tamper baseline (the URL as the form showed it, its password masked).
        shown = {name: sites.masked_url(site_) if name == "url" else getattr(site_, name) for name in data}
        changes = {name: value for name, value in data.items() if shown[name] != value}
        try:
            sites.update_site(user, site_id, changes)
        except Invalid as exc:
            apply_errors(form, exc.errors or {"_schema": [exc.message]})
        else:
            flash(_("Site saved."), "success")
            return redirect(url_for("console.site", site_id=site_id))
    return render_template("console/site_form.html", form=form, site=site_), 422


@bp.post("/sites/<id:site_id>/delete")
@login_required
def site_delete(site_id):
    sites.delete_site(current_user(), site_id)
    flash(_("Site deleted."), "success")
    return redirect(url_for("console.overview"))


@bp.post("/sites/<id:site_id>/check")
@login_required
def site_check(site_id):
    try:
        sites.request_check(current_user(), site_id)
    except Conflict as exc:
        flash(exc.message, "error")
    else:
        flash(_("Check queued: the worker runs it within seconds."), "success")
    return redirect(url_for("console.site", site_id=site_id))


@bp.post("/sites/<id:site_id>/baseline")
@login_required
def site_baseline(site_id):
    try:
        sites.request_baseline(current_user(), site_id)
    except Conflict as exc:
        flash(exc.message, "error")
    else:
        flash(_("The next fetch of the page becomes the tamper baseline."), "success")
    return redirect(url_for("console.site", site_id=site_id, _anchor="tamper"))


# --- tamper events -----------------------------------------------------------------------------------


def _event_of_site(site_id: int, event_id: int, write: bool = False):
    event = tamper.get_event(current_user(), event_id, write=write)
    if event.site_id != site_id:
        abort(404)
    return event


def _render_event(site_id, event, form, status=200):
    view = "split" if request.args.get("view") == "split" else "unified"
    site_ = sites.get_site(current_user(), site_id)
    return (
        render_template(
            "console/event.html",
            site=site_,
            can_write=sites.can_write(current_user(), site_),
            event=event,
            diff=parse_unified(event.diff or ""),
            view=view,
            form=form,
        ),
        status,
    )


@bp.get("/sites/<id:site_id>/events/<id:event_id>")
@login_required
def event(site_id, event_id):
    found = _event_of_site(site_id, event_id)
    form = EventForm(status=found.status, note=found.note)
    return _render_event(site_id, found, form)


@bp.post("/sites/<id:site_id>/events/<id:event_id>")
@login_required
def event_update(site_id, event_id):
    found = _event_of_site(site_id, event_id)
    form = EventForm()
    changes = {"status": request.form.get("status", ""), "note": request.form.get("note", "").strip() or None}
    if changes["status"] not in tamper.TRANSITIONS:
        apply_errors(form, {"status": [_("Must be one of: %(names)s.", names=", ".join(tamper.TRANSITIONS))]})
        return _render_event(site_id, found, form, 422)
    try:
        tamper.update_event(current_user(), event_id, changes)
    except Invalid as exc:
        db.session.rollback()
        apply_errors(form, exc.errors or {"_schema": [exc.message]})
        return _render_event(site_id, _event_of_site(site_id, event_id), form, 422)
    flash(_("Tamper event %(id)s is now %(status)s.", id=event_id, status=changes["status"]), "success")
    return redirect(url_for("console.site", site_id=site_id, _anchor="tamper"))


# --- findings ----------------------------------------------------------------------------------------


def _render_finding(finding, form, status=200):
    user = current_user()
    site_ = sites.get_site(user, finding.site_id)
    back = safe_next(
        request.values.get("next"), url_for("console.site", site_id=site_.id, _anchor="findings")
    )
    return (
        render_template(
            "console/finding.html",
            site=site_,
            finding=finding,
            can_write=sites.can_write(user, site_),
            form=form,
            back=back,
        ),
        status,
    )


@bp.get("/findings/<id:finding_id>")
@login_required
def finding(finding_id):
    found = findings.get_finding(current_user(), finding_id)
    return _render_finding(found, FindingForm(status=found.status, note=found.note))


@bp.post("/findings/<id:finding_id>")
@login_required
def finding_update(finding_id):
    user = current_user()
    found = findings.get_finding(user, finding_id, write=True)
    form = FindingForm()
    status = request.form.get("status", "")
    if status not in FINDING_STATUSES:
        apply_errors(form, {"status": [_("Must be one of: %(names)s.", names=", ".join(FINDING_STATUSES))]})
        return _render_finding(found, form, 422)
    note = request.form.get("note", "").strip()
    if len(note) > 10_000:
        apply_errors(form, {"note": [_("Longer than 10,000 characters.")]})
        return _render_finding(found, form, 422)
    findings.update_finding(user, finding_id, {"status": status, "note": note or None})
    flash(_("Finding %(id)s is now %(status)s.", id=finding_id, status=status), "success")
    return redirect(safe_next(request.form.get("next"), url_for("console.site", site_id=found.site_id)))


# --- report imports ----------------------------------------------------------------------------------


@bp.post("/sites/<id:site_id>/imports")
@accepts_upload("MAX_UPLOAD_BYTES")  # every other page takes MAX_REQUEST_BYTES
@login_required
def site_import(site_id):
    user = current_user()
    form = ImportForm()
    upload = request.files.get("file")
    report_format = request.form.get("format") or None
    if upload is None or not upload.filename:
        apply_errors(form, {"file": [_("Choose a report file.")]})
    elif report_format is not None and report_format not in FORMATS:
        apply_errors(form, {"format": [_("Unknown format.")]})
    else:
        try:
            record, queued = imports.import_upload(
                user,
                site_id,
                upload.stream,
                format=report_format,
                close_missing="close_missing" in request.form,
                filename=upload.filename,
                offload=offload,  # the report is parsed off gevent's event loop, as the API's import
            )
        except DomainError as exc:
            if exc.status not in (413, 422):
                raise
            apply_errors(form, exc.errors or {"file": [exc.message]})
        else:
            if queued:
                return redirect(url_for("console.site_import_status", site_id=site_id, import_id=record.id))
            flash(
                _(
                    "Report imported: %(created)s new, %(reopened)s reopened, %(unchanged)s unchanged, "
                    "%(closed)s fixed.",
                    created=record.created,
                    reopened=record.reopened,
                    unchanged=record.unchanged,
                    closed=record.closed,
                ),
                "success",
            )
            return redirect(url_for("console.site", site_id=site_id, _anchor="findings"))
    site_ = sites.get_site(user, site_id, write=True)
    return render_template("console/import.html", site=site_, form=form), 422


@bp.get("/sites/<id:site_id>/imports")
@login_required
def site_import_form(site_id):
    site_ = sites.get_site(current_user(), site_id, write=True)
    return render_template("console/import.html", site=site_, form=ImportForm())


@bp.get("/sites/<id:site_id>/imports/<id:import_id>")
@login_required
def site_import_status(site_id, import_id):
    """A queued import's progress; the page reloads itself while the sync worker has not finished."""
    record = findings.get_import(current_user(), import_id)
    if record.site_id != site_id:
        abort(404)
    site_ = sites.get_site(current_user(), site_id)
    return render_template("console/import_status.html", site=site_, record=record)
