"""The remote probe agent: the worker's probe loop with the API as its store.

    python sync_main.py --agent               # CLOUDEYE_API_URL, CLOUDEYE_API_TOKEN (a probe account's)
    python sync_main.py --agent --healthcheck # exit 0 while the agent's loop is turning

It needs no database and no Redis: everything goes through the probe API (services/probes.py) with the
token of a user of role `probe`, whose location is the agent's. Each turn of its loop (every
SYNC_POLL_INTERVAL_S):

1. sends what it has not sent yet — first the results buffered on disk, oldest first, then the fresh
   ones — in batches of at most 500 (`POST /probe/results`, idempotent: a batch sent again after a lost
   answer only counts duplicates);
2. claims as many due checks of its location as it has free probe slots (`POST /probe/claims`, which is
   also its heartbeat: its location stays alive, and votes, while it calls) and probes them on a thread
   pool of SYNC_CONCURRENCY with the sync worker's prober (sync/probe.py).

**The API out of reach** (no connection, a timeout, a 5xx): the agent goes on probing the sites it
knows, each on its own grid (the slots after the last one claimed, every check_interval_s), and keeps
every result it could not send in a bounded buffer on disk (DATA_DIR/agent/buffer, at most
AGENT_BUFFER_MAX results: past it the oldest are dropped, and the log says how many). Once the API
answers again the buffer goes first, marked late: recorded in the history and the uptime, never voting
(a late result never changes a decision taken meanwhile). Meanwhile its location has left the vote (no
heartbeat), which is right: nobody hears it.

A 429 is waited out (Retry-After); 401 and 403 (a revoked token, a changed role) are logged and retried
every 30 s, results kept; a batch the API refuses as invalid (422) is dropped with an error in the log, as
it would be refused forever. SIGTERM: stop claiming, let running probes finish within
SYNC_GRACE_PERIOD_S, send (or buffer) their results, give back the claims left, leave the location, exit 0.
"""

import json
import logging
import os
import queue
import re
import socket
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from sync.probe import Prober, ProbeResult, Target, make_ssl_context

log = logging.getLogger(__name__)
API_PATH = "/api/cloudeye/v1/probe"
MAX_BATCH = 500  # results per call, the API's limit
REFUSED_RETRY_S = 30.0
ALIVE_FILE = "alive"  # touched every turn: what --healthcheck reads
HEALTHY_WITHIN_S = 60.0
WORKER_ID = re.compile(r"[A-Za-z0-9_.:@-]{1,100}")  # what the probe API takes (api/v1/probe/schemas.py)


class SettingsError(RuntimeError):
    """The environment does not describe a runnable agent."""


def _number(env: Mapping, name: str, default, kind=int):
    value = env.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return kind(value)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a number, got {value!r}") from exc


