"""Status pages: managing them (logged in) and the public pages and badges (no login, cached)."""

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from marshmallow import ValidationError

from console.auth import current_user, login_required
from console.forms import StatusPageForm, apply_errors, as_ids, load_form
from console.views import bp
from services import sites, status_pages
from services.cache import Memo
from services.errors import Conflict, Invalid, NotFound
from services.extensions import db
from services.schemas import StatusPageWriteSchema

PUBLIC_MAX_AGE = status_pages.PUBLIC_TTL_S
MAX_CHOICES = 500


@bp.get("/status-pages", endpoint="status_pages")
@login_required
def status_pages_list():
    pages = db.session.scalars(status_pages.list_pages(current_user())).all()
    return render_template("console/status_pages.html", pages=pages)


def _publishable_sites(user, keep=()):
    """The sites the user may put on a page (write access), plus those already on it."""
    visible = db.session.scalars(sites.list_sites(user).limit(MAX_CHOICES)).all()
    return [site for site in visible if site.id in keep or sites.can_write(user, site)]


def _body() -> dict:
    return {
        "slug": request.form.get("slug", "").strip(),
        "title": request.form.get("title", "").strip(),
        "description": request.form.get("description", "").strip() or None,
        "site_ids": request.form.getlist("site_ids"),
    }


def _render_form(form, page, chosen, status=200):
    user = current_user()
    choices = _publishable_sites(user, keep=set(page.site_ids) if page else ())
    return (
        render_template(
            "console/status_page_form.html", form=form, page=page, choices=choices, chosen=chosen
        ),
        status,
    )


def _chosen_ids() -> set[int]:
    return as_ids(request.form.getlist("site_ids"))


@bp.route("/status-pages/new", methods=["GET", "POST"])
@login_required
def status_page_new():
    user = current_user()
    if user.role not in sites.WRITE_ROLES:
        abort(403, description=_("Viewers cannot publish status pages."))
    form = StatusPageForm()
    if request.method == "GET":
        return _render_form(form, None, set())
    try:
        page = status_pages.create_page(user, load_form(StatusPageWriteSchema(), _body()))
    except ValidationError as exc:
        apply_errors(form, exc.messages)
    except (Conflict, Invalid) as exc:
        apply_errors(form, exc.errors or {"_schema": [exc.message]})
    else:
        flash(_("Status page published at /status/%(slug)s.", slug=page.slug), "success")
        return redirect(url_for("console.status_pages"))
    return _render_form(form, None, _chosen_ids(), 422)


@bp.route("/status-pages/<id:page_id>/edit", methods=["GET", "POST"])
@login_required
def status_page_edit(page_id):
    user = current_user()
    page = status_pages.get_page(user, page_id)
    form = StatusPageForm()
    if request.method == "GET":
        form.slug.data, form.title.data, form.description.data = page.slug, page.title, page.description
        return _render_form(form, page, set(page.site_ids))
    try:
        status_pages.update_page(user, page_id, load_form(StatusPageWriteSchema(), _body()))
    except ValidationError as exc:
        apply_errors(form, exc.messages)
    except (Conflict, Invalid) as exc:
        db.session.rollback()
        apply_errors(form, exc.errors or {"_schema": [exc.message]})
    else:
        flash(_("Status page saved."), "success")
        return redirect(url_for("console.status_pages"))
    return _render_form(form, status_pages.get_page(user, page_id), _chosen_ids(), 422)


@bp.post("/status-pages/<id:page_id>/delete")
@login_required
def status_page_delete(page_id):
    status_pages.delete_page(current_user(), page_id)
    flash(_("Status page deleted."), "success")
    return redirect(url_for("console.status_pages"))


# --- public ------------------------------------------------------------------------------------------


# Rendered once per page version and language in each process: a burst of visitors costs a cache read.
_rendered = Memo()


@bp.get("/status/<slug>")
def public_status(slug):
    page = status_pages.public_status(slug)
    locale = str(get_locale())
    raw, compressed = _rendered.get_or_make(
        ("status", slug, locale, page["generated_at"]),
        lambda: Memo.encoded(render_template("console/public_status.html", page=page)),
    )
    response = encoded_response(raw, compressed, "text/html")
    response.headers["Cache-Control"] = f"public, max-age={PUBLIC_MAX_AGE}"
    response.vary.add("Accept-Language")
    response.vary.add("Cookie")
    return response


def encoded_response(raw: bytes, compressed: bytes, mimetype: str) -> Response:
    """The body gzipped once in advance when the client accepts it (nginx passes it on as it is), so a
    big page is not compressed again for every visitor."""
    if request.accept_encodings["gzip"]:
        response = Response(compressed, mimetype=mimetype)
        response.headers["Content-Encoding"] = "gzip"
    else:
        response = Response(raw, mimetype=mimetype)
    response.vary.add("Accept-Encoding")
    return response


BADGE_COLOURS = {"up": "#2da44e", "pending": "#bf8700", "down": "#cf222e", "paused": "#6e7781"}


@bp.get("/badge/<slug>/<int:site_id>.svg")
def badge(slug, site_id):
    """An uptime badge (90 days) for a site on a public page, to show anywhere: shields.io's shape."""
    try:
        site = status_pages.public_site(slug, site_id)
    except NotFound:
        abort(404)
    uptime = site["uptime_90d"]
    value = "no data" if uptime is None else f"{uptime:.2f}%"
    colour = BADGE_COLOURS.get(site["state"], "#6e7781")
    label = "uptime"
    label_width, value_width = 6 * len(label) + 12, 7 * len(value) + 12
    svg = _rendered.get_or_make(
        ("badge", slug, site_id, value, colour, site["name"]),
        lambda: render_template(
            "console/badge.svg",
            label=label,
            value=value,
            colour=colour,
            label_width=label_width,
            value_width=value_width,
            name=site["name"],
        ),
    )
    response = Response(svg, mimetype="image/svg+xml")
    response.headers["Cache-Control"] = f"public, max-age={PUBLIC_MAX_AGE}"
    # Meant to be embedded by other sites' pages (an <img>), unlike everything else here.
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    response.headers["Content-Security-Policy"] = "default-src 'none'; frame-ancestors 'none'"
    return response
