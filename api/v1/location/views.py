from flask_smorest import Blueprint

from api.common import PageArgs, page_of
from api.v1.location.schemas import LocationSchema
from services import locations

blp = Blueprint("location", __name__, url_prefix="/locations", description="Where checks are made from")


@blp.route("")
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_of(LocationSchema))
def list_locations(args):
    """Locations seen in the heartbeats of sync workers and probe agents (within a day), by name"""
    return locations.page_of_locations(args["page"], args["per_page"])
