"""Logging: stdout plus one file per process under LOG_DIR.

`get_logger(name, fname, log_dir, level, type)` is the classic helper: it attaches a file handler of the
requested type (TimedRotatingFileHandler, RotatingFileHandler or StreamHandler) and a stdout handler,
once — calling it twice never duplicates lines. Every process passes its own file name (role, host and
pid), so no two processes ever rotate the same file. Files of processes that ended (gunicorn recycles its
workers, containers are replaced) are deleted once untouched for LOG_RETENTION_DAYS.
"""

import logging
import logging.handlers
import os
import socket
import sys
import time
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(process)d %(name)s [%(request_id)s] %(message)s"
HANDLER_TYPES = ("TimedRotatingFileHandler", "RotatingFileHandler", "StreamHandler")
_MARK = "_cloudeye_handler"


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record: the current HTTP request's id, or '-' outside a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _current_request_id()
        return True


def _current_request_id() -> str:
    try:
        from flask import g, has_app_context

        if has_app_context():
            return getattr(g, "request_id", "-")
    except Exception:  # pragma: no cover - logging must never raise
        pass
    return "-"


def process_log_name(role: str) -> str:
    """A file name no other process uses: the role, the host (a container id under compose) and the pid."""
    return f"{role}.{socket.gethostname()}.{os.getpid()}.log"


def _make_file_handler(path: Path, handler_type: str) -> logging.Handler:
    if handler_type == "TimedRotatingFileHandler":
        return logging.handlers.TimedRotatingFileHandler(path, when="midnight", backupCount=14, utc=True)
    if handler_type == "RotatingFileHandler":
        return logging.handlers.RotatingFileHandler(path, maxBytes=50 * 1024 * 1024, backupCount=5)
    return logging.FileHandler(path)


def get_logger(
    name: str | None = None,
    fname: str | None = None,
    log_dir: str | None = None,
    level: str | int = "INFO",
    type: str = "StreamHandler",  # noqa: A002 - the classic helper's parameter name
) -> logging.Logger:
    """Configure and return logger `name` (root when None).

    With `type` StreamHandler only stdout is used; with a file handler type the logs go to stdout and to
    `log_dir/fname` as well. Idempotent: handlers this function added before are replaced, not doubled.
    """
    if type not in HANDLER_TYPES:
        raise ValueError(f"LOG_TYPE must be one of {HANDLER_TYPES}, got {type!r}")
    logger = logging.getLogger(name)
    logger.setLevel(level.upper() if isinstance(level, str) else level)
    for handler in [h for h in logger.handlers if getattr(h, _MARK, False)]:
        logger.removeHandler(handler)
        handler.close()

    formatter = logging.Formatter(FORMAT)
    request_filter = RequestIdFilter()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if fname and log_dir:
        # Files are written for every type; StreamHandler means "no rotation" (a plain file).
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        handlers.append(_make_file_handler(Path(log_dir) / fname, type))
    for handler in handlers:
        setattr(handler, _MARK, True)
        handler.setFormatter(formatter)
        handler.addFilter(request_filter)
        logger.addHandler(handler)
    return logger


def share_file_handlers(source: logging.Logger, target: logging.Logger) -> int:
    """Give `target` the files (not stdout) that `get_logger` set up on `source`; returns how many.

    For loggers that do not propagate to the root, such as gunicorn's error log: its tracebacks (an
    exception outside the app's handlers) would otherwise reach stderr only, which a container loses.
    Idempotent: a handler `target` already has is not added twice.
    """
    added = 0
    for handler in source.handlers:
        is_our_file = getattr(handler, _MARK, False) and isinstance(handler, logging.FileHandler)
        if is_our_file and handler not in target.handlers:
            target.addHandler(handler)
            added += 1
    return added


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def prune_old_logs(log_dir: str, keep_days: int) -> int:
    """Delete `<role>.<host>.<pid>.log*` files untouched for `keep_days`, except those of processes still
    alive on this host; returns how many went. A file of another host (container) is only judged by its
    age. Safe to run from several processes at once."""
    if keep_days <= 0 or not os.path.isdir(log_dir):
        return 0
    cutoff = time.time() - keep_days * 86400
    here = socket.gethostname()
    removed = 0
    for path in Path(log_dir).glob("*.*.*.log*"):
        name = path.name.split(".log", 1)[0]
        role, _, rest = name.partition(".")
        host, _, pid = rest.rpartition(".")
        if not (role and host and pid.isdigit()):
            continue  # not a per-process file (nginx's, supervisor's): not ours to remove
        try:
            if path.stat().st_mtime >= cutoff or (host == here and _process_alive(int(pid))):
                continue
            path.unlink()
            removed += 1
        except FileNotFoundError:  # another process pruned it first
            continue
    return removed


def init_logging(config, role: str) -> logging.Logger:
    """Set up the root logger for a process of `role` (api, sync, migrate, cli)."""
    root = get_logger(
        None,
        fname=process_log_name(role),
        log_dir=config.LOG_DIR,
        level=config.LOG_LEVEL,
        type=config.LOG_TYPE,
    )
    # Libraries that are chatty at INFO.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    removed = prune_old_logs(config.LOG_DIR, config.LOG_RETENTION_DAYS)
    if removed:
        root.info(
            "removed %d log files of ended processes older than %d days", removed, config.LOG_RETENTION_DAYS
        )
    return root
