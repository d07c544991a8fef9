"""Configuration read from the environment, in one place.

`Config.from_env()` picks the class named by CLOUDEYE_ENV. Production refuses to start with a missing
or well-known secret, so a forgotten `.env` fails loudly instead of running with a guessable key.
"""

import os
import secrets
from pathlib import Path

# Where the HTTP API lives; the one definition (the app, its OpenAPI document and the tests use it).
API_PREFIX = "/api/cloudeye/v1"

# Values that appear in docs and examples; production must never run with them.
KNOWN_DEFAULT_SECRETS = {
    "",
    "change-me",
    "changeme",
    "secret",
    "dev",
    "development",
    "password",
    "cloudeye",
    "please-change-me",
}


class ConfigError(RuntimeError):
    """The environment does not describe a runnable configuration."""


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {value!r}") from exc


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return float(value)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {value!r}") from exc


def _env_networks(name: str, default: str) -> tuple:
    """Addresses and networks, separated by spaces or commas."""
    import ipaddress

    value = os.environ.get(name)
    text = default if value is None or value.strip() == "" else value
    try:
        return tuple(ipaddress.ip_network(part, strict=False) for part in text.replace(",", " ").split())
    except ValueError as exc:
        raise ConfigError(f"{name} must list IP addresses or networks, got {text!r}: {exc}") from exc


