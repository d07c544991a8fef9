"""Tamper checks by the worker against a local page the test changes; events read through the API."""

import sqlalchemy as sa

from services.extensions import db
from services.models import Site, TamperBaseline, TamperEvent
from services.tamper_detect import decompress

PAGE = (
    "<html><body>\n" + "\n".join(f"<p>Product {i}: a fine thing</p>" for i in range(40)) + "\n</body></html>"
)


def _tamper_site(caller, url, **fields):
    body = {"name": "shop", "url": url, "tamper_enabled": True, **fields}
    response = caller.post("/sites", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def _events(caller, site_id, status=None):
    query = f"/tamper/events?site_id={site_id}" + (f"&status={status}" if status else "")
    return caller.get(query).get_json()["items"]


def _check(caller, worker, site_id):
    assert caller.post(f"/sites/{site_id}/check").status_code == 202
    report = worker.run_once()
    assert report.stored == 1
    return report


def _baseline(site_id) -> str:
    db.session.expire_all()
    row = db.session.scalar(sa.select(TamperBaseline).where(TamperBaseline.site_id == site_id))
    return decompress(row.content)


def test_first_fetch_is_the_baseline_and_an_unchanged_page_raises_nothing(operator, worker, web):
    site_id = _tamper_site(operator, web.set("/", PAGE))
    assert worker.run_once().tamper == {"baseline": 1}
    assert _baseline(site_id) == PAGE
    assert _check(operator, worker, site_id).tamper == {"unchanged": 1}
    web.set("/", PAGE.replace("Product 7:", "Product 7 :"))  # whitespace only: normalised away
    assert _check(operator, worker, site_id).tamper == {"clean": 1}
    assert _events(operator, site_id) == []


def test_a_changed_page_opens_one_event_that_later_changes_update(operator, worker, web):
    site_id = _tamper_site(operator, web.set("/", PAGE), tamper_threshold=0.05)
    worker.run_once()
    web.set("/", PAGE.replace("a fine thing", "SOLD OUT", 10))
    assert _check(operator, worker, site_id).tamper == {"opened": 1}
    [event] = _events(operator, site_id)
    assert event["status"] == "open" and event["severity"] == "medium"
    assert event["change_ratio"] >= 0.05
    detail = operator.get(f"/tamper/events/{event['id']}").get_json()
    assert "+Product 0: SOLD OUT</p>" in detail["diff"] and "-Product 0: a fine thing</p>" in detail["diff"]

    web.set("/", PAGE.replace("a fine thing", "GONE", 30))
    assert _check(operator, worker, site_id).tamper == {"updated": 1}
    [again] = _events(operator, site_id)  # still one event: no storm
    assert again["id"] == event["id"] and again["change_ratio"] > event["change_ratio"]
    assert again["last_seen_at"] > event["last_seen_at"] and again["detected_at"] == event["detected_at"]
    assert "GONE" in operator.get(f"/tamper/events/{event['id']}").get_json()["diff"]


def test_a_small_change_under_the_threshold_is_no_event(operator, worker, web):
    site_id = _tamper_site(operator, web.set("/", PAGE), tamper_threshold=0.5)
    worker.run_once()
    web.set("/", PAGE.replace("a fine thing", "on sale", 3))
    assert _check(operator, worker, site_id).tamper == {"clean": 1}
    assert _events(operator, site_id) == []


def test_a_forbidden_word_is_a_high_event_even_for_a_tiny_change(operator, worker, web):
    site_id = _tamper_site(
        operator, web.set("/", PAGE), tamper_threshold=0.9, forbidden_keywords=["hacked by"]
    )
    worker.run_once()
    web.set("/", PAGE.replace("Product 3: a fine thing", "Product 3: Hacked By nobody"))
    _check(operator, worker, site_id)
    [event] = _events(operator, site_id)
    assert event["severity"] == "high" and event["forbidden_found"] == ["hacked by"]


def test_a_new_external_script_domain_is_a_high_event(operator, worker, web):
    page = PAGE.replace("</body>", '<script src="https://cdn.example.com/app.js"></script></body>')
    site_id = _tamper_site(operator, web.set("/", page), tamper_threshold=0.9)
    worker.run_once()
    injected = page.replace("</body>", '<script src="//evil.example.net/miner.js"></script></body>')
    web.set("/", injected)
    _check(operator, worker, site_id)
    [event] = _events(operator, site_id)
    assert event["severity"] == "high" and event["new_domains"] == ["evil.example.net"]


def test_ignore_rules_hide_dynamic_parts(operator, worker, web):
    site_id = _tamper_site(
        operator, web.set("/", PAGE + "<p>generated at 10:00:01</p>"), tamper_ignore=[r"generated at [\d:]+"]
    )
    worker.run_once()
    web.set("/", PAGE + "<p>generated at 23:59:59</p>")
    assert _check(operator, worker, site_id).tamper == {"clean": 1}


def test_accepting_an_event_makes_its_page_the_baseline(operator, worker, web):
    site_id = _tamper_site(operator, web.set("/", PAGE))
    worker.run_once()
    redesigned = PAGE.replace("a fine thing", "our new look")
    web.set("/", redesigned)
    _check(operator, worker, site_id)
    [event] = _events(operator, site_id)
    assert operator.patch(f"/tamper/events/{event['id']}", json={"status": "accepted"}).status_code == 200
    assert _baseline(site_id) == redesigned
    assert _check(operator, worker, site_id).tamper == {"unchanged": 1}
    assert _events(operator, site_id, "open") == []


def test_the_baseline_endpoint_takes_the_next_fetch_as_baseline(operator, worker, web):
    site_id = _tamper_site(operator, web.set("/", PAGE))
    worker.run_once()
    redesigned = PAGE.replace("a fine thing", "brand new")
    web.set("/", redesigned)
    assert operator.post(f"/sites/{site_id}/tamper/baseline").status_code == 202
    assert worker.run_once().tamper == {"baseline": 1}
    assert _baseline(site_id) == redesigned and _events(operator, site_id) == []
    assert db.session.get(Site, site_id).baseline_requested_at is None  # the request is done
    web.set("/", PAGE)  # the old page is now a change
    assert _check(operator, worker, site_id).tamper == {"opened": 1}


def test_a_false_positive_page_is_not_raised_again_but_a_new_change_is(operator, worker, web):
    site_id = _tamper_site(operator, web.set("/", PAGE))
    worker.run_once()
    changed = PAGE.replace("a fine thing", "seasonal banner")
    web.set("/", changed)
    _check(operator, worker, site_id)
    [event] = _events(operator, site_id)
    assert (
        operator.patch(f"/tamper/events/{event['id']}", json={"status": "false_positive"}).status_code == 200
    )
    assert _check(operator, worker, site_id).tamper == {"triaged": 1}
    assert _events(operator, site_id, "open") == []
    web.set("/", PAGE.replace("a fine thing", "defaced!"))
    assert _check(operator, worker, site_id).tamper == {"opened": 1}
    assert len(_events(operator, site_id, "open")) == 1


def test_error_pages_are_not_compared(operator, worker, web):
    site_id = _tamper_site(operator, web.set("/", PAGE))
    worker.run_once()
    web.set("/", "<h1>502 Bad Gateway</h1>", status=502)
    report = _check(operator, worker, site_id)
    assert report.tamper == {}
    assert _events(operator, site_id) == [] and _baseline(site_id) == PAGE


def test_only_the_baseline_and_events_keep_page_content(operator, worker, web):
    site_id = _tamper_site(operator, web.set("/", PAGE))
    worker.run_once()
    for round_ in range(3):
        web.set("/", PAGE.replace("a fine thing", f"change {round_}"))
        _check(operator, worker, site_id)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(TamperBaseline)) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(TamperEvent)) == 1
    stored = db.session.scalar(sa.select(TamperEvent.content))
    assert len(stored) < len(PAGE) and "change 2" in decompress(stored)  # compressed, the latest page
