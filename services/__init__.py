"""The shared core of cloudeye: configuration, extensions, logging, models and domain rules.

Nothing in here knows about HTTP; `api/` and `sync/` both build on it.
"""
