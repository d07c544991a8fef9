"""nginx: the configuration nginx/render.sh writes passes `nginx -t` (plain and TLS), and carries the
limits, headers, JSON errors and timeouts the other layers rely on."""

import json
import re
import subprocess

import pytest

from services.config import API_PREFIX
from tests.deploy.conftest import ROOT, gunicorn_settings, nginx_binary, nginx_test, render_nginx

ERROR_STATUSES = (403, 413, 429, 502, 503, 504)


def rendered_text(conf) -> str:
    return "\n".join(path.read_text() for path in sorted(conf.parent.glob("*.conf")))


@pytest.fixture
def plain(tmp_path):
    return render_nginx(tmp_path, NGINX_REAL_IP_FROM="127.0.0.1, 10.0.0.0/8")


def self_signed_certificate(directory):
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-keyout", str(directory / "privkey.pem"), "-out", str(directory / "fullchain.pem")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def test_rendered_configuration_passes_nginx_t(plain):
    result = nginx_test(plain)
    assert result.returncode == 0, result.stderr


def test_tls_configuration_passes_nginx_t(tmp_path):
    certs = tmp_path / "certs"
    certs.mkdir()
    self_signed_certificate(certs)
    conf = render_nginx(
        tmp_path / "out",
        NGINX_TLS="on",
        NGINX_TLS_LISTEN="127.0.0.1:18097",
        NGINX_TLS_CERT=str(certs / "fullchain.pem"),
        NGINX_TLS_KEY=str(certs / "privkey.pem"),
        NGINX_SERVER_NAME="cloudeye.example.org",
    )
    result = nginx_test(conf)
    assert result.returncode == 0, result.stderr
    text = rendered_text(conf)
    assert "add_header Strict-Transport-Security" in text
    assert "return 301 https://$host$request_uri;" in text
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in text


def test_nginx_t_rejects_a_broken_configuration(plain):
    """The check above can fail: a typo in a rendered file is reported."""
    locations = plain.parent / "cloudeye-locations.conf"
    locations.write_text(locations.read_text().replace("limit_req zone=", "limit_reqq zone="))
    assert nginx_test(plain).returncode != 0


def test_plain_http_has_no_hsts(plain):
    assert "add_header Strict-Transport-Security" not in rendered_text(plain)


def test_render_refuses_bad_input(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "NGINX_OUT_DIR": str(tmp_path)}
    for bad in (
        {"NGINX_TLS": "yes"},
        {"NGINX_UPSTREAM": "a:1 b:2"},
        {"NGINX_DENY_FILE": str(tmp_path / "none")},
    ):
        result = subprocess.run(
            ["sh", str(ROOT / "nginx" / "render.sh")], env={**env, **bad}, capture_output=True, text=True
        )
        assert result.returncode != 0 and "render.sh:" in result.stderr, bad


# The report uploads: the API's import, and the console's form (/sites/<id>/imports).
UPLOAD_LOCATIONS = (f"location = {API_PREFIX}/bugs/imports {{", r"location ~ ^/sites/[0-9]+/imports$ {")


def _upload_locations(text: str) -> list[str]:
    return [text.split(opening, 1)[1].split("}", 1)[0] for opening in UPLOAD_LOCATIONS]


def test_body_limits_follow_the_application(tmp_path):
    """Small everywhere, as the app's MAX_REQUEST_BYTES; the report uploads alone (the API's and the
    console's) take MAX_UPLOAD_BYTES."""
    from services.config import Config

    config = Config()
    default = rendered_text(render_nginx(tmp_path / "default"))
    outside = default
    for location in _upload_locations(default):
        assert f"client_max_body_size {config.MAX_UPLOAD_BYTES};" in location
        outside = outside.replace(location, "")
    assert re.findall(r"client_max_body_size (\d+);", outside) == [str(config.MAX_REQUEST_BYTES)]
    small = rendered_text(
        render_nginx(tmp_path / "small", MAX_REPORT_BYTES="1048576", MAX_REQUEST_BYTES="4096")
    )
    assert all("client_max_body_size 2097152;" in location for location in _upload_locations(small))
    assert "client_max_body_size 4096;" in small
    assert nginx_test(render_nginx(tmp_path / "checked")).returncode == 0


