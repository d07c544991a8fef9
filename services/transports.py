"""Sending one message over one channel — the only code in cloudeye that talks to notification services.

- `http://` and `https://` URLs: cloudeye's own webhook, a JSON `POST` of the event with the headers
  `X-Cloudeye-Event`, `X-Cloudeye-Delivery` and, with a secret, `X-Cloudeye-Signature:
  sha256=<hex HMAC-SHA256 of the raw body>`; any 2xx answer is delivered; redirects are not followed.
- every other scheme: Apprise (`mailto://`, `dingtalk://`, `wecombot://`, `feishu://`, `slack://`,
  `tgram://`, ...), which knows each service's API; cloudeye hands it a title and a body.

Both are bounded: every connect and read waits at most the timeout given. Used by the sync worker
(`sync/notify.py`) and by `POST /channels/{id}/test`, the one send made from a request.

Apprise's own debug lines can carry tokens (the URLs it posts to), so its logger is kept at WARNING;
what it warns about while sending is captured per thread and becomes the delivery's error.
"""

import contextlib
import hashlib
import hmac
import json
import logging
import re
import socket
import threading
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import apprise
import requests
from apprise.manager_plugins import NotificationManager

USER_AGENT = "cloudeye-notify/1"
ERROR_BODY_BYTES = 300
WEBHOOK_SCHEMES = ("http", "https")
ASSET = apprise.AppriseAsset(app_id="cloudeye", app_desc="cloudeye website monitor")

log = logging.getLogger(__name__)
N_MGR = NotificationManager()  # Apprise's registry of services (a singleton)


class SendError(Exception):
    """The message was not delivered; the text says why (no secrets in it)."""


def deliver(delivery, timeout_s: float, allow_private: bool = True) -> None:
    """Send one claimed delivery (services.alerts.outbox.Delivery) over its channel; SendError if not
    delivered. Without `allow_private` (ALLOW_PRIVATE_TARGETS off) a receiver whose host name resolves to a
    private address now is refused: the check at save time only sees names, and names move."""
    if delivery.kind == "webhook":
        if not allow_private:
            refuse_private_host(urlsplit(delivery.url).hostname)
        send_webhook(delivery.url, delivery.secret, delivery.webhook_payload(), timeout_s)
    else:
        send_apprise(delivery.url, delivery.title, delivery.body, timeout_s, allow_private)


def refuse_private_host(host: str | None) -> None:
    """SendError when `host` is, or resolves to, an address that is not public (services.sites rule).

    A name that does not resolve is left to the send itself, which reports it; a name that answers
    differently between this lookup and the sender's own connection is not caught (documented)."""
    from services.sites import is_public_address

    if not host:
        return
    host = host.strip("[]").rstrip(".")
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None, 0, socket.SOCK_STREAM)}
    except (OSError, UnicodeError):
        return
    private = sorted(address for address in addresses if not is_public_address(address))
    if private:
        raise SendError(f"{host} is a private address ({private[0]}) and private targets are disabled")


def is_webhook(url: str) -> bool:
    return urlsplit(url).scheme.lower() in WEBHOOK_SCHEMES


# --- cloudeye's webhook ------------------------------------------------------------------------------


def sign(secret: str, body: bytes) -> str:
    """The X-Cloudeye-Signature value of `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


_local = threading.local()


def _session() -> requests.Session:
    """One session per thread: connections to a receiver are reused between deliveries."""
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
        session.headers["User-Agent"] = USER_AGENT
    return session


def send_webhook(url: str, secret: str | None, payload: dict, timeout_s: float) -> None:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "X-Cloudeye-Event": payload["event"],
        "X-Cloudeye-Delivery": payload["delivery_id"],
    }
    if secret:
        headers["X-Cloudeye-Signature"] = sign(secret, body)
    host = urlsplit(url).netloc.rsplit("@", 1)[-1]
    try:
        with _session().post(
            url, data=body, headers=headers, timeout=timeout_s, allow_redirects=False, stream=True
        ) as response:
            if 200 <= response.status_code < 300:
                return
            excerpt = response.raw.read(ERROR_BODY_BYTES, decode_content=True) or b""
    except requests.Timeout:
        raise SendError(f"{host} did not answer within {timeout_s:g} s") from None
    except requests.exceptions.SSLError:
        raise SendError(f"TLS with {host} failed (certificate not trusted, or no TLS there)") from None
    except requests.ConnectionError as exc:
        raise SendError(f"could not connect to {host}: {_os_reason(exc)}") from None
    except requests.RequestException as exc:
        raise SendError(f"request to {host} failed: {type(exc).__name__}") from None
    text = excerpt.decode("utf-8", "replace").strip()
    raise SendError(f"{host} answered HTTP {response.status_code}" + (f": {text}" if text else ""))


def _os_reason(exc: BaseException) -> str:
    """The operating system's words for a connection failure (refused, unreachable, no such host)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.strerror:
            return exc.strerror
        if "NameResolution" in type(exc).__name__:
            return "the host name does not resolve"
        nested = next((arg for arg in getattr(exc, "args", ()) if isinstance(arg, BaseException)), None)
        exc = nested or getattr(exc, "reason", None) or exc.__cause__ or exc.__context__
    return "connection failed"


