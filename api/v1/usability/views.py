from api.common import Blueprint, current_user, page_of, paginate
from api.v1.usability.schemas import (
    CheckQueryArgs,
    CheckSchema,
    IncidentQueryArgs,
    IncidentSchema,
    SummaryArgs,
    SummarySchema,
)
from services import usability

blp = Blueprint("usability", __name__, url_prefix="/usability", description="Availability checks and uptime")


@blp.route("/checks")
@blp.arguments(CheckQueryArgs, location="query")
@blp.response(200, page_of(CheckSchema))
def list_checks(args):
    """Check results, newest first"""
    query = usability.list_checks(
        current_user(),
        args.get("site_id"),
        args.get("status"),
        args.get("since"),
        args.get("until"),
        location=args.get("location"),
    )
    return paginate(query, args, split=usability.checks_by_site(current_user(), args.get("site_id")))


@blp.route("/summary")
@blp.arguments(SummaryArgs, location="query")
@blp.response(200, SummarySchema)
def summary(args):
    """State, uptime over 24h/7d/30d, latency and the open incident of a site"""
    return usability.summary(current_user(), args["site_id"])


@blp.route("/incidents")
@blp.arguments(IncidentQueryArgs, location="query")
@blp.response(200, page_of(IncidentSchema))
def list_incidents(args):
    """Down periods, newest first"""
    return paginate(usability.list_incidents(current_user(), args.get("site_id"), args.get("open")), args)
