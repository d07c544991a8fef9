"""HTTP(S) availability probes: one GET with redirects, classified failures, TLS expiry, a hard deadline.

A probe never touches the database: it gets a `Target` (a snapshot of the site) and returns a
`ProbeResult`, so any number of them run in threads while one writer stores the results.

The site's timeout is a deadline for the whole probe, DNS included. Per-operation socket timeouts alone
would let a server that drips one byte per second hold a probe forever, so a `Watchdog` thread shuts
down the socket of any probe past its deadline; the probe then reports a timeout. `getaddrinfo` cannot
be interrupted and the system resolver may take 30 s and more to give up, so names are looked up on a
thread of their own (`resolve`) that the probe stops waiting for at its deadline (a `dns` failure).
"""

import base64
import contextlib
import heapq
import http.client
import ipaddress
import itertools
import logging
import socket
import ssl
import threading
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from urllib.parse import unquote, urljoin, urlsplit

from services.sites import is_public_address, status_accepted, without_userinfo

log = logging.getLogger(__name__)

MAX_REDIRECTS = 10
REDIRECT_CODES = {301, 302, 303, 307, 308}
USER_AGENT = "cloudeye-monitor/0.1 (+https://github.com/cloudeye; availability and tamper checks)"
READ_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Target:
    """What a probe needs to know about a site (a copy: probes run outside any database session)."""

    site_id: int
    url: str
    timeout_s: float
    accepted_status: str = "200-399"
    keyword: str | None = None
    keyword_absent: bool = False
    keep_body: bool = False  # the tamper check needs the page


def target_of(claim) -> Target:
    """The probe's copy of a claimed site (a `services.scheduler.Claim`, or the same fields from the API)."""
    return Target(
        site_id=claim.site_id,
        url=claim.url,
        timeout_s=claim.timeout_s,
        accepted_status=claim.accepted_status,
        keyword=claim.keyword,
        keyword_absent=claim.keyword_absent,
        keep_body=claim.tamper_enabled and claim.primary,
    )


@dataclass
class ProbeResult:
    started_at: datetime
    up: bool
    http_status: int | None = None
    response_ms: float | None = None
    failure_kind: str | None = None
    reason: str | None = None
    final_url: str | None = None
    status_accepted: bool = False  # an HTTP answer with an accepted status (whatever the keyword rule)
    headers: dict[str, str] | None = None  # the final response's headers, lower-case names
    body: str | None = None  # only when Target.keep_body
    tls_expires_at: datetime | None = None
    redirects: list[str] = field(default_factory=list)


class ProbeError(Exception):
    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


# --- deadline enforcement ---------------------------------------------------------------------------


class _Guard:
    """One probe's deadline: the watchdog shuts down `sock` if the probe is still running at `deadline`."""

    __slots__ = ("deadline", "sock", "fired", "done", "lock")

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.sock: socket.socket | None = None
        self.fired = False
        self.done = False
        self.lock = threading.Lock()

    def attach(self, sock: socket.socket | None) -> None:
        with self.lock:
            self.sock = sock
            if self.fired and sock is not None:
                _shutdown(sock)

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0 or self.fired:
            raise ProbeError("timeout", "deadline reached")
        return left

    def expire(self) -> None:
        with self.lock:
            if self.done:
                return
            self.fired = True
            if self.sock is not None:
                _shutdown(self.sock)

    def finish(self) -> None:
        with self.lock:
            self.done = True
            self.sock = None


def _shutdown(sock: socket.socket) -> None:
    # socket.socket.shutdown also for SSLSocket: SSLSocket.shutdown would drop the SSL object under the
    # thread that is reading from it. Shutdown (not close) never frees the fd, so it cannot hit a reused one.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class Watchdog:
    """One thread for all probes: wakes at the nearest deadline and expires the overdue guards."""

    def __init__(self):
        self._heap: list[tuple[float, int, _Guard]] = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def guard(self, timeout_s: float) -> _Guard:
        guard = _Guard(time.monotonic() + timeout_s)
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="probe-watchdog", daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, (guard.deadline, next(self._seq), guard))
            if self._heap[0][2] is guard:
                self._cond.notify()
        return guard

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                _, _, guard = heapq.heappop(self._heap)
            guard.expire()


