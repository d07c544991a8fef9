"""The site rules in services.sites hold for every caller, not only for the API's schema."""

import pytest

from services import sites
from services.errors import Invalid
from tests.factories import create_user

VALID = {"name": "Shop", "url": "https://shop.example.test/"}


def test_create_site_fills_in_the_defaults(ctx):
    site = sites.create_site(create_user("operator"), dict(VALID))
    assert (site.check_interval_s, site.timeout_s, site.accepted_status) == (60, 10, "200-399")
    assert site.tamper_ignore == [] and site.forbidden_keywords == [] and site.paused is False


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"timeout_s": 100, "check_interval_s": 30}, "timeout_s"),
        ({"timeout_s": 61}, "timeout_s"),  # against the default interval of 60
        ({"check_interval_s": 5}, "check_interval_s"),
        ({"url": "ftp://shop.example.test/"}, "url"),
        ({"url": "http://shop example/"}, "url"),
        ({"accepted_status": "399-200"}, "accepted_status"),
        ({"tamper_ignore": ["("]}, "tamper_ignore"),
        ({"forbidden_keywords": [""]}, "forbidden_keywords"),
        ({"name": ""}, "name"),
        ({"name": None}, "name"),
    ],
)
def test_create_site_refuses_what_the_api_refuses(ctx, settings, field):
    with pytest.raises(Invalid) as refused:
        sites.create_site(create_user("operator"), {**VALID, **settings})
    assert field in refused.value.errors


def test_update_site_checks_the_timeout_against_the_stored_interval(ctx):
    user = create_user("operator")
    site = sites.create_site(user, {**VALID, "timeout_s": 30})
    with pytest.raises(Invalid) as refused:
        sites.update_site(user, site.id, {"check_interval_s": 20})
    assert "timeout_s" in refused.value.errors
    assert sites.update_site(user, site.id, {"check_interval_s": 30}).check_interval_s == 30


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.1.2.3", "169.254.169.254", "::1", "fe80::1", "fc00::1", "ff02::1",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "64:ff9b::7f00:1", "64:ff9b::a01:203",  # NAT64 of 127.0.0.1 and 10.1.2.3
        "64:ff9b:1::a01:203",  # local-use NAT64
        "2002:7f00:1::", "2002:a01:203::1",  # 6to4 of 127.0.0.1 and 10.1.2.3
        "::127.0.0.1",  # IPv4-compatible
        "2001:0:4136:e378:8000:63bf:80fe:fffe",  # Teredo whose client is 127.1.0.1
    ],
)  # fmt: skip
def test_private_addresses_are_found_inside_ipv6_ones(address):
    assert not sites.is_public_address(address)


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"]
)
def test_public_addresses_stay_public(address):
    assert sites.is_public_address(address)


@pytest.fixture
def no_private_targets(app):
    app.config["ALLOW_PRIVATE_TARGETS"] = False
    yield
    app.config["ALLOW_PRIVATE_TARGETS"] = True


@pytest.mark.parametrize(
    "url",
    [
        "http://[64:ff9b::7f00:1]/", "http://[2002:7f00:1::]/", "http://[64:ff9b::a01:203]:8080/x",
        "http://127.0.0.1/", "http://localhost./", "http://[::1]:8080/",
    ],
)  # fmt: skip
def test_the_api_refuses_private_targets_when_they_are_disabled(ctx, no_private_targets, url):
    with pytest.raises(Invalid, match="private"):
        sites.check_target(url)
    sites.check_target("http://8.8.8.8/") or sites.check_target("https://example.com/")


@pytest.mark.parametrize(
    "url", ["http://2130706433/", "http://0x7f000001/", "http://127.000.000.001/", "http://134744072/"]
)
def test_numeric_host_forms_are_refused_whatever_the_setting(ctx, url):
    with pytest.raises(Invalid, match="four decimal numbers"):
        sites.check_target(url)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://watch:s3cret@shop.example.test/p?q=a@b", "https://shop.example.test/p?q=a@b"),
        ("http://watch@[::1]:8080/x", "http://[::1]:8080/x"),
        ("https://Shop.Example.test/", "https://Shop.Example.test/"),
    ],
)
def test_without_userinfo_keeps_the_host_as_written(url, expected):
    assert sites.without_userinfo(url) == expected


def test_visible_ids_are_read_once_a_transaction_and_forgotten_on_writes(ctx):
    from services.extensions import db
    from services.models import SiteMember
    from tests.api.helpers import statements

    owner, reader = create_user("operator"), create_user("operator")
    first = sites.create_site(owner, dict(VALID))
    second = sites.create_site(owner, {**VALID, "name": "Second"})
    db.session.add(SiteMember(site_id=first.id, user_id=reader.id, permission="read"))
    db.session.commit()

    assert sites.visible_ids(reader) == [first.id]
    with statements() as seen:
        assert sites.visible_ids(reader) == [first.id]
    assert not [sql for sql in seen if "site" in sql], "the second call read the sites again"

    # A write in the same transaction (autoflushed before the read) is seen.
    db.session.add(SiteMember(site_id=second.id, user_id=reader.id, permission="read"))
    assert sites.visible_ids(reader) == [first.id, second.id]
    db.session.rollback()
    assert sites.visible_ids(reader) == [first.id]
