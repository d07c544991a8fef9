"""Blueprint v1, mounted at API_PREFIX (/api/cloudeye/v1), with one nested blueprint per resource."""

from api.auth import authenticate_request
from api.common import Blueprint
from services.config import API_PREFIX


def register_v1(api):
    from api.v1.channel.views import blp as channel
    from api.v1.finding.views import blp as finding
    from api.v1.health.views import blp as health
    from api.v1.location.views import blp as location
    from api.v1.maintenance.views import blp as maintenance
    from api.v1.notification.views import blp as notification
    from api.v1.probe.views import blp as probe
    from api.v1.site.views import blp as site
    from api.v1.status_page.views import blp as status_page
    from api.v1.status_page.views import public_blp as public
    from api.v1.tamper.views import blp as tamper
    from api.v1.usability.views import blp as usability
    from api.v1.user.views import blp as user

    v1 = Blueprint("v1", __name__, description="cloudeye API v1")
    v1.before_request(authenticate_request)
    for child in (
        user,
        site,
        usability,
        tamper,
        finding,
        channel,
        notification,
        maintenance,
        status_page,
        public,
        location,
        probe,
        health,
    ):
        v1.register_blueprint(child)
    api.register_blueprint(v1, url_prefix=API_PREFIX)