@dataclass(frozen=True)
class AgentSettings:
    api_url: str
    token: str
    data_dir: str
    log_dir: str
    log_level: str = "INFO"
    log_type: str = "StreamHandler"
    log_retention_days: int = 14
    worker_id: str = ""
    concurrency: int = 200
    poll_s: float = 1.0
    grace_s: float = 25.0
    max_body_bytes: int = 2 * 1024 * 1024
    ca_file: str | None = None
    allow_private: bool = True
    buffer_max: int = 10_000
    api_timeout_s: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping | None = None) -> "AgentSettings":
        env = os.environ if env is None else env
        api_url = (env.get("CLOUDEYE_API_URL") or "").strip().rstrip("/")
        token = (env.get("CLOUDEYE_API_TOKEN") or "").strip()
        if not api_url.startswith(("http://", "https://")):
            raise SettingsError(
                "CLOUDEYE_API_URL must be the http(s) URL of cloudeye, e.g. https://cloudeye.example.com"
            )
        if not token:
            raise SettingsError("CLOUDEYE_API_TOKEN must be the API token of a probe account (role probe)")
        worker_id = env.get("SYNC_WORKER_ID") or f"{socket.gethostname()}:{os.getpid()}"
        if not WORKER_ID.fullmatch(worker_id):
            raise SettingsError(
                f"SYNC_WORKER_ID must be 1-100 letters, digits or _ . : @ -, got {worker_id!r}"
            )
        private = (env.get("ALLOW_PRIVATE_TARGETS") or "true").strip().lower() in {"1", "true", "yes", "on"}
        return cls(
            api_url=api_url,
            token=token,
            data_dir=str(Path(env.get("DATA_DIR") or "./data").resolve()),
            log_dir=str(Path(env.get("LOG_DIR") or "./log").resolve()),
            log_level=(env.get("LOG_LEVEL") or "info").upper(),
            log_type=env.get("LOG_TYPE") or "StreamHandler",
            log_retention_days=_number(env, "LOG_RETENTION_DAYS", 14),
            worker_id=worker_id,
            concurrency=max(1, _number(env, "SYNC_CONCURRENCY", 200)),
            poll_s=max(0.05, _number(env, "SYNC_POLL_INTERVAL_S", 1.0, float)),
            grace_s=max(0.0, _number(env, "SYNC_GRACE_PERIOD_S", 25.0, float)),
            max_body_bytes=_number(env, "SYNC_MAX_BODY_BYTES", 2 * 1024 * 1024),
            ca_file=env.get("SYNC_CA_FILE") or None,
            allow_private=private,
            buffer_max=max(MAX_BATCH, _number(env, "AGENT_BUFFER_MAX", 10_000)),
            api_timeout_s=max(1.0, _number(env, "AGENT_API_TIMEOUT_S", 10.0, float)),
        )


# --- the API ---------------------------------------------------------------------------------------------


class ApiUnavailable(Exception):
    """The API could not be reached, or answered 5xx: work offline."""


class ApiRefused(Exception):
    """The API answered, and said no: `status` (401, 403, 422, 429...) and, for 429, `retry_after`."""

    def __init__(self, status: int, message: str, retry_after: float = 0.0):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.retry_after = retry_after


