import json

from flask import current_app, request
from flask.views import MethodView

from api.auth import public
from api.common import Blueprint, PageArgs, current_user, page_of, paginate
from api.v1.status_page.schemas import (
    PublicStatusSchema,
    StatusPageSchema,
    StatusPageUpdateSchema,
    StatusPageWriteSchema,
)
from services import status_pages
from services.cache import Memo

blp = Blueprint(
    "status_page", __name__, url_prefix="/status-pages", description="Public status pages of some sites"
)
public_blp = Blueprint("public", __name__, url_prefix="/public", description="What anyone may read, no login")


@blp.route("")
class StatusPages(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_of(StatusPageSchema))
    def get(self, args):
        """The caller's status pages (admin: every page)"""
        return paginate(status_pages.list_pages(current_user()), args)

    @blp.arguments(StatusPageWriteSchema)
    @blp.response(201, StatusPageSchema)
    @blp.alt_response(409, description="the slug is taken")
    def post(self, data):
        """Publish a status page (admin, operator; each site needs write access)"""
        return status_pages.create_page(current_user(), data)


@blp.route("/<id:page_id>")
class StatusPageById(MethodView):
    @blp.response(200, StatusPageSchema)
    def get(self, page_id):
        """One status page"""
        return status_pages.get_page(current_user(), page_id)

    @blp.arguments(StatusPageUpdateSchema(partial=True))
    @blp.response(200, StatusPageSchema)
    @blp.alt_response(409, description="the slug is taken")
    def patch(self, changes, page_id):
        """Change a status page"""
        return status_pages.update_page(current_user(), page_id, changes)

    @blp.response(204)
    def delete(self, page_id):
        """Delete a status page"""
        status_pages.delete_page(current_user(), page_id)


@public_blp.route("/status/<string:slug>")
@public
@public_blp.doc(security=[])
@public_blp.response(200, PublicStatusSchema)
@public_blp.alt_response(404, description="no status page has this slug")
def public_status(slug):
    """A status page's sites: names, states, 90 days of daily uptime, recent incidents (no login)"""
    page = status_pages.public_status(slug)
    # Serialized (and gzipped) once per version of the page in each process: a burst of visitors costs a
    # cache read.
    raw, compressed = _serialized.get_or_make(
        (slug, page["generated_at"]),
        lambda: Memo.encoded(json.dumps(PublicStatusSchema().dump(page), separators=(",", ":"))),
    )
    response = current_app.response_class(raw, mimetype="application/json")
    if request.accept_encodings["gzip"]:
        response.set_data(compressed)
        response.headers["Content-Encoding"] = "gzip"
    response.vary.add("Accept-Encoding")
    # Public data, as the page at /status/<slug>: browsers and proxies may keep it as long as the cache here.
    response.headers["Cache-Control"] = f"public, max-age={status_pages.PUBLIC_TTL_S}"
    return response


_serialized = Memo()
