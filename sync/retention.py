"""Retention, run periodically by every worker:

- raw checks older than USABILITY_RETENTION_DAYS, in small batches (short locks);
- hourly rollups older than USABILITY_HOURLY_ROLLUP_DAYS (daily rollups keep the long history, so uptime
  over any period survives);
- login tokens expired or revoked, and revoked API tokens;
- heartbeats of long-gone workers, and locations silent for a day;
- sent and failed notifications older than NOTIFICATIONS_RETENTION_DAYS (pending ones are never deleted).

Running it on several replicas at once is harmless: each statement deletes what is still there.
"""

import logging

from services import locations
from services.alerts.outbox import delete_old as delete_old_notifications
from services.usability import delete_old_checks, delete_old_hourly_rollups
from services.users import delete_dead_tokens

log = logging.getLogger(__name__)


def run(
    retention_days: int, hourly_rollup_days: int = 90, notifications_days: int = 30, batch_size: int = 2000
) -> int:
    deleted = delete_old_checks(retention_days, batch_size=batch_size)
    if deleted:
        log.info("retention: deleted %d checks older than %d days", deleted, retention_days)
    rollups = delete_old_hourly_rollups(hourly_rollup_days)
    if rollups:
        log.info("retention: deleted %d hourly rollups older than %d days", rollups, hourly_rollup_days)
    tokens = delete_dead_tokens()
    if tokens:
        log.info("retention: deleted %d expired or revoked tokens", tokens)
    notifications = delete_old_notifications(notifications_days, batch_size=batch_size)
    if notifications:
        log.info("retention: deleted %d notifications older than %d days", notifications, notifications_days)
    pruned = locations.prune()
    if pruned:
        log.info("retention: removed %d stale worker heartbeats or locations", pruned)
    return deleted
