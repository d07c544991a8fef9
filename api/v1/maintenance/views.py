from flask.views import MethodView

from api.common import Blueprint, current_user, page_of, paginate
from api.v1.maintenance.schemas import (
    MaintenanceQueryArgs,
    MaintenanceSchema,
    MaintenanceUpdateSchema,
    MaintenanceWriteSchema,
)
from services.alerts import maintenance

blp = Blueprint(
    "maintenance",
    __name__,
    url_prefix="/maintenance",
    description="Maintenance windows: no alerts, and left out of uptime",
)


@blp.route("")
class MaintenanceWindows(MethodView):
    @blp.arguments(MaintenanceQueryArgs, location="query")
    @blp.response(200, page_of(MaintenanceSchema))
    def get(self, args):
        """The caller's maintenance windows (admin: all)"""
        return paginate(maintenance.list_windows(current_user(), args.get("site_id")), args)

    @blp.arguments(MaintenanceWriteSchema)
    @blp.response(201, MaintenanceSchema)
    def post(self, data):
        """Create a one-off or weekly window (admin, or an operator who may change every site of it)"""
        return maintenance.create_window(current_user(), data)


@blp.route("/<id:window_id>")
class MaintenanceWindowById(MethodView):
    @blp.response(200, MaintenanceSchema)
    def get(self, window_id):
        """One window"""
        return maintenance.get_window(current_user(), window_id)

    @blp.arguments(MaintenanceUpdateSchema)
    @blp.response(200, MaintenanceSchema)
    def patch(self, changes, window_id):
        """Change a window"""
        return maintenance.update_window(current_user(), window_id, changes)

    @blp.response(204)
    def delete(self, window_id):
        """Delete a window"""
        maintenance.delete_window(current_user(), window_id)
