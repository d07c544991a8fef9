"""The HTTP(S) probe against local servers: statuses, keyword rule, redirects, failures, TLS, deadline."""

import base64
import gzip
import socket
import threading
from datetime import UTC, datetime, timedelta

import pytest

from sync import builtin_findings
from sync import probe as probe_module
from sync.probe import Prober, Target, make_ssl_context
from tests.sync.conftest import WebServer, refused_url


def probe(url, prober=None, **target):
    target.setdefault("timeout_s", 5)
    return (prober or Prober()).probe(Target(site_id=1, url=url, **target))


def test_up_records_status_time_and_headers(web):
    url = web.set("/", headers={"X-Frame-Options": "DENY"})
    result = probe(url)
    assert result.up and result.failure_kind is None and result.reason is None
    assert result.http_status == 200 and result.status_accepted
    assert result.response_ms > 0
    assert result.headers["x-frame-options"] == "DENY"
    assert result.final_url == url and result.tls_expires_at is None
    assert result.body is None  # kept only for the tamper check
    assert web.hits["/"] == 1


def test_wrong_status_is_down_with_reason(web):
    result = probe(web.set("/", status=503, body="maintenance"))
    assert not result.up
    assert result.failure_kind == "status" and result.http_status == 503
    assert "503" in result.reason and "200-399" in result.reason
    assert not result.status_accepted


def test_accepted_status_ranges_are_the_sites(web):
    url = web.set("/", status=404)
    assert probe(url, accepted_status="200-299,404").up
    assert not probe(url, accepted_status="200-299").up


@pytest.mark.parametrize(
    ("keyword", "absent", "up"),
    [("Welcome", False, True), ("Missing", False, False), ("Missing", True, True), ("Welcome", True, False)],
)
def test_keyword_rule(web, keyword, absent, up):
    result = probe(web.set("/"), keyword=keyword, keyword_absent=absent)
    assert result.up is up
    if not up:
        assert result.failure_kind == "keyword" and keyword in result.reason
        assert result.status_accepted  # the answer itself was fine: tamper and findings still use it


def test_redirects_are_followed_and_judged_on_the_final_answer(web):
    final = web.set("/final", body="<p>landed here</p>")
    web.set("/hop", status=302, headers={"Location": "/final"})
    web.set("/start", status=301, headers={"Location": web.url("/hop")})
    result = probe(web.url("/start"), keyword="landed", keep_body=True)
    assert result.up and result.http_status == 200
    assert result.final_url == final and result.redirects == [web.url("/hop"), final]
    assert "landed here" in result.body


def test_credentials_in_the_url_are_basic_auth_for_the_sites_origin_only(web):
    web.set("/private", status=302, headers={"Location": "/inside"})
    web.set("/inside", status=302, headers={"Location": web.url("/elsewhere", host="localhost")})
    web.set("/elsewhere", body="<p>other origin</p>")
    url = f"http://monitor:s%40cret@127.0.0.1:{web.port}/private"
    result = probe(url)
    expected = "Basic " + base64.b64encode(b"monitor:s@cret").decode()
    assert web.request_headers["/private"]["Authorization"] == expected
    assert web.request_headers["/inside"]["Authorization"] == expected  # same origin
    assert "Authorization" not in web.request_headers["/elsewhere"]  # another host: not sent there
    assert result.up and result.final_url == web.url("/elsewhere", host="localhost")
    # Nothing the probe returns (it ends up in checks and findings) carries the password.
    findings = builtin_findings.evaluate(result, datetime.now(UTC))
    assert findings and all("cret" not in repr(f) for f in findings)
    assert "cret" not in repr(result)


def test_a_url_without_credentials_sends_no_authorization(web):
    assert probe(web.set("/")).up
    assert "Authorization" not in web.request_headers["/"]


def test_redirect_loop_is_down(web):
    web.set("/a", status=302, headers={"Location": "/b"})
    web.set("/b", status=302, headers={"Location": "/a"})
    result = probe(web.url("/a"))
    assert not result.up and result.failure_kind == "other" and "redirects" in result.reason


def test_refused(web):
    result = probe(refused_url())
    assert not result.up and result.failure_kind == "refused" and result.http_status is None


def test_dns_failure():
    result = probe("http://no-such-host.invalid/")
    assert not result.up and result.failure_kind == "dns" and "no-such-host.invalid" in result.reason


def test_a_dns_lookup_that_hangs_is_cut_at_the_sites_timeout(monkeypatch):
    # The system resolver may hang far beyond the site's timeout (and getaddrinfo cannot be interrupted):
    # the probe must give up at its deadline, not hold a probe slot (and its claim) meanwhile.
    release = threading.Event()
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host == "hangs.example":
            release.wait(120)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    results = []
    runner = threading.Thread(target=lambda: results.append(probe("http://hangs.example/", timeout_s=1)))
    runner.start()
    try:
        runner.join(60)
        answered_while_lookup_hangs = not runner.is_alive()
    finally:
        release.set()
        runner.join(120)
    assert answered_while_lookup_hangs
    [result] = results
    assert not result.up and result.failure_kind == "dns" and "hangs.example" in result.reason