WATCHDOG = Watchdog()


# --- name lookups -----------------------------------------------------------------------------------

# Lookups still running after their probe gave up on them, at most (each holds a thread until the
# resolver answers). Past that the resolver is not answering anyone: further lookups fail at once.
MAX_PENDING_LOOKUPS = 256
_lookup_slots = threading.BoundedSemaphore(MAX_PENDING_LOOKUPS)


def resolve(host: str, port: int, guard: _Guard) -> list:
    """`socket.getaddrinfo` for a TCP connection, waited for no longer than the probe's deadline."""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    else:  # an address: nothing to look up, nothing that can hang
        return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
    if not _lookup_slots.acquire(blocking=False):
        raise ProbeError(
            "dns", f"DNS lookup of {host} not started: {MAX_PENDING_LOOKUPS} lookups hang already"
        )
    answer: dict = {}
    done = threading.Event()

    def lookup() -> None:
        try:
            answer["addresses"] = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        except BaseException as exc:  # noqa: BLE001 - handed to the probe
            answer["error"] = exc
        finally:
            done.set()
            _lookup_slots.release()

    try:
        threading.Thread(target=lookup, name="dns-lookup", daemon=True).start()
    except BaseException:  # no thread to be had: the slot was never used
        _lookup_slots.release()
        raise
    if not done.wait(max(0.0, guard.deadline - time.monotonic())):
        raise ProbeError("dns", f"DNS lookup of {host} did not answer within the timeout")
    if "error" in answer:
        raise answer["error"]
    return answer["addresses"]


# --- the probe --------------------------------------------------------------------------------------


def make_ssl_context(ca_file: str | None = None) -> ssl.SSLContext:
    """System trust store plus `ca_file` (SYNC_CA_FILE), hostname checked: what a browser would accept."""
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


