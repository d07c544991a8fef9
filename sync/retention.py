"""Retention: raw checks older than USABILITY_RETENTION_DAYS go, in small batches (short locks).

Rollups keep the history, so uptime over any period survives. Running it on several replicas at once is
harmless (each batch deletes what is still there); heartbeat rows of long-gone workers go too.
"""

import logging

from services.usability import delete_old_checks
from sync import heartbeat

log = logging.getLogger(__name__)


def run(retention_days: int, batch_size: int = 2000) -> int:
    deleted = delete_old_checks(retention_days, batch_size=batch_size)
    if deleted:
        log.info("retention: deleted %d checks older than %d days", deleted, retention_days)
    pruned = heartbeat.prune()
    if pruned:
        log.info("retention: removed %d stale worker heartbeats", pruned)
    return deleted
