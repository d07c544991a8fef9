"""The delivery log and findings.new from an uploaded report: one message per import, the counts at or
above each channel's min_severity."""

import io
import json

from services.alerts.outbox import Event, enqueue
from services.extensions import db
from services.models import Channel, Notification
from tests.factories import create_site, share


def channel(owner, **fields) -> Channel:
    row = Channel(
        owner_id=owner.id,
        name="c",
        url="https://hooks.example.test/x",
        kind="webhook",
        all_sites=True,
        events=["site.down", "findings.new"],
        **fields,
    )
    db.session.add(row)
    db.session.commit()
    return row


def report(*severities) -> bytes:
    findings = [
        {"title": f"t{i}", "severity": s, "rule_id": f"r{i}", "location": f"https://a.test/{i}"}
        for i, s in enumerate(severities)
    ]
    return json.dumps({"findings": findings}).encode()


def upload(caller, site_id, content: bytes):
    return caller.post(
        "/bugs/imports",
        data={"site_id": str(site_id), "file": (io.BytesIO(content), "r.json")},
        content_type="multipart/form-data",
    )


def test_one_findings_message_per_import_by_severity(operator):
    site = create_site(operator.user)
    high = channel(operator.user)  # default min_severity high
    low = channel(operator.user, min_severity="low")
    critical = channel(operator.user, min_severity="critical")
    assert upload(operator, site.id, report("critical", "high", "high", "low", "info")).status_code == 201
    log = {
        row["channel_id"]: row
        for row in operator.get("/notifications?event=findings.new").get_json()["items"]
    }
    assert set(log) == {high.id, low.id, critical.id}
    details = {n.channel_id: n.payload["details"] for n in db.session.query(Notification).all()}
    assert details[high.id]["counts"] == {"critical": 1, "high": 2} and details[high.id]["total"] == 3
    assert details[low.id]["counts"] == {"critical": 1, "high": 2, "low": 1}
    assert details[critical.id]["counts"] == {"critical": 1}
    # The same report again: nothing new, no message. Only lows and infos: nothing for `high`.
    assert upload(operator, site.id, report("critical", "high", "high", "low", "info")).status_code == 201
    assert upload(operator, site.id, report("low", "info")).status_code == 201
    assert operator.get("/notifications?event=findings.new").get_json()["total"] == 3


def test_the_log_shows_only_the_callers_channels(operator, other_operator, admin):
    site = create_site(operator.user)
    share(site, other_operator.user)
    mine, theirs = channel(operator.user), channel(other_operator.user)
    enqueue([Event("site.down", site, site.created_at, {"cause": "x"})])
    db.session.commit()
    [row] = operator.get("/notifications").get_json()["items"]
    assert row["channel_id"] == mine.id and row["status"] == "pending" and row["attempts"] == 0
    assert set(row) >= {
        "id",
        "channel_id",
        "site_id",
        "event",
        "status",
        "attempts",
        "last_error",
        "created_at",
        "sent_at",
    }
    assert operator.get(f"/notifications?channel_id={theirs.id}").status_code == 404
    assert operator.get(f"/notifications?channel_id={mine.id}&status=sent").get_json()["total"] == 0
    assert operator.get(f"/notifications?site_id={site.id}").get_json()["total"] == 1
    assert operator.get("/notifications?site_id=999999").status_code == 404
    assert operator.get("/notifications?status=lost").status_code == 422
    assert admin.get("/notifications").get_json()["total"] == 2
