"""gunicorn settings. Every value can be overridden from the environment (GUNICORN_<NAME>).

The same file serves compose (`api` service), supervisor (`dataapi` program), `make run` and `make stack`.
Defaults come from bench/bench_drivers.py (see docs/benchmarks.md, "Drivers and worker classes"):
gevent workers with PyMySQL, a pure-Python driver that gevent's monkey-patching makes cooperative,
so a worker keeps serving while its queries wait on the database.

Timing contract with the layers around it (checked by tests/deploy):
- nginx's upstream keepalive_timeout (60 s) is shorter than `keepalive`, so nginx never reuses a
  connection gunicorn is closing;
- nginx's proxy_read_timeout is at least `timeout`;
- compose's stop_grace_period and supervisor's stopwaitsecs are longer than `graceful_timeout`, so a
  stop lets in-flight requests finish before SIGKILL.
"""

import multiprocessing
import os
import re


def _env(name, default):
    """GUNICORN_<name>, with an empty value meaning "use the default" (compose passes `${X:-}`)."""
    value = os.environ.get(f"GUNICORN_{name}")
    return default if value is None or value.strip() == "" else value.strip()


bind = _env("BIND", "0.0.0.0:8000")
workers = int(_env("WORKERS", max(2, multiprocessing.cpu_count())))
threads = int(_env("THREADS", 1))  # only used by the gthread worker class
worker_class = _env("WORKER_CLASS", "gevent")
worker_connections = int(_env("WORKER_CONNECTIONS", 1000))
timeout = int(_env("TIMEOUT", 60))
graceful_timeout = int(_env("GRACEFUL_TIMEOUT", 30))
keepalive = int(_env("KEEPALIVE", 75))  # longer than nginx's upstream keepalive_timeout (60 s)
# Recycle workers now and then (bounded memory growth); the jitter keeps them from restarting together.
max_requests = int(_env("MAX_REQUESTS", 10000))
max_requests_jitter = int(_env("MAX_REQUESTS_JITTER", 1000))
pidfile = _env("PIDFILE", None)
loglevel = _env("LOGLEVEL", os.environ.get("LOG_LEVEL") or "info")
accesslog = _env("ACCESSLOG", "-")
errorlog = _env("ERRORLOG", "-")
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}i)s'
# Only nginx talks to gunicorn: under compose the api has no published port, so any peer is nginx.
forwarded_allow_ips = _env("FORWARDED_ALLOW_IPS", "127.0.0.1")
proc_name = _env("PROC_NAME", "cloudeye-api")


def _control_socket() -> str:
    """gunicorn's control socket (for `gunicornc`), one per instance: gunicorn's own default is one path
    per user, so a second gunicorn on the host (make run beside make stack, two test servers) would take
    over the first one's. Named after the bind address, which no two instances on a host share."""
    directory = os.path.join(os.path.expanduser("~"), ".gunicorn")  # gunicorn's own place for it
    return os.path.join(directory, "cloudeye-" + re.sub(r"[^A-Za-z0-9.-]+", "_", bind).strip("_") + ".ctl")


control_socket = _env("CONTROL_SOCKET", _control_socket())


def _api_db_pool_size() -> str | None:
    """How many database connections a worker keeps: as many as it serves requests at once.

    Connections beyond the pool (DB_MAX_OVERFLOW) are opened and closed per request; with PyMySQL that
    churn costs more than the query (bench_drivers.py: /sites fell from 315 to 16 req/s at 64 clients with
    the application's default pool of 10). Only the api's processes get this; sync and migrate keep the
    application's default. An explicit DB_POOL_SIZE wins.
    """
    if (os.environ.get("DB_POOL_SIZE") or "").strip():
        return None
    if worker_class == "gthread":
        return str(threads)
    if worker_class in ("gevent", "eventlet"):
        return _env("DB_POOL_SIZE", "32")
    return None


# Environment of the workers (the app reads its settings there when a worker loads it).
raw_env = [f"DB_POOL_SIZE={size}"] if (size := _api_db_pool_size()) else []


def post_worker_init(worker):
    """gunicorn's own error lines of this worker (e.g. "Error handling request" with its traceback) go to
    the worker's file under LOG_DIR too, not only to stderr: that logger does not propagate to the root,
    where the app's per-process file handler is (services/log.py)."""
    import logging

    from services.log import share_file_handlers

    share_file_handlers(logging.getLogger(), worker.log.error_log)