class Config:
    ENV_NAME = "development"
    TESTING = False

    def __init__(self) -> None:
        env = os.environ
        self.DATA_DIR = str(Path(env.get("DATA_DIR") or "./data").resolve())
        self.LOG_DIR = str(Path(env.get("LOG_DIR") or "./log").resolve())
        self.LOG_LEVEL = (env.get("LOG_LEVEL") or "info").upper()
        self.LOG_TYPE = env.get("LOG_TYPE") or "StreamHandler"
        self.LOG_RETENTION_DAYS = _env_int("LOG_RETENTION_DAYS", 14)  # files of ended processes; 0 keeps all
        self.SQLALCHEMY_DATABASE_URI = env.get("DATABASE_URL") or self.default_database_url()
        self.REDIS_URL = env.get("REDIS_URL") or None
        self.SECRET_KEY = env.get("SECRET_KEY") or ""
        self.ADMIN_USERNAME = env.get("CLOUDEYE_ADMIN_USERNAME") or None
        self.ADMIN_PASSWORD = env.get("CLOUDEYE_ADMIN_PASSWORD") or None
        self.ADMIN_EMAIL = env.get("CLOUDEYE_ADMIN_EMAIL") or None
        self.LOGIN_TOKEN_TTL_S = _env_int("LOGIN_TOKEN_TTL_S", 12 * 3600)
        self.LOGIN_RATE_LIMIT = _env_int("LOGIN_RATE_LIMIT", 10)  # attempts per window per client+account
        self.LOGIN_RATE_WINDOW_S = _env_int("LOGIN_RATE_WINDOW_S", 60)
        self.LOGIN_FAILURE_LIMIT = _env_int("LOGIN_FAILURE_LIMIT", 30)  # failed logins per window per client
        self.LOGIN_FAILURE_WINDOW_S = _env_int("LOGIN_FAILURE_WINDOW_S", 900)
        # Peers whose X-Real-IP / X-Forwarded-For name the client (nginx); anybody else is the client.
        self.TRUSTED_PROXIES = _env_networks("TRUSTED_PROXIES", "127.0.0.0/8 ::1")
        # Request bodies: every route takes at most MAX_REQUEST_BYTES; report uploads (multipart) take a
        # report of MAX_REPORT_BYTES plus 1 MiB of form around it (services/uploads.py; nginx follows both).
        self.MAX_REQUEST_BYTES = _env_int("MAX_REQUEST_BYTES", 1024 * 1024)
        self.MAX_REPORT_BYTES = _env_int("MAX_REPORT_BYTES", 200 * 1024 * 1024)
        self.MAX_UPLOAD_BYTES = self.MAX_REPORT_BYTES + 1024 * 1024
        # Reports larger than this are queued for the sync worker (202 and the import's progress) instead
        # of being imported within the request; 0 imports every report within its request.
        self.IMPORT_QUEUE_BYTES = _env_int("IMPORT_QUEUE_BYTES", 10 * 1024 * 1024)
        # How many times sync workers start a queued import whose worker died in it before it is failed.
        self.IMPORT_MAX_ATTEMPTS = _env_int("IMPORT_MAX_ATTEMPTS", 2)
        self.CACHE_TTL_S = _env_int("CACHE_TTL_S", 60)
        self.USABILITY_RETENTION_DAYS = _env_int("USABILITY_RETENTION_DAYS", 90)
        # Hourly rollups behind the 24h/7d/30d uptime; daily rollups are kept for good (365 rows a site-year).
        self.USABILITY_HOURLY_ROLLUP_DAYS = _env_int("USABILITY_HOURLY_ROLLUP_DAYS", 90)
        self.ALLOW_PRIVATE_TARGETS = _env_bool("ALLOW_PRIVATE_TARGETS", True)
        self.SYNC_CONCURRENCY = _env_int("SYNC_CONCURRENCY", 200)
        self.SYNC_POLL_INTERVAL_S = _env_int("SYNC_POLL_INTERVAL_S", 1)
        self.SYNC_GRACE_PERIOD_S = _env_int("SYNC_GRACE_PERIOD_S", 25)
        # sync worker (docs/sync.md): identity, claims, batching, inbox, probes
        self.SYNC_WORKER_ID = env.get("SYNC_WORKER_ID") or None  # default: "<hostname>:<pid>"
        self.SYNC_LEASE_MARGIN_S = _env_int("SYNC_LEASE_MARGIN_S", 60)  # claim = site timeout + this
        self.SYNC_BATCH_SIZE = _env_int("SYNC_BATCH_SIZE", 200)
        self.SYNC_HEARTBEAT_TTL_S = _env_int("SYNC_HEARTBEAT_TTL_S", 30)
        self.SYNC_INBOX_INTERVAL_S = _env_int("SYNC_INBOX_INTERVAL_S", 5)
        self.SYNC_INBOX_SETTLE_S = _env_int("SYNC_INBOX_SETTLE_S", 5)
        self.SYNC_RETENTION_INTERVAL_S = _env_int("SYNC_RETENTION_INTERVAL_S", 3600)
        self.SYNC_SEARCH_INTERVAL_S = _env_int("SYNC_SEARCH_INTERVAL_S", 5)  # findings' search index
        self.SYNC_FINDINGS_REFRESH_S = _env_int("SYNC_FINDINGS_REFRESH_S", 3600)
        self.SYNC_MAX_BODY_BYTES = _env_int("SYNC_MAX_BODY_BYTES", 2 * 1024 * 1024)
        self.SYNC_CA_FILE = env.get("SYNC_CA_FILE") or None  # extra trusted CAs (PEM), e.g. an intranet CA
        # locations (docs/sync.md, "Locations"): this replica's label, carried by its heartbeats and checks
        self.CLOUDEYE_LOCATION = (env.get("CLOUDEYE_LOCATION") or "default").strip()
        # remote probe agents' API calls (claims, results), per probe user and window
        self.PROBE_RATE_LIMIT = _env_int("PROBE_RATE_LIMIT", 600)
        self.PROBE_RATE_WINDOW_S = _env_int("PROBE_RATE_WINDOW_S", 60)
        # alerts (docs/alerts.md): links in messages, and the sync worker's sender
        self.CLOUDEYE_PUBLIC_URL = (env.get("CLOUDEYE_PUBLIC_URL") or "").rstrip("/") or None
        self.NOTIFY_CONCURRENCY = _env_int("NOTIFY_CONCURRENCY", 8)  # sends at once, per worker
        self.NOTIFY_TIMEOUT_S = _env_float("NOTIFY_TIMEOUT_S", 10)  # each connect/read of a send
        self.NOTIFY_BACKOFF_BASE_S = _env_float("NOTIFY_BACKOFF_BASE_S", 30)  # 1st retry; doubles after
        self.NOTIFY_LEASE_S = _env_int("NOTIFY_LEASE_S", 120)  # a claimed notification's lease
        self.NOTIFY_POLL_INTERVAL_S = _env_float("NOTIFY_POLL_INTERVAL_S", 1)
        # POST /channels/{id}/test sends at once: calls per user and window (429 beyond)
        self.CHANNEL_TEST_LIMIT = _env_int("CHANNEL_TEST_LIMIT", 10)
        self.CHANNEL_TEST_WINDOW_S = _env_int("CHANNEL_TEST_WINDOW_S", 60)
        self.ALERTS_TICK_INTERVAL_S = _env_float("ALERTS_TICK_INTERVAL_S", 30)  # reminders, flapping
        self.NOTIFICATIONS_RETENTION_DAYS = _env_int("NOTIFICATIONS_RETENTION_DAYS", 30)
        self.DB_POOL_SIZE = _env_int("DB_POOL_SIZE", 10)
        self.DB_MAX_OVERFLOW = _env_int("DB_MAX_OVERFLOW", 20)
        self.SQLALCHEMY_ENGINE_OPTIONS = self.engine_options()
        self.SQLALCHEMY_TRACK_MODIFICATIONS = False
        # flask-smorest / OpenAPI
        self.API_TITLE = "cloudeye"
        self.API_VERSION = "v1"
        self.OPENAPI_VERSION = "3.0.3"
        self.OPENAPI_URL_PREFIX = API_PREFIX
        self.OPENAPI_JSON_PATH = "openapi.json"
        self.OPENAPI_REDOC_PATH = None
        self.OPENAPI_SWAGGER_UI_PATH = None  # /docs is served by api/docs.py without a CDN
        self.JSON_SORT_KEYS = False

    def default_database_url(self) -> str:
        return f"sqlite:///{Path(self.DATA_DIR) / 'cloudeye.db'}"

    def engine_options(self) -> dict:
        url = self.SQLALCHEMY_DATABASE_URI
        if url.startswith("sqlite"):
            # One SQLite file shared by threads/greenlets; wait for the writer instead of failing.
            return {"connect_args": {"timeout": 30, "check_same_thread": False}}
        return {
            "pool_pre_ping": True,
            "pool_recycle": 1800,
            "pool_size": self.DB_POOL_SIZE,
            "max_overflow": self.DB_MAX_OVERFLOW,
            "pool_timeout": 10,
        }

    def check_public_url(self) -> None:
        if self.CLOUDEYE_PUBLIC_URL and not self.CLOUDEYE_PUBLIC_URL.startswith(("http://", "https://")):
            raise ConfigError("CLOUDEYE_PUBLIC_URL must be an http(s) URL, e.g. https://cloudeye.example.com")

    def check_location(self) -> None:
        from services.locations import LOCATION_RULE, valid_name

        if not valid_name(self.CLOUDEYE_LOCATION):
            raise ConfigError(f"CLOUDEYE_LOCATION must be {LOCATION_RULE}, got {self.CLOUDEYE_LOCATION!r}")

    def validate(self) -> None:
        self.check_public_url()
        self.check_location()
        if not self.SECRET_KEY:
            # Development and tests get a fresh random key per start: tokens are stored hashed,
            # so nothing persistent depends on it.
            self.SECRET_KEY = secrets.token_urlsafe(32)

    @classmethod
    def from_env(cls) -> "Config":
        name = (os.environ.get("CLOUDEYE_ENV") or "development").strip().lower()
        classes = {"development": DevelopmentConfig, "testing": TestingConfig, "production": ProductionConfig}
        if name not in classes:
            raise ConfigError(f"CLOUDEYE_ENV must be one of {sorted(classes)}, got {name!r}")
        config = classes[name]()
        config.validate()
        return config

    def as_dict(self) -> dict:
        return {key: getattr(self, key) for key in dir(self) if key.isupper()}


class DevelopmentConfig(Config):
    ENV_NAME = "development"


class TestingConfig(Config):
    ENV_NAME = "testing"
    TESTING = True


class ProductionConfig(Config):
    ENV_NAME = "production"

    def validate(self) -> None:
        self.check_public_url()
        self.check_location()
        if self.SECRET_KEY.strip().lower() in KNOWN_DEFAULT_SECRETS or len(self.SECRET_KEY) < 16:
            raise ConfigError(
                "SECRET_KEY is missing, too short or a known default; production needs a random value "
                "(run `make env` or `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
            )
        if "DATABASE_URL" not in os.environ:
            raise ConfigError("DATABASE_URL is required in production")
        password = _database_password(self.SQLALCHEMY_DATABASE_URI)
        if password is not None and password.strip().lower() in KNOWN_DEFAULT_SECRETS:
            raise ConfigError("the database password in DATABASE_URL is empty or a known default")
        if self.ADMIN_PASSWORD is not None and self.ADMIN_PASSWORD.strip().lower() in KNOWN_DEFAULT_SECRETS:
            raise ConfigError("CLOUDEYE_ADMIN_PASSWORD is a known default")


def _database_password(url: str) -> str | None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        return None
    return parsed.password or ""
