from flask.views import MethodView

from api.common import Blueprint, PageArgs, current_user, page_of, paginate
from api.v1.site.schemas import (
    CheckRequestedSchema,
    MemberSchema,
    MemberWriteSchema,
    SiteQueryArgs,
    SiteSchema,
    SiteUpdateSchema,
    SiteWriteSchema,
)
from services import sites

blp = Blueprint("site", __name__, url_prefix="/sites", description="Monitored sites and who shares them")


@blp.route("")
class Sites(MethodView):
    @blp.arguments(SiteQueryArgs, location="query")
    @blp.response(200, page_of(SiteSchema))
    def get(self, args):
        """Sites the caller may see"""
        return paginate(sites.list_sites(current_user(), args.get("q"), args.get("state")), args)

    @blp.arguments(SiteWriteSchema)
    @blp.response(201, SiteSchema)
    def post(self, data):
        """Create a site (admin, operator)"""
        return sites.create_site(current_user(), data)


@blp.route("/<id:site_id>")
class SiteById(MethodView):
    @blp.response(200, SiteSchema)
    def get(self, site_id):
        """One site"""
        return sites.get_site(current_user(), site_id)

    @blp.arguments(SiteUpdateSchema(partial=True))
    @blp.response(200, SiteSchema)
    def patch(self, changes, site_id):
        """Change a site"""
        return sites.update_site(current_user(), site_id, changes)

    @blp.response(204)
    def delete(self, site_id):
        """Delete a site and all its data (owner, admin)"""
        sites.delete_site(current_user(), site_id)


@blp.route("/<id:site_id>/members")
class SiteMembers(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_of(MemberSchema))
    def get(self, args, site_id):
        """Users the site is shared with"""
        return paginate(sites.list_members(current_user(), site_id), args)


@blp.route("/<id:site_id>/members/<id:user_id>")
class SiteMemberById(MethodView):
    @blp.arguments(MemberWriteSchema)
    @blp.response(200, MemberSchema)
    @blp.alt_response(201, schema=MemberSchema, description="the user was added")
    def put(self, data, site_id, user_id):
        """Share the site with a user, or change their permission (owner, admin)"""
        member, created = sites.put_member(current_user(), site_id, user_id, data["permission"])
        return member, 201 if created else 200

    @blp.response(204)
    def delete(self, site_id, user_id):
        """Stop sharing the site with a user (owner, admin)"""
        sites.delete_member(current_user(), site_id, user_id)


@blp.route("/<id:site_id>/check", methods=["POST"])
@blp.response(202, CheckRequestedSchema)
@blp.alt_response(409, description="the site is paused")
def request_check(site_id):
    """Run the usability and tamper checks now (the sync worker picks it up)"""
    site = sites.request_check(current_user(), site_id)
    return {"site_id": site.id, "requested_at": site.check_requested_at, "message": "check queued"}


@blp.route("/<id:site_id>/tamper/baseline", methods=["POST"])
@blp.response(202, CheckRequestedSchema)
@blp.alt_response(409, description="tamper detection is off for the site, or the site is paused")
def request_baseline(site_id):
    """Take the current page as the new tamper baseline (on the worker's next fetch)"""
    site = sites.request_baseline(current_user(), site_id)
    return {"site_id": site.id, "requested_at": site.baseline_requested_at, "message": "baseline queued"}