class ProbeApi:
    """The three calls of the probe API, over one keep-alive session."""

    def __init__(self, base_url: str, token: str, timeout_s: float):
        self.base = base_url + API_PATH
        self.timeout_s = timeout_s
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {token}", "User-Agent": "cloudeye-agent"})

    def _post(self, path: str, body: dict) -> dict:
        try:
            response = self.session.post(self.base + path, json=body, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise ApiUnavailable(f"{type(exc).__name__}: {str(exc)[:200]}") from exc
        if response.status_code >= 500:
            raise ApiUnavailable(f"HTTP {response.status_code}")
        if response.status_code >= 400:
            try:
                message = str(response.json().get("message") or response.reason)
            except ValueError:
                message = response.reason or ""
            retry_after = _number(response.headers, "Retry-After", 1.0, float)
            raise ApiRefused(response.status_code, message[:300], retry_after)
        return response.json()

    def claim(self, worker_id: str, limit: int) -> dict:
        return self._post("/claims", {"worker_id": worker_id, "limit": limit})

    def send(self, worker_id: str, results: list[dict]) -> dict:
        return self._post("/results", {"worker_id": worker_id, "results": results})

    def release(self, worker_id: str, claims: list[dict], stopping: bool) -> dict:
        return self._post("/release", {"worker_id": worker_id, "claims": claims, "stopping": stopping})

    def close(self) -> None:
        self.session.close()


# --- the buffer on disk ----------------------------------------------------------------------------------


class ResultBuffer:
    """Results not sent yet, on disk: one JSON file per batch, written under a temporary name and renamed
    (a crash never leaves half a file), sent oldest first. At most `capacity` results: past it the oldest
    batches go. A batch survives a restart of the agent, which sends it then."""

    def __init__(self, directory: Path, capacity: int):
        self.directory = directory
        self.capacity = capacity
        self.directory.mkdir(parents=True, exist_ok=True)
        self._seq = 0
        self._sizes = {path: len(self._read(path)) for path in self._files()}

    def _files(self) -> list[Path]:
        return sorted(self.directory.glob("*.json"))

    @staticmethod
    def _read(path: Path) -> list[dict]:
        try:
            return json.loads(path.read_text())["results"]
        except (OSError, ValueError, KeyError, TypeError):
            log.error("buffer file %s is unreadable: removed", path.name)
            path.unlink(missing_ok=True)
            return []

    def __len__(self) -> int:
        return sum(self._sizes.values())

    def add(self, results: list[dict]) -> int:
        """Keep `results`; returns how many older results were dropped to make room."""
        if not results:
            return 0
        self._seq += 1
        path = self.directory / f"{time.time_ns():020d}-{os.getpid()}-{self._seq:06d}.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"results": results}))
        os.replace(temporary, path)
        self._sizes[path] = len(results)
        dropped = 0
        while len(self) > self.capacity and len(self._sizes) > 1:
            oldest = min(self._sizes)
            dropped += self._sizes.pop(oldest)
            oldest.unlink(missing_ok=True)
        return dropped

    def oldest(self) -> tuple[Path, list[dict]] | None:
        while self._sizes:
            path = min(self._sizes)
            results = self._read(path) if path.exists() else []
            if results:
                return path, results
            self._sizes.pop(path, None)
        return None

    def remove(self, path: Path) -> None:
        self._sizes.pop(path, None)
        path.unlink(missing_ok=True)


# --- the agent -------------------------------------------------------------------------------------------


@dataclass
class Known:
    """A site the agent has been given: what it probes on its own while the API is out of reach."""

    target: Target
    interval_s: int
    next_due: datetime
    claimed_at: float  # monotonic: when the API last handed it out


@dataclass
class Job:
    target: Target
    due_at: datetime
    lease: dict | None = None  # {site_id, due_at, claimed_until} as the API gave it; None: offline
    result: ProbeResult | None = field(default=None)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _parse(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def next_slot(due_at: datetime, interval_s: int, now: datetime) -> datetime:
    """The latest point of the grid due_at + k * interval that is not after `now` (missed slots are
    skipped, as the server's scheduler does)."""
    interval = timedelta(seconds=max(1, interval_s))
    if due_at > now:
        return due_at
    return due_at + interval * int((now - due_at) / interval)


class Agent:
    def __init__(self, settings: AgentSettings, api: ProbeApi | None = None):
        self.settings = settings
        self.api = api or ProbeApi(settings.api_url, settings.token, settings.api_timeout_s)
        self.prober = Prober(
            make_ssl_context(settings.ca_file), settings.max_body_bytes, allow_private=settings.allow_private
        )
        root = Path(settings.data_dir) / "agent"
        self.buffer = ResultBuffer(root / "buffer", settings.buffer_max)
        self.alive_file = root / ALIVE_FILE
        self.stopping = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._running: dict[int, Job] = {}  # site_id -> the job being probed
        self._finished: queue.Queue[Job] = queue.Queue()
        self._unsent: list[dict] = []  # fresh results the API was too busy for (429): sent on time later
        self._known: dict[int, Known] = {}
        self._executor = ThreadPoolExecutor(settings.concurrency, thread_name_prefix="probe")
        self._quiet_until = 0.0  # no API call before (429, 401/403)
        self.online: bool | None = None
        self.location: str | None = None
        self.heartbeat_ttl_s = 30
        self.totals = {"claimed": 0, "probed": 0, "sent": 0, "late": 0, "buffered": 0, "dropped": 0}

    # --- one turn ---------------------------------------------------------------------------------------

    def turn(self) -> None:
        """Send, then claim (or, with the API out of reach, probe what is due on the agent's own grid)."""
        self._touch_alive()
        self._unsent.extend(self._collect())
        if time.monotonic() < self._quiet_until:
            return
        try:
            self._send_buffered()
            self._send_unsent()
            if not self.stopping.is_set():
                self._claim()
        except ApiUnavailable as exc:
            self._went("offline", str(exc))
            # Sent late, whenever the API answers again: a decision may be taken meanwhile.
            self._keep([dict(result, late=True) for result in self._unsent])
            self._unsent = []
            if not self.stopping.is_set():
                self._probe_offline(datetime.now(UTC))
        except ApiRefused as exc:
            wait = exc.retry_after if exc.status == 429 else REFUSED_RETRY_S
            self._quiet_until = time.monotonic() + wait
            log.error("the API refused the agent (%s); trying again in %.0f s", exc, wait)
            if len(self._unsent) > MAX_BATCH:  # refused for long: onto the bounded buffer
                self._keep(self._unsent)
                self._unsent = []

    def _collect(self) -> list[dict]:
        results = []
        while True:
            try:
                job = self._finished.get_nowait()
            except queue.Empty:
                return results
            results.append(self._as_result(job))

    @staticmethod
    def _as_result(job: Job) -> dict:
        result = job.result
        return {
            "site_id": job.target.site_id,
            "due_at": _iso(job.due_at),
            "claimed_until": job.lease["claimed_until"] if job.lease else None,
            "checked_at": _iso(result.started_at),
            "up": result.up,
            "http_status": result.http_status,
            "response_ms": result.response_ms,
            "failure_kind": result.failure_kind,
            "reason": (result.reason or "")[:500] or None,
            "tls_expires_at": _iso(result.tls_expires_at),
            "late": job.lease is None,  # made without a claim: the API could not be reached
        }

    def _send_buffered(self) -> None:
        while (oldest := self.buffer.oldest()) is not None:
            path, results = oldest
            self._send(results)
            self.buffer.remove(path)

    def _send_unsent(self) -> None:
        while self._unsent:
            batch = self._unsent[:MAX_BATCH]
            self._send(batch)  # raises with the batch still unsent
            del self._unsent[: len(batch)]

    def _send(self, results: list[dict]) -> None:
        try:
            answer = self.api.send(self.settings.worker_id, results)
        except ApiRefused as exc:
            if exc.status != 422:
                raise
            log.error("the API refused a batch of %d results as invalid, dropped: %s", len(results), exc)
            return
        self._went("online")
        with self._lock:
            self.totals["sent"] += answer.get("recorded", 0)
            self.totals["late"] += answer.get("late", 0)

    def _keep(self, results: list[dict]) -> None:
        dropped = self.buffer.add(results)
        self.totals["buffered"] += len(results)
        if dropped:
            self.totals["dropped"] += dropped
            log.warning(
                "buffer full (AGENT_BUFFER_MAX %d): dropped the %d oldest unsent results",
                self.settings.buffer_max,
                dropped,
            )

    def _claim(self) -> None:
        with self._lock:
            free = self.settings.concurrency - len(self._running)
        answer = self.api.claim(self.settings.worker_id, max(0, free))
        self._went("online")
        if self.location != answer.get("location"):
            self.location = answer.get("location")
            log.info("probing for location %s", self.location)
        self.heartbeat_ttl_s = int(answer.get("heartbeat_ttl_s") or self.heartbeat_ttl_s)
        now = time.monotonic()
        for check in answer.get("checks", []):
            target = Target(
                site_id=check["site_id"],
                url=check["url"],
                timeout_s=check["timeout_s"],
                accepted_status=check["accepted_status"],
                keyword=check.get("keyword"),
                keyword_absent=check["keyword_absent"],
            )
            due_at = _parse(check["due_at"])
            interval = int(check["check_interval_s"])
            self._known[target.site_id] = Known(target, interval, due_at + timedelta(seconds=interval), now)
            lease = {key: check[key] for key in ("site_id", "due_at", "claimed_until")}
            self._start(Job(target, due_at, lease))
            self.totals["claimed"] += 1
        # A site not handed out for a long while was paused, deleted or moved: forget it.
        for site_id, known in list(self._known.items()):
            if now - known.claimed_at > 2 * known.interval_s + 120:
                del self._known[site_id]

    def _probe_offline(self, now: datetime) -> None:
        """The API is out of reach: probe the known sites whose next slot has come, on their grid."""
        for known in self._known.values():
            if known.next_due > now:
                continue
            with self._lock:
                busy = (
                    known.target.site_id in self._running or len(self._running) >= self.settings.concurrency
                )
            if busy:
                continue
            due_at = next_slot(known.next_due, known.interval_s, now)
            known.next_due = due_at + timedelta(seconds=known.interval_s)
            self._start(Job(known.target, due_at))

    def _start(self, job: Job) -> None:
        with self._lock:
            if job.target.site_id in self._running:
                return  # a slow probe of the site is still running: this slot is skipped
            self._running[job.target.site_id] = job
        self._executor.submit(self._probe, job)

    def _probe(self, job: Job) -> None:
        try:
            job.result = self.prober.probe(job.target)
        except BaseException as exc:  # the prober classifies errors; a crash here is a bug
            log.exception("probe of site %s crashed", job.target.site_id)
            job.result = ProbeResult(datetime.now(UTC), False, failure_kind="other", reason=repr(exc)[:500])
        with self._lock:
            self._running.pop(job.target.site_id, None)
            self.totals["probed"] += 1
        self._finished.put(job)
        self._wake.set()

    def _went(self, state: str, why: str = "") -> None:
        online = state == "online"
        if self.online is online:
            return
        if online and self.online is not None:
            log.info("the API answers again: buffered results sent (%d left)", len(self.buffer))
        elif not online:
            log.warning(
                "the API is out of reach (%s): probing on, keeping the results (%d buffered)",
                why,
                len(self.buffer),
            )
        self.online = online

    def _touch_alive(self) -> None:
        try:
            self.alive_file.touch()
        except OSError as exc:
            log.warning("cannot touch %s: %s", self.alive_file, exc)

    # --- the long-running process ----------------------------------------------------------------------

    def stop(self) -> None:
        self.stopping.set()
        self._wake.set()

    def run(self) -> int:
        log.info(
            "probe agent %s starting: API %s, concurrency %d, poll %.1f s, buffer %s (%d results waiting)",
            self.settings.worker_id,
            self.settings.api_url,
            self.settings.concurrency,
            self.settings.poll_s,
            self.buffer.directory,
            len(self.buffer),
        )
        next_progress = time.monotonic() + 60
        while not self.stopping.is_set():
            try:
                self.turn()
            except Exception:  # a bug must not end the agent: log it, go on
                log.exception("agent turn failed")
            if time.monotonic() >= next_progress:
                log.info("progress: %s; buffered now %d", self.totals, len(self.buffer))
                next_progress = time.monotonic() + 60
            self._wake.clear()
            self.stopping.wait(self.settings.poll_s)
        return self._shutdown()

    def _shutdown(self) -> int:
        deadline = time.monotonic() + self.settings.grace_s
        log.info("probe agent %s stopping: %d probes running", self.settings.worker_id, len(self._running))
        while self._running and time.monotonic() < deadline:
            self._wake.wait(0.1)
            self._wake.clear()
        self.turn()  # sends what finished (or buffers it); claims nothing more
        with self._lock:
            unfinished = [job.lease for job in self._running.values() if job.lease is not None]
        try:
            self.api.release(self.settings.worker_id, unfinished, stopping=True)
        except (ApiUnavailable, ApiRefused) as exc:
            log.warning(
                "could not give back %d claims nor leave the location (both expire by themselves): %s",
                len(unfinished),
                exc,
            )
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.api.close()
        log.info("probe agent stopped: %s; %d results buffered", self.totals, len(self.buffer))
        return 0


def is_alive(settings_env: Mapping | None = None) -> bool:
    """`--healthcheck` of an agent: its loop touched the alive file within HEALTHY_WITHIN_S."""
    env = os.environ if settings_env is None else settings_env
    path = Path(env.get("DATA_DIR") or "./data").resolve() / "agent" / ALIVE_FILE
    try:
        return time.time() - path.stat().st_mtime < HEALTHY_WITHIN_S
    except OSError:
        return False
