"""The sync worker (`python sync_main.py`): availability probes, tamper checks, built-in findings, the
report inbox and retention, on top of services/. See docs/sync.md."""