# --- Apprise -----------------------------------------------------------------------------------------


class _PerThreadCapture(logging.Handler):
    """Collects the warnings Apprise logs on the current thread while `capture()` is active."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self._local = threading.local()

    def emit(self, record):
        lines = getattr(self._local, "lines", None)
        if lines is not None:
            lines.append(record.getMessage())

    @contextlib.contextmanager
    def capture(self):
        self._local.lines = lines = []
        try:
            yield lines
        finally:
            self._local.lines = None


_apprise_log = logging.getLogger("apprise")
_apprise_log.setLevel(logging.WARNING)
_capture = _PerThreadCapture()
_apprise_log.addHandler(_capture)


def _instantiate(url: str):
    return apprise.Apprise.instantiate(url, asset=ASSET, suppress_exceptions=True)


def apprise_problem(url: str) -> str | None:
    """Why Apprise cannot use `url`, in Apprise's words, or None when it can."""
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if not scheme:
        return "not a URL: expected scheme://..., e.g. mailto://, dingtalk://, https://"
    if scheme not in apprise_schemes():
        return f"unknown scheme {scheme}:// (neither http(s) nor one of Apprise's services)"
    with _capture.capture() as lines:
        plugin = _instantiate(url)
    if plugin is None:
        detail = "; ".join(line.rstrip(".") for line in lines if not line.startswith("Could not load"))
        return f"Apprise cannot use this {scheme}:// URL" + (f": {detail}" if detail else "")
    return None


def apprise_schemes() -> set[str]:
    """The schemes Apprise handles (loaded once by Apprise itself), less http/https, which are ours."""
    return {scheme.lower() for scheme in N_MGR.schemas()} - set(WEBHOOK_SCHEMES)


def send_apprise(url: str, title: str, body: str, timeout_s: float, allow_private: bool = True) -> None:
    with _capture.capture() as lines:
        plugin = _instantiate(url)
        if plugin is None:
            raise SendError("Apprise can no longer use this URL: " + "; ".join(lines)[:300])
        host = getattr(plugin, "host", None)
        if not allow_private and isinstance(host, str) and _names_a_server(plugin):
            refuse_private_host(host)
        plugin.socket_connect_timeout = timeout_s
        plugin.socket_read_timeout = timeout_s
        delivered = plugin.notify(body=body, title=title)
    if not delivered:
        raise SendError("; ".join(lines[-3:]) or f"{plugin.service_name} refused the notification")


def _names_a_server(plugin) -> bool:
    """Whether the plugin's `host` is a server to connect to (mailto's SMTP host, ntfy, json://, gotify...)
    rather than a token in the host's place (dingtalk://TOKEN): Apprise marks the latter with a fixed
    `notify_url` of its own service."""
    return not getattr(plugin, "notify_url", None)


def mask_apprise(url: str) -> str:
    plugin = _instantiate(url)
    return plugin.url(privacy=True) if plugin is not None else _mask_generic(url)


# --- masking --------------------------------------------------------------------------------------


_TOKENISH = re.compile(r"(?=.*\d)[A-Za-z0-9_\-.~%]{16,}")
MASK = "****"


def mask_webhook(url: str) -> str:
    """The URL with what may be a secret hidden: the password, every query value, and the path past its
    first segment (or a first segment that looks like a token)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    if parts.username:
        host = f"{quote(parts.username, safe='')}{':' + MASK if parts.password else ''}@{host}"
    segments = [segment for segment in parts.path.split("/") if segment]
    if segments:
        first = MASK if _TOKENISH.fullmatch(segments[0]) else segments[0]
        path = "/" + first + ("/" + MASK if len(segments) > 1 else "")
    else:
        path = parts.path
    query = urlencode([(name, MASK) for name, _ in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
    return urlunsplit((parts.scheme, host, path, query, ""))


def _mask_generic(url: str) -> str:
    scheme = url.split("://", 1)[0] if "://" in url else ""
    return f"{scheme}://{MASK}" if scheme else MASK


def mask(url: str) -> str:
    return mask_webhook(url) if is_webhook(url) else mask_apprise(url)
