"""Channels through the API: rules at save (422 with the reason, nothing stored), secrets masked in every
answer, ownership (404 for another user's channel), and the test send against a real local receiver."""

import socket

import pytest
import sqlalchemy as sa

from services.extensions import db
from services.models import Channel, ChannelSite, Notification
from services.sites import is_public_address
from tests.factories import create_site, share
from tests.receivers import WebhookReceiver

DINGTALK = "dingtalk://s3cretSIGNkey@0123456789abcdef0123456789abcdef/"


@pytest.fixture
def receiver():
    server = WebhookReceiver()
    yield server
    server.close()


def count(model) -> int:
    db.session.rollback()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_a_webhook_channel_with_defaults_and_a_masked_url(operator):
    response = operator.post(
        "/channels",
        json={
            "name": "ops",
            "url": "https://hooks.example.test/services/T000/B000/XXXXtoken?key=abc123",
            "secret": "hush",
        },
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["kind"] == "webhook" and body["has_secret"] is True
    assert body["events"] == [
        "site.down",
        "site.up",
        "site.flapping",
        "tls.expiring",
        "tamper.opened",
        "findings.new",
    ]
    assert body["site_ids"] is None and body["min_severity"] == "high" and body["remind_every_min"] == 0
    assert body["enabled"] is True and body["language"] == "en" and body["owner_id"] == operator.user.id
    assert body["url"] == "https://hooks.example.test/services/****?key=****"
    text = response.get_data(as_text=True)
    assert "hush" not in text and "XXXXtoken" not in text and "abc123" not in text and "secret" not in body
    listed = operator.get("/channels").get_json()
    assert listed["total"] == 1 and "XXXXtoken" not in str(listed)


def test_an_apprise_channel_is_masked_by_apprise(operator):
    response = operator.post("/channels", json={"name": "钉钉", "url": DINGTALK, "language": "zh-CN"})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["kind"] == "apprise" and body["url"].startswith("dingtalk://")
    assert "s3cretSIGNkey" not in response.get_data(as_text=True)
    assert "0123456789abcdef0123456789abcdef" not in response.get_data(as_text=True)
    # Sending the masked URL back (a client that PATCHes what it read) keeps the real one.
    patched = operator.patch(f"/channels/{body['id']}", json={"url": body["url"], "name": "renamed"})
    assert patched.status_code == 200
    assert db.session.get(Channel, body["id"]).url == DINGTALK


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"name": "x", "url": "foo://bar"}, "url"),
        ({"name": "x", "url": "dingtalk://"}, "url"),
        ({"name": "x", "url": "mailto://"}, "url"),
        ({"name": "x", "url": "not a url"}, "url"),
        ({"name": "x", "url": "https://"}, "url"),
        ({"name": "x", "url": DINGTALK, "secret": "only for webhooks"}, "secret"),
        ({"name": "x", "url": "https://a.example.test/", "events": ["site.exploded"]}, "events"),
        ({"name": "x", "url": "https://a.example.test/", "events": []}, "events"),
        ({"name": "x", "url": "https://a.example.test/", "min_severity": "urgent"}, "min_severity"),
        ({"name": "x", "url": "https://a.example.test/", "remind_every_min": -1}, "remind_every_min"),
        ({"name": "x", "url": "https://a.example.test/", "language": "fr"}, "language"),
        ({"name": "", "url": "https://a.example.test/"}, "name"),
        ({"url": "https://a.example.test/"}, "name"),
        ({"name": "x", "url": "https://a.example.test/", "site_ids": [0]}, "site_ids"),
        ({"name": "x", "url": "https://a.example.test/", "enabled": "maybe"}, "enabled"),
        ({"name": "x", "url": "https://a.example.test/", "extra": 1}, "extra"),
    ],
)
def test_bad_channels_are_422_with_the_field_and_store_nothing(operator, payload, field):
    response = operator.post("/channels", json=payload)
    assert response.status_code == 422, response.get_json()
    body = response.get_json()
    assert field in body["errors"], body
    assert count(Channel) == 0


def test_the_reason_of_a_bad_apprise_url_comes_from_apprise(operator):
    body = operator.post("/channels", json={"name": "x", "url": "dingtalk://"}).get_json()
    assert "DingTalk" in body["errors"]["url"][0] or "dingtalk" in body["errors"]["url"][0]
    body = operator.post("/channels", json={"name": "x", "url": "foo://bar"}).get_json()
    assert "unknown scheme foo://" in body["errors"]["url"][0]


def test_site_ids_must_be_sites_the_owner_can_see(operator, other_operator, viewer):
    own = create_site(operator.user)
    hidden = create_site(other_operator.user)
    response = operator.post(
        "/channels", json={"name": "x", "url": "https://a.example.test/", "site_ids": [own.id, hidden.id]}
    )
    assert response.status_code == 422
    assert response.get_json()["errors"]["site_ids"] == [f"site {hidden.id} not found"]
    assert count(Channel) == 0
    # Any role may own a channel, about what it can see: a viewer with a share.
    share(own, viewer.user)
    response = viewer.post(
        "/channels", json={"name": "mine", "url": "https://a.example.test/", "site_ids": [own.id]}
    )
    assert response.status_code == 201 and response.get_json()["site_ids"] == [own.id]
    channel_id = response.get_json()["id"]
    # None of them is refused (at least one, or null); back to every site.
    assert viewer.patch(f"/channels/{channel_id}", json={"site_ids": []}).status_code == 422
    assert viewer.patch(f"/channels/{channel_id}", json={"site_ids": None}).get_json()["site_ids"] is None
    assert count(ChannelSite) == 0


