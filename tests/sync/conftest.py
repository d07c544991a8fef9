"""Local HTTP(S) servers the sync tests control, certificates made on the spot, and a worker fixture."""

import ipaddress
import socket
import ssl
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SECURE_HEADERS = {
    "Strict-Transport-Security": "max-age=31536000",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@dataclass
class Route:
    status: int = 200
    body: bytes = b"<html><body><h1>Welcome</h1><p>All good.</p></body></html>"
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    gate: threading.Event | None = None  # the answer waits until the test sets it
    drip: float = 0.0  # send the body one byte per `drip` seconds


class WebServer:
    """A threaded HTTP server on 127.0.0.1:<ephemeral> whose answers the test sets per path."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None):
        self.routes: dict[str, Route] = {}
        self.hits: Counter = Counter()
        self.request_headers: dict[str, dict] = {}  # path -> the headers of its latest request
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                path = self.path.split("?", 1)[0]
                with server._lock:
                    server.hits[path] += 1
                    server.request_headers[path] = dict(self.headers.items())
                    route = server.routes.get(path)
                if route is None:
                    route = Route(status=404, body=b"not found")
                if route.gate is not None:
                    route.gate.wait(60)
                if route.delay:
                    threading.Event().wait(route.delay)
                try:
                    self.send_response(route.status)
                    headers = {"Content-Type": "text/html; charset=utf-8", **route.headers}
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(route.body)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    if route.drip:
                        for byte in route.body:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            threading.Event().wait(route.drip)
                    else:
                        self.wfile.write(route.body)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                    pass

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

    def set(self, path: str, body: str | bytes | None = None, **kwargs) -> str:
        route = Route(**kwargs)
        if body is not None:
            route.body = body.encode() if isinstance(body, str) else body
        with self._lock:
            self.routes[path] = route
        return self.url(path)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def close(self) -> None:
        for route in self.routes.values():
            if route.gate is not None:
                route.gate.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def web():
    server = WebServer()
    yield server
    server.close()


@dataclass
class Certificates:
    ca_file: str
    ca: x509.Certificate
    ca_key: ec.EllipticCurvePrivateKey
    directory: str

    def server_context(
        self, days_valid: float, with_ip: bool = True, dns_names: tuple = ("localhost",)
    ) -> ssl.SSLContext:
        """A server context with a leaf certificate for `dns_names` (and 127.0.0.1 unless `with_ip` is
        false) valid `days_valid` days."""
        names = [x509.DNSName(name) for name in dns_names]
        if with_ip:
            names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(self.ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=days_valid))
            .add_extension(
                x509.SubjectAlternativeName(names),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()), critical=False
            )
            .sign(self.ca_key, hashes.SHA256())
        )
        stamp = f"{days_valid}-{x509.random_serial_number()}"
        cert_file = f"{self.directory}/leaf-{stamp}.pem"
        key_file = f"{self.directory}/leaf-{stamp}.key"
        with open(cert_file, "wb") as handle:
            handle.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(key_file, "wb") as handle:
            handle.write(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        self.not_after = cert.not_valid_after_utc
        return context


@pytest.fixture(scope="session")
def certificates(tmp_path_factory):
    """A throw-away CA (its PEM is what the worker is told to trust, like SYNC_CA_FILE)."""
    directory = tmp_path_factory.mktemp("certs")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cloudeye test CA")])
    now = datetime.now(UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return Certificates(str(ca_file), ca, key, str(directory))


def refused_url() -> str:
    """A loopback port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def worker(app, ctx):
    from sync.worker import Worker

    instance = Worker(app)
    yield instance
    instance.close()
