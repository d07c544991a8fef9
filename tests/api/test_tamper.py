import re

import sqlalchemy as sa

from services.extensions import db
from services.models import TamperBaseline, TamperEvent
from services.tamper_detect import compress, decompress, sha256
from tests.api.helpers import statements
from tests.factories import create_site, share

DEFACED = (
    '<html><body><h1>hacked by nobody</h1><script src="https://evil.example.net/x.js"></script></body></html>'
)


def _event(site, status="open", content=DEFACED) -> TamperEvent:
    event = TamperEvent(
        site_id=site.id,
        status=status,
        severity="high",
        change_ratio=0.8,
        forbidden_found=["hacked"],
        new_domains=["evil.example.net"],
        diff="--- baseline\n+++ current\n-<h1>Shop</h1>\n+<h1>hacked by nobody</h1>",
        content=compress(content) if content is not None else None,
        content_sha256=sha256(content) if content is not None else None,
    )
    db.session.add(event)
    db.session.commit()
    return event


def test_events_are_listed_and_shown_with_their_diff(operator):
    site = create_site(operator.user, tamper_enabled=True)
    event = _event(site)
    _event(create_site(operator.user), status="resolved")
    listed = operator.get(f"/tamper/events?site_id={site.id}").get_json()
    assert listed["total"] == 1 and "diff" not in listed["items"][0]
    assert listed["items"][0]["forbidden_found"] == ["hacked"]
    assert operator.get("/tamper/events?status=resolved").get_json()["total"] == 1
    detail = operator.get(f"/tamper/events/{event.id}").get_json()
    assert detail["diff"].startswith("--- baseline") and detail["new_domains"] == ["evil.example.net"]
    assert operator.get("/tamper/events?status=weird").status_code == 422


def test_accepting_an_event_makes_its_page_the_baseline(operator):
    site = create_site(operator.user, tamper_enabled=True, url="https://shop.example.test/")
    db.session.add(TamperBaseline(site_id=site.id, content=compress("<h1>Shop</h1>"), content_sha256="x"))
    db.session.commit()
    event = _event(site)
    response = operator.patch(f"/tamper/events/{event.id}", json={"status": "accepted", "note": "redesign"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "accepted" and body["note"] == "redesign"
    assert body["handled_by_id"] == operator.user.id and body["handled_at"]
    db.session.expire_all()
    baseline = db.session.scalar(sa.select(TamperBaseline).where(TamperBaseline.site_id == site.id))
    assert decompress(baseline.content) == DEFACED
    assert baseline.script_domains == ["evil.example.net"]


def answer(response, status: int = 200) -> dict:
    """The JSON body of a response that must have `status`."""
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def stored(event_id: int) -> TamperEvent:
    db.session.expire_all()
    return db.session.get(TamperEvent, event_id)


def test_transitions(operator):
    site = create_site(operator.user, tamper_enabled=True)
    event = _event(site)
    path = f"/tamper/events/{event.id}"
    assert answer(operator.patch(path, json={"status": "false_positive"}))["status"] == "false_positive"
    assert operator.patch(path, json={"status": "accepted"}).status_code == 422
    assert stored(event.id).status == "false_positive"
    assert answer(operator.patch(path, json={"status": "open"}))["status"] == "open"
    assert answer(operator.patch(path, json={"status": "resolved"}))["status"] == "resolved"
    assert stored(event.id).status == "resolved"
    second = _event(site)
    # only one open event per site: reopening the first would make two
    assert operator.patch(path, json={"status": "open"}).status_code == 422
    assert stored(event.id).status == "resolved"
    body = answer(operator.patch(f"/tamper/events/{second.id}", json={"note": "looking"}))
    assert body["note"] == "looking" and body["status"] == "open" and stored(second.id).note == "looking"
    assert operator.patch(f"/tamper/events/{second.id}", json={"status": "gone"}).status_code == 422
    assert operator.patch(f"/tamper/events/{second.id}", json={"note": 5}).status_code == 422


def test_an_event_without_content_cannot_be_accepted(operator):
    event = _event(create_site(operator.user, tamper_enabled=True), content=None)
    response = operator.patch(f"/tamper/events/{event.id}", json={"status": "accepted"})
    assert response.status_code == 422 and "content" in response.get_json()["message"]


def test_tamper_visibility_and_roles(admin, operator, other_operator, viewer):
    site = create_site(operator.user, tamper_enabled=True)
    event = _event(site)
    assert other_operator.get(f"/tamper/events/{event.id}").status_code == 404
    assert other_operator.patch(f"/tamper/events/{event.id}", json={"status": "resolved"}).status_code == 404
    assert other_operator.get("/tamper/events").get_json()["total"] == 0
    assert other_operator.get(f"/tamper/events?site_id={site.id}").status_code == 404
    share(site, viewer.user)
    assert answer(viewer.get(f"/tamper/events/{event.id}"))["id"] == event.id
    assert viewer.patch(f"/tamper/events/{event.id}", json={"status": "resolved"}).status_code == 403
    share(site, other_operator.user, "write")
    assert stored(event.id).status == "open" and stored(event.id).note is None  # nothing refused changed it
    assert answer(other_operator.patch(f"/tamper/events/{event.id}", json={"note": "seen"}))["note"] == "seen"
    body = answer(admin.patch(f"/tamper/events/{event.id}", json={"status": "resolved"}))
    assert body["status"] == "resolved" and body["handled_by_id"] == admin.user.id
    assert stored(event.id).status == "resolved" and stored(event.id).note == "seen"
    assert admin.get("/tamper/events/999999").status_code == 404


def test_lists_do_not_read_the_stored_pages_or_diffs(operator):
    """Each event carries a compressed page and a diff of up to megabytes: a list of 100 must not
    read them. The detail answer still has the diff."""
    site = create_site(operator.user, tamper_enabled=True)
    event = _event(site)
    with statements() as sent:
        listed = operator.get("/tamper/events").get_json()
    assert listed["total"] == 1
    selects = [s.lower() for s in sent if "from tamper_events" in s.lower()]
    assert selects and not any(re.search(r"tamper_events\.(content|diff)\b", s) for s in selects)
    assert operator.get(f"/tamper/events/{event.id}").get_json()["diff"].startswith("--- baseline")