class Prober:
    def __init__(
        self,
        ssl_context: ssl.SSLContext | None = None,
        max_body_bytes: int = 2 * 1024 * 1024,
        allow_private: bool = True,
    ):
        self.ssl_context = ssl_context or make_ssl_context()
        self.max_body_bytes = max_body_bytes
        # ALLOW_PRIVATE_TARGETS off: checked on the addresses actually connected to, so neither a
        # redirect nor a DNS name pointing inside the network gets around it.
        self.allow_private = allow_private

    def probe(self, target: Target) -> ProbeResult:
        started_at = datetime.now(UTC)
        t0 = time.perf_counter()
        guard = WATCHDOG.guard(target.timeout_s)
        result = ProbeResult(started_at=started_at, up=False)
        try:
            self._fetch(target, guard, result)
        except ProbeError as exc:
            result.failure_kind, result.reason = exc.kind, exc.reason
        except Exception as exc:  # noqa: BLE001 - every failure is a result, never a crash
            result.failure_kind, result.reason = classify(exc)
        finally:
            guard.finish()
        if guard.fired and not result.up and result.failure_kind not in ("timeout", "dns"):
            # The watchdog cut the connection: whatever error that caused is really a timeout (a name
            # that did not resolve in time stays a DNS failure: no connection was ever made).
            result.failure_kind, result.reason = "timeout", None
        if result.failure_kind == "timeout":
            result.reason = f"no complete answer within {target.timeout_s:g} s"
        result.response_ms = round((time.perf_counter() - t0) * 1000.0, 2)
        if result.up:
            result.failure_kind = result.reason = None
        return result

    def _fetch(self, target: Target, guard: _Guard, result: ProbeResult) -> None:
        url = target.url
        # Credentials in the site's URL (https://user:password@host/) are sent as HTTP basic auth, like
        # curl and browsers do, and only to the site's own origin: never along a redirect to another.
        origin, authorization = _origin(url), _basic_auth(url)
        for hop in range(MAX_REDIRECTS + 1):
            status, reason, headers, body, tls_expiry = self._get(
                url, target, guard, authorization if _origin(url) == origin else None
            )
            if tls_expiry is not None:
                result.tls_expires_at = tls_expiry
            location = headers.get("location")
            if status in REDIRECT_CODES and location:
                if hop == MAX_REDIRECTS:
                    raise ProbeError("other", f"more than {MAX_REDIRECTS} redirects")
                next_url = urljoin(url, location.strip())
                if urlsplit(next_url).scheme not in ("http", "https"):
                    raise ProbeError(
                        "other", f"redirect to an unsupported URL: {without_userinfo(next_url)[:200]}"
                    )
                result.redirects.append(without_userinfo(next_url))
                url = next_url
                continue
            break
        result.final_url = without_userinfo(url)  # it ends up in findings: no password in there
        result.http_status = status
        result.headers = headers
        if not status_accepted(target.accepted_status, status):
            result.failure_kind = "status"
            result.reason = f"HTTP {status} {reason}".strip() + f" (accepted: {target.accepted_status})"
            return
        result.status_accepted = True
        text = body.decode(_charset(headers), "replace") if body is not None else ""
        if target.keep_body:
            result.body = text
        if target.keyword:
            found = target.keyword in text
            if found and target.keyword_absent:
                result.failure_kind, result.reason = "keyword", f"keyword {target.keyword!r} is present"
                return
            if not found and not target.keyword_absent:
                result.failure_kind, result.reason = "keyword", f"keyword {target.keyword!r} not found"
                return
        result.up = True

    def _get(self, url: str, target: Target, guard: _Guard, authorization: str | None = None):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ProbeError("other", f"not an http(s) URL: {without_userinfo(url)[:200]}")
        https = parts.scheme == "https"
        try:
            port = parts.port or (443 if https else 80)
        except ValueError:
            raise ProbeError("other", f"bad port in {without_userinfo(url)[:200]}") from None
        host = _ascii_host(parts.hostname)
        host_header = f"[{host}]" if ":" in host else host
        if port != (443 if https else 80):
            host_header += f":{port}"
        sock = self._connect(host, port, guard)
        try:
            tls_expiry = None
            if https:
                sock.settimeout(guard.remaining())
                sock = self.ssl_context.wrap_socket(sock, server_hostname=host)
                guard.attach(sock)
                tls_expiry = _cert_expiry(sock)
            # Plain HTTPConnection for both: the socket is already connected (and wrapped), so request()
            # does not connect again, and no per-probe SSL context is built.
            connection = http.client.HTTPConnection(host, port, timeout=guard.remaining())
            connection.sock = sock
            path = parts.path or "/"
            if parts.query:
                path += "?" + parts.query
            sock.settimeout(guard.remaining())
            request_headers = {
                "Host": host_header,
                "User-Agent": USER_AGENT,
                "Accept": "text/html,application/xhtml+xml,*/*;q=0.8",
                "Accept-Encoding": "gzip, deflate",
                "Connection": "close",
            }
            if authorization:
                request_headers["Authorization"] = authorization
            connection.request("GET", path, headers=request_headers)
            sock.settimeout(guard.remaining())
            response = connection.getresponse()
            headers = {name.lower(): value for name, value in response.getheaders()}
            if response.status in REDIRECT_CODES and headers.get("location"):
                body = None  # the page of a redirect is not read
            else:
                body = self._read_body(response, headers, guard)
            return response.status, response.reason or "", headers, body, tls_expiry
        finally:
            guard.attach(None)
            with contextlib.suppress(OSError):
                sock.close()

    def _connect(self, host: str, port: int, guard: _Guard) -> socket.socket:
        """socket.create_connection, but every attempt bounded by what is left of the deadline."""
        try:
            addresses = resolve(host, port, guard)
        except socket.gaierror as exc:
            raise ProbeError("dns", f"DNS lookup of {host} failed: {exc.strerror or exc}") from None
        if not self.allow_private:
            allowed = [entry for entry in addresses if is_public_address(entry[4][0])]
            if not allowed:
                raise ProbeError(
                    "other",
                    f"{host} resolves to a private address ({addresses[0][4][0]}); private targets are disabled",
                )
            addresses = allowed
        last_error: Exception | None = None
        for family, kind, proto, _, address in addresses:
            sock = socket.socket(family, kind, proto)
            guard.attach(sock)
            try:
                sock.settimeout(guard.remaining())
                sock.connect(address)
                return sock
            except ProbeError:
                sock.close()
                raise
            except OSError as exc:
                guard.attach(None)
                sock.close()
                last_error = exc
                if guard.fired:
                    break
        if last_error is None:
            raise ProbeError("dns", f"DNS lookup of {host} returned no address")
        raise last_error

    def _read_body(self, response, headers: dict, guard: _Guard) -> bytes:
        """Up to max_body_bytes of the decoded body; a bigger page is cut (enough for keyword and tamper)."""
        encoding = headers.get("content-encoding", "").strip().lower()
        decoder = None
        if encoding in ("gzip", "x-gzip"):
            decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            decoder = zlib.decompressobj()
        chunks: list[bytes] = []
        size = 0
        while size < self.max_body_bytes:
            # No settimeout here: http.client may have closed its handle on the socket already (it
            # does on "Connection: close"); the timeout set before getresponse and the watchdog apply.
            guard.remaining()
            chunk = response.read(READ_CHUNK)
            if not chunk:
                break
            if decoder is not None:
                try:
                    chunk = decoder.decompress(chunk, self.max_body_bytes - size)
                except zlib.error as exc:
                    raise ProbeError("other", f"undecodable {encoding} body: {exc}") from None
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)[: self.max_body_bytes]


