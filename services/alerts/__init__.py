"""Alerts: who is told what, and when to keep quiet (docs/alerts.md).

- `events`: what happened (site.down, site.up, site.flapping, tls.expiring, tamper.opened, findings.new),
  decided where the state changes and written as outbox rows in that same transaction;
- `channels`: who hears it (a user's webhook or Apprise URL), their rules and the test send;
- `outbox`: what is owed to whom: claiming rows for sending, recording the outcome, the delivery log;
- `maintenance`: windows during which sites are silent and their checks do not count in uptime;
- `messages`: the words a person on call reads, in English or Simplified Chinese.
Nothing here sends on its own: the sync worker (`sync/notify.py`) does, through `services.transports`.
"""
