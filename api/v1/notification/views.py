from api.common import Blueprint, current_user, page_of, paginate
from api.v1.notification.schemas import NotificationQueryArgs, NotificationSchema
from services.alerts import outbox

blp = Blueprint(
    "notification", __name__, url_prefix="/notifications", description="The delivery log of alerts"
)


@blp.route("")
@blp.arguments(NotificationQueryArgs, location="query")
@blp.response(200, page_of(NotificationSchema))
def list_notifications(args):
    """Notifications of the caller's channels (admin: all), newest first"""
    query = outbox.list_notifications(
        current_user(),
        channel_id=args.get("channel_id"),
        site_id=args.get("site_id"),
        status=args.get("status"),
        event=args.get("event"),
    )
    return paginate(query, args)