def test_timeouts_are_aligned_with_gunicorn(plain):
    text = rendered_text(plain)
    settings = gunicorn_settings()
    read = int(re.search(r"proxy_read_timeout (\d+)s;", text).group(1))
    assert read >= settings["timeout"]
    upstream_keepalive = int(
        re.search(r"upstream cloudeye_api \{.*?keepalive_timeout (\d+)s;", text, re.S).group(1)
    )
    assert upstream_keepalive < settings["keepalive"]
    slower = rendered_text(render_nginx(plain.parent / "slower", GUNICORN_TIMEOUT="120"))
    assert "proxy_read_timeout 125s;" in slower


@pytest.mark.parametrize(
    ("gunicorn_keepalive", "nginx_keepalive"), [("75", 60), ("300", 60), ("10", 5), ("2", 1)]
)
def test_nginx_drops_idle_upstream_connections_before_gunicorn(tmp_path, gunicorn_keepalive, nginx_keepalive):
    conf = render_nginx(tmp_path, GUNICORN_KEEPALIVE=gunicorn_keepalive)
    text = rendered_text(conf)
    found = int(re.search(r"upstream cloudeye_api \{.*?keepalive_timeout (\d+)s;", text, re.S).group(1))
    assert found == nginx_keepalive
    assert found < int(gunicorn_keepalive)
    assert found < int(gunicorn_settings(GUNICORN_KEEPALIVE=gunicorn_keepalive)["keepalive"])
    assert nginx_test(conf).returncode == 0


def test_render_refuses_numbers_that_are_not(tmp_path):
    for name, value in (
        ("GUNICORN_TIMEOUT", "60s"),
        ("GUNICORN_KEEPALIVE", "x"),
        ("MAX_REPORT_BYTES", "1e6"),
    ):
        result = subprocess.run(
            ["sh", str(ROOT / "nginx" / "render.sh")],
            env={"PATH": "/usr/bin:/bin", "NGINX_OUT_DIR": str(tmp_path), name: value},
            capture_output=True,
            text=True,
        )
        assert result.returncode != 0 and f"render.sh: {name} must be a whole number" in result.stderr


def test_upstream_keepalive_and_request_id(plain):
    text = rendered_text(plain)
    assert re.search(r"upstream cloudeye_api \{[^}]*\bkeepalive \d+;", text)
    assert 'proxy_set_header Connection "";' in text and "proxy_http_version 1.1;" in text
    assert "proxy_set_header X-Request-ID $request_id;" in text
    assert "proxy_set_header X-Real-IP $remote_addr;" in text


def test_resolver_makes_the_upstream_follow_dns(tmp_path):
    text = rendered_text(render_nginx(tmp_path, NGINX_UPSTREAM="api:8000", NGINX_RESOLVER="127.0.0.11"))
    assert "resolver 127.0.0.11 valid=10s ipv6=off;" in text
    assert "server api:8000 resolve;" in text
    assert "zone cloudeye_api" in text


def test_real_ip_trust_list(plain):
    text = rendered_text(plain)
    assert "set_real_ip_from 127.0.0.1;" in text and "set_real_ip_from 10.0.0.0/8;" in text
    assert "real_ip_header X-Forwarded-For;" in text


def test_security_headers_server_tokens_gzip_static_and_deny_list(plain):
    text = rendered_text(plain)
    assert "server_tokens off;" in text
    assert "gzip on;" in text and "application/json" in text.split("gzip_types", 1)[1].split(";")[0]
    for header in ("X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy", "Content-Security-Policy"):
        assert f"add_header {header}" in text
    assert re.search(r"location /static/ \{\s*alias [^;]*/nginx/static/;", text)
    assert f"include {ROOT / 'nginx' / 'access' / 'deny.conf'};" in text
    assert "limit_req zone=cloudeye_login" in text.split(f"location = {API_PREFIX}/users/login", 1)[1]


def test_nginx_adds_security_headers_to_its_own_answers_and_passes_the_apps_on(plain):
    """add_header in a location drops the inherited ones: each location that answers itself includes
    them all; a proxied one adds only HSTS (on TLS) and lets the app's own headers through."""
    text = (plain.parent / "cloudeye-locations.conf").read_text()
    blocks = re.findall(r"location [^{]+\{(.*?)\n\}", text, re.S)
    assert len(blocks) >= 10
    for block in blocks:
        if "cloudeye-proxy.conf" in block:
            assert "add_header" not in block and "cloudeye-hsts.conf" in block, block
        elif "add_header" in block:
            assert "cloudeye-headers.conf" in block, block
    proxy = (plain.parent / "cloudeye-proxy.conf").read_text()
    for header in ("X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy", "Content-Security-Policy"):
        assert f"proxy_hide_header {header}" not in proxy


