"""Real local receivers for notification tests: a webhook HTTP(S) server and an SMTP server (aiosmtpd)."""

import hashlib
import hmac
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes

    @property
    def json(self):
        return json.loads(self.body)

    def signature_ok(self, secret: str) -> bool:
        """What a receiver does: HMAC-SHA256 of the raw body, compared in constant time."""
        expected = "sha256=" + hmac.new(secret.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.headers.get("X-Cloudeye-Signature", ""))


class WebhookReceiver:
    """A threaded HTTP server on 127.0.0.1 that records every POST. `statuses` (a list) gives the answer
    of the next requests in turn (then 200); `delay` holds each answer that long."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None):
        self.received: list[Received] = []
        self.statuses: list[int] = []
        self.delay = 0.0
        self.gate: threading.Event | None = None  # when set: answers wait for it
        self.answered = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.received.append(Received(self.path, dict(self.headers.items()), body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    gate, delay = receiver.gate, receiver.delay
                if gate is not None:
                    gate.wait(60)
                if delay:
                    time.sleep(delay)
                answer = b"ok" if status < 300 else b"receiver says no"
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                    pass
                with receiver._lock:
                    receiver.answered += 1

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.scheme = "http"
        if ssl_context is not None:
            self.httpd.socket = ssl_context.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.daemon = True
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def events(self, name: str | None = None) -> list[dict]:
        with self._lock:
            bodies = [r.json for r in self.received]
        return [b for b in bodies if name is None or b["event"] == name]

    def close(self) -> None:
        if self.gate is not None:
            self.gate.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class SmtpReceiver:
    """aiosmtpd on 127.0.0.1:<free port>, no TLS, no auth; keeps each message parsed."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        receiver = self
        self.messages = []

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
                receiver.messages.append(
                    (
                        envelope.mail_from,
                        list(envelope.rcpt_tos),
                        message_from_bytes(envelope.content, policy=policy.default),
                    )
                )
                return "250 OK"

        with socket.socket() as probe:  # aiosmtpd needs a port it can connect to, not 0
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()
