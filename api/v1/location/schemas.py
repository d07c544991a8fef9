from marshmallow import Schema, fields


class LocationSchema(Schema):
    name = fields.String(required=True, metadata={"description": "CLOUDEYE_LOCATION, or a probe agent's"})
    workers = fields.Integer(required=True, metadata={"description": "workers and agents alive there now"})
    last_seen_at = fields.DateTime(required=True, metadata={"description": "its latest heartbeat"})
    alive = fields.Boolean(required=True, metadata={"description": "a heartbeat within SYNC_HEARTBEAT_TTL_S"})
