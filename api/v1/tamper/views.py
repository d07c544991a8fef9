from flask.views import MethodView

from api.common import Blueprint, current_user, page_of, paginate
from api.v1.tamper.schemas import (
    TamperEventDetailSchema,
    TamperEventQueryArgs,
    TamperEventSchema,
    TamperEventUpdateSchema,
)
from services import tamper

blp = Blueprint("tamper", __name__, url_prefix="/tamper", description="Defacement and change detection")


@blp.route("/events")
@blp.arguments(TamperEventQueryArgs, location="query")
@blp.response(200, page_of(TamperEventSchema))
def list_events(args):
    """Tamper events, newest first"""
    return paginate(tamper.list_events(current_user(), args.get("site_id"), args.get("status")), args)


@blp.route("/events/<id:event_id>")
class TamperEventById(MethodView):
    @blp.response(200, TamperEventDetailSchema)
    def get(self, event_id):
        """One event with its unified diff"""
        return tamper.get_event(current_user(), event_id)

    @blp.arguments(TamperEventUpdateSchema)
    @blp.response(200, TamperEventDetailSchema)
    def patch(self, changes, event_id):
        """Triage an event: accepted (the page becomes the baseline), resolved, false_positive"""
        return tamper.update_event(current_user(), event_id, changes)
