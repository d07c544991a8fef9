"""All models, importable from one place (and registered on the metadata for migrations)."""

from services.models.alert import (
    ALL_EVENTS,
    CHANNEL_KINDS,
    EVENTS,
    LANGUAGES,
    NOTIFICATION_STATUSES,
    WEEKDAYS,
    Channel,
    ChannelSite,
    MaintenanceSite,
    MaintenanceWindow,
    Notification,
)
from services.models.finding import (
    ACTIVE_STATUSES,
    FINDING_STATUSES,
    FORMATS,
    SEVERITIES,
    SEVERITY_RANK,
    TRIAGED_STATUSES,
    Finding,
    FindingImport,
)
from services.models.search import SearchGram, SearchGramCount, SearchHole, SearchRef, SearchState, SearchText
from services.models.site import LOCATION_STATES, PERMISSIONS, SITE_STATES, Site, SiteLocation, SiteMember
from services.models.status_page import StatusPage, StatusPageSite
from services.models.tamper import EVENT_STATUSES, TamperBaseline, TamperEvent
from services.models.usability import (
    CHECK_STATUSES,
    FAILURE_KINDS,
    Incident,
    UsabilityCheck,
    UsabilityLocationRollup,
    UsabilityRollup,
)
from services.models.user import ROLES, ApiToken, User
from services.models.worker import WorkerHeartbeat

__all__ = [
    "ALL_EVENTS",
    "CHANNEL_KINDS",
    "EVENTS",
    "LANGUAGES",
    "NOTIFICATION_STATUSES",
    "WEEKDAYS",
    "Channel",
    "SearchGram",
    "SearchGramCount",
    "SearchHole",
    "SearchRef",
    "SearchState",
    "SearchText",
    "ChannelSite",
    "MaintenanceSite",
    "MaintenanceWindow",
    "Notification",
    "ACTIVE_STATUSES",
    "CHECK_STATUSES",
    "EVENT_STATUSES",
    "FAILURE_KINDS",
    "FINDING_STATUSES",
    "FORMATS",
    "LOCATION_STATES",
    "PERMISSIONS",
    "ROLES",
    "SEVERITIES",
    "SEVERITY_RANK",
    "SITE_STATES",
    "TRIAGED_STATUSES",
    "ApiToken",
    "FindingImport",
    "Finding",
    "Incident",
    "Site",
    "SiteLocation",
    "SiteMember",
    "StatusPage",
    "StatusPageSite",
    "TamperBaseline",
    "TamperEvent",
    "UsabilityCheck",
    "UsabilityLocationRollup",
    "UsabilityRollup",
    "User",
    "WorkerHeartbeat",
]
