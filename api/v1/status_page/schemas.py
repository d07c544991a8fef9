from marshmallow import Schema, fields

from services.schemas import StatusPageUpdateSchema, StatusPageWriteSchema  # noqa: F401 - the views take it from here


class StatusPageSchema(Schema):
    id = fields.Integer(dump_only=True)
    owner_id = fields.Integer(dump_only=True)
    slug = fields.String()
    title = fields.String()
    description = fields.String(allow_none=True)
    site_ids = fields.List(fields.Integer())
    public_url = fields.Function(lambda page: f"/status/{page.slug}", dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class PublicSiteSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    state = fields.String(metadata={"enum": ["unknown", "up", "pending", "down", "paused"]})
    uptime_90d = fields.Float(allow_none=True)
    daily_uptime = fields.List(
        fields.Float(allow_none=True),
        metadata={"description": "uptime % of each of the last 90 days (UTC), oldest first; null: no checks"},
    )


class PublicIncidentSchema(Schema):
    site_id = fields.Integer()
    site_name = fields.String()
    started_at = fields.String()
    ended_at = fields.String(allow_none=True)
    duration_s = fields.Float(allow_none=True)


class PublicStatusSchema(Schema):
    slug = fields.String()
    title = fields.String()
    description = fields.String(allow_none=True)
    state = fields.String(metadata={"enum": ["operational", "degraded", "outage", "unknown"]})
    generated_at = fields.String()
    first_day = fields.String(metadata={"description": "the UTC date of daily_uptime[0]"})
    sites = fields.List(fields.Nested(PublicSiteSchema))
    incidents = fields.List(fields.Nested(PublicIncidentSchema))