@pytest.mark.parametrize("status", ERROR_STATUSES)
def test_nginx_errors_are_json(plain, status):
    text = (plain.parent / "cloudeye-locations.conf").read_text()
    named = re.search(rf"error_page {status} @(\w+);", text).group(1)
    block = text.split(f"location @{named} {{", 1)[1].split("\n}", 1)[0]
    assert "default_type application/json;" in block
    body = re.search(rf"return {status} '(.*)';", block).group(1)
    document = json.loads(body.replace("\\n", "").replace("$request_id", "abc"))
    assert document["status"] == status and document["title"] and document["request_id"] == "abc"


def test_deny_list_ships_empty_and_parses(tmp_path):
    deny = (ROOT / "nginx" / "access" / "deny.conf").read_text()
    assert all(line.startswith("#") or not line.strip() for line in deny.splitlines())
    listed = tmp_path / "deny.conf"
    listed.write_text(deny + "deny 203.0.113.7;\ndeny 198.51.100.0/24;\n")
    assert nginx_test(render_nginx(tmp_path / "out", NGINX_DENY_FILE=str(listed))).returncode == 0
    listed.write_text("deny not-an-address;\n")
    assert nginx_test(render_nginx(tmp_path / "bad", NGINX_DENY_FILE=str(listed))).returncode != 0


def test_nginx_binary_is_debian_or_newer():
    result = subprocess.run([nginx_binary(), "-V"], capture_output=True, text=True)
    assert "http_realip_module" in result.stderr and "http_ssl_module" in result.stderr


def _block(text: str, location: str) -> str:
    return text.split(f"location {location} {{", 1)[1].split("\n}", 1)[0]


def test_the_console_locations(plain):
    """nginx serves the console's assets itself (with their headers and a year of caching); the pages, the
    status pages and the badges are the app's, which sends their policy and cache headers (tests/console)."""
    text = (plain.parent / "cloudeye-locations.conf").read_text()
    assets = _block(text, "/assets/")
    assert re.search(rf"alias {re.escape(str(ROOT / 'console' / 'static'))}/;", assets)
    assert 'add_header Cache-Control "public, max-age=31536000, immutable" always;' in assets
    assert "cloudeye-headers.conf" in assets and "default-src 'none'" in assets
    for location in ("/", "/api/", "= /login", r"~ ^/sites/[0-9]+/imports$"):
        block = _block(text, location)
        assert "cloudeye-proxy.conf" in block and "cloudeye-hsts.conf" in block, location
        assert "add_header" not in block, location  # the app's headers pass through untouched
    assert "limit_req zone=cloudeye_login" in _block(text, "= /login")
    assert "location /badge/" not in text  # proxied by `location /`: the app sends the badge's headers
    proxy = (plain.parent / "cloudeye-proxy.conf").read_text()
    assert "proxy_hide_header Cross-Origin-Resource-Policy" not in proxy
    # nginx's own answers under /badge/ (a 502) may be embedded too; everything else only by this origin.
    http = (plain.parent / "cloudeye.conf").read_text()
    assert re.search(
        r"map \$uri \$cloudeye_resource_policy \{\s*~\^/badge/ cross-origin;\s*default same-origin;", http
    )
    headers = (plain.parent / "cloudeye-headers.conf").read_text()
    assert "add_header Cross-Origin-Resource-Policy $cloudeye_resource_policy always;" in headers


def test_render_refuses_a_missing_console_asset_directory(tmp_path):
    result = subprocess.run(
        ["sh", str(ROOT / "nginx" / "render.sh")],
        env={
            "PATH": "/usr/bin:/bin",
            "NGINX_OUT_DIR": str(tmp_path),
            "NGINX_CONSOLE_STATIC_ROOT": str(tmp_path / "no"),
        },
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "NGINX_CONSOLE_STATIC_ROOT" in result.stderr