def test_channels_of_others_are_404_and_admin_sees_all(operator, other_operator, admin):
    channel = operator.post("/channels", json={"name": "x", "url": "https://a.example.test/"}).get_json()
    for method, kwargs in (("get", {}), ("patch", {"json": {"name": "taken"}}), ("delete", {}), ("post", {})):
        path = f"/channels/{channel['id']}" + ("/test" if method == "post" else "")
        assert getattr(other_operator, method)(path, **kwargs).status_code == 404, method
    assert other_operator.get("/channels").get_json()["total"] == 0
    assert admin.get("/channels").get_json()["total"] == 1
    assert admin.patch(f"/channels/{channel['id']}", json={"enabled": False}).get_json()["enabled"] is False
    assert operator.delete(f"/channels/{channel['id']}").status_code == 204
    assert count(Channel) == 0


def test_malformed_json_and_empty_patch(operator):
    response = operator.post("/channels", data="{not json", content_type="application/json")
    assert response.status_code == 400
    channel = operator.post("/channels", json={"name": "x", "url": "https://a.example.test/"}).get_json()
    response = operator.patch(f"/channels/{channel['id']}", json={})
    assert response.status_code == 422
    response = operator.patch(f"/channels/{channel['id']}", json={"url": None})
    assert response.status_code == 422 and "url" in response.get_json()["errors"]


def test_the_test_send_reaches_a_real_receiver_signed(operator, receiver):
    channel = operator.post(
        "/channels", json={"name": "ops", "url": receiver.url(), "secret": "hush"}
    ).get_json()
    response = operator.post(f"/channels/{channel['id']}/test")
    assert response.status_code == 200, response.get_json()
    result = response.get_json()
    assert result["delivered"] is True and result["error"] is None
    [received] = receiver.received
    assert received.signature_ok("hush") and not received.signature_ok("wrong")
    assert received.headers["X-Cloudeye-Event"] == "test"
    payload = received.json
    assert payload["event"] == "test" and payload["site"] is None
    assert payload["delivery_id"] == received.headers["X-Cloudeye-Delivery"]
    assert set(payload) == {"delivery_id", "event", "occurred_at", "site", "summary", "details", "link"}
    [logged] = operator.get("/notifications").get_json()["items"]
    assert (
        logged["id"] == result["notification_id"] and logged["status"] == "sent" and logged["event"] == "test"
    )


def test_a_failed_test_send_says_why(operator, receiver):
    receiver.statuses = [500]
    channel = operator.post("/channels", json={"name": "ops", "url": receiver.url()}).get_json()
    result = operator.post(f"/channels/{channel['id']}/test").get_json()
    assert result["delivered"] is False and "HTTP 500" in result["error"]
    assert "X-Cloudeye-Signature" not in receiver.received[0].headers  # no secret, no signature
    [logged] = operator.get("/notifications?status=failed").get_json()["items"]
    assert logged["last_error"] == result["error"]
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Notification)) == 1


def test_test_sends_are_limited_per_user(operator, other_operator, receiver, app, monkeypatch):
    monkeypatch.setitem(app.config, "CHANNEL_TEST_LIMIT", 2)
    channel = operator.post("/channels", json={"name": "ops", "url": receiver.url()}).get_json()
    assert [operator.post(f"/channels/{channel['id']}/test").status_code for _ in range(2)] == [200, 200]
    refused = operator.post(f"/channels/{channel['id']}/test")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert len(receiver.received) == 2  # the refused call sent nothing
    theirs = other_operator.post("/channels", json={"name": "o", "url": receiver.url()}).get_json()
    assert other_operator.post(f"/channels/{theirs['id']}/test").status_code == 200  # per user


def _private_name() -> str:
    """A host name (not an address, not `localhost`) that resolves to this machine: the save-time rule lets
    names through, the send-time one must catch them."""
    name = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, None)}
    except OSError:
        pytest.skip(f"this machine's name {name} does not resolve")
    assert addresses and not any(is_public_address(address) for address in addresses)
    return name


@pytest.mark.parametrize("kind", ["webhook", "apprise"])
def test_with_private_targets_off_a_name_resolving_privately_is_refused_at_send(
    operator, receiver, app, monkeypatch, kind
):
    name = _private_name()
    scheme = "http" if kind == "webhook" else "json"
    url = f"{scheme}://{name}:{receiver.port}/hook"
    channel = operator.post("/channels", json={"name": "lan", "url": url}).get_json()
    assert channel["kind"] == kind
    assert operator.post(f"/channels/{channel['id']}/test").get_json()["delivered"] is True
    monkeypatch.setitem(app.config, "ALLOW_PRIVATE_TARGETS", False)
    result = operator.post(f"/channels/{channel['id']}/test").get_json()
    assert result["delivered"] is False and "private targets are disabled" in result["error"]
    assert len(receiver.received) == 1  # only the send made while private targets were allowed


@pytest.mark.parametrize(
    "changes",
    [
        {"url": "foo://bar"},
        {"events": ["nope"]},
        {"remind_every_min": 10**6},
        {"site_ids": [999999]},
        {"secret": "x" * 300},
        {"name": "ok", "language": "klingon"},
    ],
)
def test_a_bad_patch_changes_nothing(operator, changes):
    created = operator.post(
        "/channels", json={"name": "ops", "url": "https://a.example.test/hook"}
    ).get_json()
    response = operator.patch(f"/channels/{created['id']}", json=changes)
    assert response.status_code == 422 and response.get_json()["errors"]
    assert operator.get(f"/channels/{created['id']}").get_json() == created