def _origin(url: str) -> tuple:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.scheme, (parts.hostname or "").lower(), port or (443 if parts.scheme == "https" else 80)


def _basic_auth(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return None
    pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


def _ascii_host(host: str) -> str:
    try:
        host.encode("ascii")
        return host
    except UnicodeEncodeError:
        try:
            return host.encode("idna").decode("ascii")
        except UnicodeError:
            raise ProbeError("dns", f"{host!r} is not a valid host name") from None


def _charset(headers: dict) -> str:
    content_type = headers.get("content-type")
    if content_type:
        message = Message()
        message["content-type"] = content_type
        charset = message.get_param("charset")
        if isinstance(charset, str):
            try:
                "".encode(charset)
                return charset
            except LookupError:
                pass
    return "utf-8"


def _cert_expiry(sock: ssl.SSLSocket) -> datetime | None:
    cert = sock.getpeercert()
    not_after = cert.get("notAfter") if cert else None
    if not not_after:
        return None
    return datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), UTC)


def classify(exc: BaseException) -> tuple[str, str]:
    """(failure kind, reason) for an exception raised while probing."""
    text = str(exc) or exc.__class__.__name__
    if isinstance(exc, socket.gaierror):
        return "dns", f"DNS lookup failed: {exc.strerror or text}"
    if isinstance(exc, ConnectionRefusedError):
        return "refused", "connection refused"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timeout", text
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "tls", f"certificate verification failed: {exc.verify_message or exc.reason or text}"
    if isinstance(exc, ssl.SSLError):
        return "tls", f"TLS error: {exc.reason or text}"
    if isinstance(exc, http.client.HTTPException):
        return "connection", f"bad HTTP answer: {exc.__class__.__name__} {text}"[:500]
    if isinstance(exc, OSError):
        return "connection", f"{exc.strerror or text}"
    return "other", f"{exc.__class__.__name__}: {text}"[:500]
