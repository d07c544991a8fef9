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
