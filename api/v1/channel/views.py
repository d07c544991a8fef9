from flask.views import MethodView

from api.common import Blueprint, current_user, page_of, paginate
from api.v1.channel.schemas import (
    ChannelQueryArgs,
    ChannelSchema,
    ChannelTestResultSchema,
    ChannelUpdateSchema,
    ChannelWriteSchema,
)
from services.alerts import channels

blp = Blueprint(
    "channel", __name__, url_prefix="/channels", description="Where alerts go: webhooks, email, chat apps"
)


@blp.route("")
class Channels(MethodView):
    @blp.arguments(ChannelQueryArgs, location="query")
    @blp.response(200, page_of(ChannelSchema))
    def get(self, args):
        """The caller's channels (admin: everybody's)"""
        return paginate(channels.list_channels(current_user()), args)

    @blp.arguments(ChannelWriteSchema)
    @blp.response(201, ChannelSchema)
    def post(self, data):
        """Create a channel (any role; it only carries news about sites its owner can see)"""
        return channels.create_channel(current_user(), data)


@blp.route("/<id:channel_id>")
class ChannelById(MethodView):
    @blp.response(200, ChannelSchema)
    def get(self, channel_id):
        """One channel"""
        return channels.get_channel(current_user(), channel_id)

    @blp.arguments(ChannelUpdateSchema)
    @blp.response(200, ChannelSchema)
    def patch(self, changes, channel_id):
        """Change a channel"""
        return channels.update_channel(current_user(), channel_id, changes)

    @blp.response(204)
    def delete(self, channel_id):
        """Delete a channel and its delivery log"""
        channels.delete_channel(current_user(), channel_id)


@blp.route("/<id:channel_id>/test", methods=["POST"])
@blp.response(200, ChannelTestResultSchema)
def test_channel(channel_id):
    """Send a test message now and answer with the outcome (bounded by NOTIFY_TIMEOUT_S)"""
    return channels.send_test(current_user(), channel_id)