def test_a_lookup_that_could_not_start_gives_its_slot_back(web, monkeypatch):
    monkeypatch.setattr(probe_module, "_lookup_slots", threading.BoundedSemaphore(1))

    class NoLookupThread(threading.Thread):
        def start(self):
            if self.name == "dns-lookup":
                raise RuntimeError("can't start new thread")
            super().start()

    with monkeypatch.context() as patch:
        patch.setattr(threading, "Thread", NoLookupThread)
        result = probe(web.url("/", host="localhost"))
    assert not result.up and "can't start new thread" in result.reason
    web.set("/")
    assert probe(web.url("/", host="localhost")).up  # the one lookup slot is free again


def test_slow_answer_is_a_timeout(web):
    gate = threading.Event()
    url = web.set("/", gate=gate)
    try:
        result = probe(url, timeout_s=1)
    finally:
        gate.set()
    assert not result.up and result.failure_kind == "timeout" and "1 s" in result.reason


def test_deadline_covers_a_body_that_keeps_dripping(web):
    # Every byte comes well within any per-read timeout, but the whole page takes far longer than 1 s.
    url = web.set("/", body="x" * 400, drip=0.05)
    result = probe(url, timeout_s=1)
    assert not result.up and result.failure_kind == "timeout"


def test_gzip_body_is_decoded_for_the_keyword_and_the_page(web):
    url = web.set("/", body=gzip.compress(b"<p>compressed hello</p>"), headers={"Content-Encoding": "gzip"})
    result = probe(url, keyword="compressed hello", keep_body=True)
    assert result.up and result.body == "<p>compressed hello</p>"


def test_body_is_cut_at_the_limit(web):
    url = web.set("/", body="a" * 5000 + "needle")
    result = probe(url, prober=Prober(max_body_bytes=1000), keyword="needle", keep_body=True)
    assert result.failure_kind == "keyword" and len(result.body) == 1000


def test_charset_from_content_type(web):
    url = web.set("/", body="café".encode("latin-1"), headers={"Content-Type": "text/html; charset=latin-1"})
    assert probe(url, keyword="café").up


def test_tls_expiry_is_recorded_when_trusted(certificates):
    server = WebServer(certificates.server_context(days_valid=5))
    try:
        url = server.set("/")
        result = probe(url, prober=Prober(make_ssl_context(certificates.ca_file)))
        assert result.up, result.reason
        assert abs(result.tls_expires_at - certificates.not_after) < timedelta(seconds=1)
        assert result.tls_expires_at - datetime.now(UTC) < timedelta(days=5)
    finally:
        server.close()


def test_untrusted_certificate_is_a_tls_failure(certificates):
    server = WebServer(certificates.server_context(days_valid=30))
    try:
        result = probe(server.set("/"))  # system trust store only: the test CA is unknown
        assert not result.up and result.failure_kind == "tls"
        assert "certificate" in result.reason
    finally:
        server.close()


def test_wrong_host_name_is_a_tls_failure(certificates):
    server = WebServer(certificates.server_context(days_valid=30, with_ip=False))
    try:
        server.set("/")
        # The certificate names localhost only.
        result = probe(server.url("/"), prober=Prober(make_ssl_context(certificates.ca_file)))
        assert not result.up and result.failure_kind == "tls"
    finally:
        server.close()


def test_plain_http_to_a_tls_port_is_a_connection_failure(certificates):
    server = WebServer(certificates.server_context(days_valid=30))
    try:
        server.set("/")
        result = probe(f"http://127.0.0.1:{server.port}/", timeout_s=2)
        assert not result.up and result.failure_kind in ("connection", "timeout")
    finally:
        server.close()


def test_private_targets_are_refused_when_disabled(web):
    strict = Prober(allow_private=False)
    result = probe(web.set("/"), prober=strict)
    assert (
        not result.up and result.failure_kind == "other" and "private targets are disabled" in result.reason
    )
    assert web.hits["/"] == 0
    assert "private" in probe("http://localhost:1/", prober=strict).reason


def test_private_targets_are_refused_behind_a_redirect(web, monkeypatch):
    # Pretend 127.0.0.1 is a public address; the redirect goes to 127.0.0.2, which stays private.
    real_public = probe_module.is_public_address
    monkeypatch.setattr(
        probe_module, "is_public_address", lambda address: address == "127.0.0.1" or real_public(address)
    )
    web.set("/hop", status=302, headers={"Location": f"http://127.0.0.2:{web.port}/"})
    result = probe(web.url("/hop"), prober=Prober(allow_private=False))
    assert web.hits["/hop"] == 1
    assert result.failure_kind == "other" and "127.0.0.2" in result.reason and "private" in result.reason


def test_ipv6_addresses_that_carry_a_private_ipv4_one_are_refused_when_private_targets_are_disabled():
    strict = Prober(allow_private=False)
    for url in ("http://[64:ff9b::7f00:1]:9/", "http://[2002:7f00:1::]:9/", "http://[::ffff:7f00:1]:9/"):
        result = probe(url, prober=strict)
        assert not result.up and result.failure_kind == "other", (url, result)
        assert "private targets are disabled" in result.reason, url
