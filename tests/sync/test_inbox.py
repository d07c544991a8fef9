"""The report inbox in-process: imported like an upload, moved to processed/ or failed/ with a reason,
partial files left alone, never imported twice; and retention."""

import hashlib
import io
import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from services.extensions import db
from services.imports import import_report
from services.models import ApiToken, Finding, FindingImport, UsabilityCheck, UsabilityRollup, User
from services.usability import delete_old_hourly_rollups
from sync import inbox as inbox_module
from sync import retention
from sync.inbox import Inbox
from tests.factories import create_site
from tests.services.test_parsers import HOSTILE_XML, SAMPLE_REPORTS, SAMPLES


def report(*rules: str) -> bytes:
    findings = [
        {
            "title": f"Issue {rule}",
            "severity": "high",
            "rule_id": rule,
            "location": f"https://shop.example.test/{rule}",
        }
        for rule in rules
    ]
    return json.dumps({"findings": findings}).encode()


def drop(directory, name: str, content: bytes, age_s: float = 60):
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(content)
    past = time.time() - age_s
    os.utime(path, (past, past))
    return path


@pytest.fixture
def inbox(tmp_path, ctx):
    return Inbox(str(tmp_path), settle_s=5)


@pytest.fixture
def site(operator):
    return create_site(operator.user)


def test_a_report_is_imported_like_an_upload_and_moved(inbox, site, operator, tmp_path):
    drop(inbox.root / str(site.id), "scan-1.json", report("a", "b"))
    assert inbox.run() == {"imported": 1}
    assert not (inbox.root / str(site.id) / "scan-1.json").exists()
    assert (tmp_path / "processed" / str(site.id) / "scan-1.json").read_bytes() == report("a", "b")
    [record] = operator.get(f"/bugs/imports?site_id={site.id}").get_json()["items"]
    assert (
        record["source"] == "inbox" and record["filename"] == "scan-1.json" and record["format"] == "generic"
    )
    assert record["created"] == 2 and record["user_id"] is None
    assert operator.get(f"/bugs?site_id={site.id}").get_json()["total"] == 2


def test_a_bad_report_goes_to_failed_with_its_reason_and_changes_nothing(inbox, site, tmp_path):
    drop(inbox.root / str(site.id), "broken.json", b'{"findings": [{"title": ')
    assert inbox.run() == {"failed": 1}
    failed = tmp_path / "failed" / str(site.id)
    assert (failed / "broken.json").exists()
    reason = (failed / "broken.json.reason.txt").read_text()
    assert "broken.json" in reason and "cannot be imported" in reason
    assert db.session.scalar(sa.select(sa.func.count()).select_from(FindingImport)) == 0


def test_misplaced_files_go_to_failed_with_a_reason(inbox, tmp_path):
    drop(inbox.root / "999999", "scan.json", report("a"))
    drop(inbox.root / "shop", "scan.json", report("a"))
    drop(inbox.root, "loose.json", report("a"))
    assert inbox.run() == {"failed": 3}
    assert "site 999999 does not exist" in (tmp_path / "failed/999999/scan.json.reason.txt").read_text()
    assert "inbox/<site id>/" in (tmp_path / "failed/shop/scan.json.reason.txt").read_text()
    assert (tmp_path / "failed/loose.json").exists()


def test_files_being_written_are_left_alone(inbox, site):
    directory = inbox.root / str(site.id)
    drop(directory, "upload.json.part", report("a"))
    drop(directory, ".hidden.json", report("a"))
    drop(directory, "fresh.json", report("a"), age_s=0)  # modified just now: maybe still being copied
    assert inbox.pending() == []
    assert inbox.run() == {}
    os.replace(directory / "upload.json.part", directory / "upload.json")  # the writer's final rename
    past = time.time() - 60
    os.utime(directory / "upload.json", (past, past))
    assert [p.name for p in inbox.pending()] == ["upload.json"]


def test_every_scanner_format_dropped_in_the_inbox_is_imported(inbox, site, operator, tmp_path):
    directory = inbox.root / str(site.id)
    names = [
        "zap.xml",
        "burp.xml",
        "nikto.xml",
        "xray.json",
        "wapiti.xml",
        "gitleaks.sarif",
        "nuclei-v2.jsonl",
    ]
    for age, name in enumerate(reversed(names), 60):  # oldest first: imported in this order
        drop(directory, name, (SAMPLES / name).read_bytes(), age_s=age)
    assert inbox.run() == {"imported": len(names)}
    records = operator.get(f"/bugs/imports?site_id={site.id}&per_page=20").get_json()["items"][::-1]
    assert [(r["filename"], r["format"], r["created"]) for r in records] == [
        (name, SAMPLE_REPORTS[name][0], SAMPLE_REPORTS[name][2]) for name in names
    ]
    assert sorted(p.name for p in (tmp_path / "processed" / str(site.id)).iterdir()) == sorted(names)


def test_a_format_named_in_the_file_name_is_the_reports_format(inbox, site, tmp_path):
    directory = inbox.root / str(site.id)
    drop(directory, "nightly.nikto.json", b"", age_s=90)  # an empty scan: named, so it is one
    drop(directory, "scan.json", b"", age_s=80)  # empty, and nothing says of what
    drop(directory, "report.zap.json", (SAMPLES / "nuclei.jsonl").read_bytes(), age_s=70)
    assert inbox.run() == {"imported": 1, "failed": 2}
    record = db.session.scalars(sa.select(FindingImport)).one()
    assert (record.filename, record.format, record.scanner, record.findings_in_report) == (
        "nightly.nikto.json",
        "nikto",
        "nikto",
        0,
    )
    failed = tmp_path / "failed" / str(site.id)
    assert "nothing tells its format" in (failed / "scan.json.reason.txt").read_text()
    assert (
        "sent as zap but its content is a nuclei report"
        in (failed / "report.zap.json.reason.txt").read_text()
    )


def test_hostile_xml_in_the_inbox_goes_to_failed_with_its_reason(inbox, site, tmp_path):
    content, message = HOSTILE_XML["billion laughs"]
    drop(inbox.root / str(site.id), "evil.xml", content.encode())
    assert inbox.run() == {"failed": 1}
    assert message in (tmp_path / "failed" / str(site.id) / "evil.xml.reason.txt").read_text()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(FindingImport)) == 0


def test_a_file_committed_before_a_crash_is_only_moved(inbox, site, tmp_path):
    content = report("a", "b")
    path = drop(inbox.root / str(site.id), "scan.json", content)
    # The worker imported the file and was killed before it could move it.
    import_report(site, io.BytesIO(content), source="inbox", filename="scan.json")
    assert inbox.run() == {"duplicate": 1}
    assert not path.exists() and (tmp_path / "processed" / str(site.id) / "scan.json").exists()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(FindingImport)) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Finding)) == 2


def test_the_same_report_dropped_again_later_is_imported_again(inbox, site, tmp_path):
    directory = inbox.root / str(site.id)
    drop(directory, "monday.json", report("a"))
    inbox.run()
    drop(directory, "tuesday.json", report("a"))  # same bytes, new drop: a new scan that found the same
    assert inbox.run() == {"imported": 1}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(FindingImport)) == 2
    drop(directory, "monday.json", report("a"))  # same name again: lands beside the first one
    assert inbox.run() == {"duplicate": 1}
    assert sorted(p.name for p in (tmp_path / "processed" / str(site.id)).iterdir())[0] == "monday.json"
    assert len(list((tmp_path / "processed" / str(site.id)).iterdir())) == 3


def test_a_site_directory_held_by_another_worker_is_skipped(inbox, site, tmp_path):
    path = drop(inbox.root / str(site.id), "scan.json", report("a"))
    other = Inbox(str(tmp_path), settle_s=5)
    with other._lock(path) as acquired:
        assert acquired
        assert inbox.process(path) == "busy"
    assert inbox.process(path) == "imported"


def test_unexpected_errors_are_retried_then_the_file_is_set_aside(inbox, site, tmp_path, monkeypatch):
    path = drop(inbox.root / str(site.id), "scan.json", report("a"))
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("database went away")

    monkeypatch.setattr("sync.inbox.import_report", failing)
    assert inbox.run() == {"retry": 1} and path.exists()
    assert inbox.run() == {"retry": 1} and path.exists()
    assert inbox.run() == {"failed": 1} and len(calls) == 3
    assert "database went away" in (tmp_path / "failed" / str(site.id) / "scan.json.reason.txt").read_text()


def test_an_unreadable_file_goes_to_failed_and_does_not_hold_up_the_others(
    inbox, site, tmp_path, monkeypatch
):
    directory = inbox.root / str(site.id)
    locked = drop(directory, "locked.json", report("a"), age_s=120)  # the oldest: first in the queue
    drop(directory, "scan.json", report("b"))
    real_sha256 = inbox_module._sha256

    def sha256(path):
        if path.name == "locked.json":
            raise PermissionError(13, "Permission denied", str(path))
        return real_sha256(path)

    monkeypatch.setattr(inbox_module, "_sha256", sha256)
    assert inbox.run() == {"failed": 1, "imported": 1}
    assert not locked.exists()
    reason = (tmp_path / "failed" / str(site.id) / "locked.json.reason.txt").read_text()
    assert "cannot be read" in reason and "Permission denied" in reason
    assert db.session.scalar(sa.select(sa.func.count()).select_from(FindingImport)) == 1


def test_an_unreadable_site_directory_does_not_hold_up_the_others(inbox, site, operator, monkeypatch):
    other = create_site(operator.user)
    drop(inbox.root / str(site.id), "scan.json", report("a"))
    drop(inbox.root / str(other.id), "scan.json", report("a"))
    real_iterdir = Path.iterdir

    def iterdir(self):
        if self == inbox.root / str(site.id):
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    assert inbox.run() == {"imported": 1}
    assert (inbox.root / str(site.id) / "scan.json").exists()
    assert not (inbox.root / str(other.id) / "scan.json").exists()


def test_a_file_that_cannot_be_moved_stays_and_the_next_ones_go_on(inbox, site, tmp_path, monkeypatch):
    directory = inbox.root / str(site.id)
    stuck = drop(directory, "first.json", report("a"), age_s=120)
    drop(directory, "second.json", report("b"))
    real_move = inbox._move

    def move(path, target_dir):
        if path.name == "first.json":
            raise OSError(28, "No space left on device")
        return real_move(path, target_dir)

    monkeypatch.setattr(inbox, "_move", move)
    assert inbox.run() == {"error": 1, "imported": 1}
    assert stuck.exists()
    monkeypatch.undo()
    assert inbox.run() == {"duplicate": 1}  # imported before the move failed: only moved now
    assert not stuck.exists()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(FindingImport)) == 2
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Finding)) == 2


def test_retention_deletes_old_raw_checks_and_keeps_rollups(ctx, site):
    now = datetime.now(UTC)
    for age_days in (100, 95, 1, 0):
        db.session.add(
            UsabilityCheck(
                site_id=site.id,
                due_at=now - timedelta(days=age_days),
                checked_at=now - timedelta(days=age_days),
                status="up",
            )
        )
    db.session.add(
        UsabilityRollup(
            site_id=site.id, period="day", bucket_start=now - timedelta(days=100), checks_total=1, checks_up=1
        )
    )
    db.session.commit()
    assert retention.run(retention_days=90, batch_size=1) == 2
    ages = sorted((now - c).days for c in db.session.scalars(sa.select(UsabilityCheck.checked_at)))
    assert ages == [0, 1]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(UsabilityRollup)) == 1


def test_retention_prunes_old_hourly_rollups_but_keeps_the_30_days_a_summary_reads(ctx, site):
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    for period, age_days in (("hour", 200), ("hour", 91), ("hour", 29), ("hour", 0), ("day", 400)):
        db.session.add(
            UsabilityRollup(
                site_id=site.id, period=period, bucket_start=now - timedelta(days=age_days), checks_total=1
            )
        )
    db.session.commit()
    retention.run(retention_days=90, hourly_rollup_days=90)
    kept = db.session.execute(sa.select(UsabilityRollup.period, UsabilityRollup.bucket_start)).all()
    assert sorted((period, (now - start).days) for period, start in kept) == [
        ("day", 400),
        ("hour", 0),
        ("hour", 29),
    ]
    # a setting below the 30 days the summary reads is raised to 31
    retention.run(retention_days=90, hourly_rollup_days=1)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(UsabilityRollup)) == 3


def test_hourly_rollups_go_for_every_site_whatever_the_slice(ctx, site, operator):
    others = [create_site(operator.user) for _ in range(2)]
    old = datetime.now(UTC) - timedelta(days=200)
    for site_id in (site.id, *(other.id for other in others)):
        db.session.add(UsabilityRollup(site_id=site_id, period="hour", bucket_start=old, checks_total=1))
    db.session.commit()
    assert delete_old_hourly_rollups(90, sites_per_statement=2) == 3
    assert db.session.scalar(sa.select(sa.func.count()).select_from(UsabilityRollup)) == 0


def test_retention_deletes_dead_tokens_and_keeps_live_ones(ctx, site):
    user = db.session.get(User, site.owner_id)
    now = datetime.now(UTC)
    long_ago = now - timedelta(days=3)

    def token(name, kind, expires_at=None, revoked_at=None):
        db.session.add(
            ApiToken(
                user_id=user.id,
                kind=kind,
                name=name,
                token_hash=hashlib.sha256(name.encode()).hexdigest(),
                prefix=name[:12],
                expires_at=expires_at,
                revoked_at=revoked_at,
            )
        )

    before = set(db.session.scalars(sa.select(ApiToken.name)))  # the fixture's own live token
    token("login live", "login", expires_at=now + timedelta(hours=1))
    token("login expired", "login", expires_at=long_ago)
    token("login revoked", "login", expires_at=now + timedelta(hours=1), revoked_at=long_ago)
    token("login just expired", "login", expires_at=now - timedelta(minutes=5))
    token("api live", "api")
    token("api expired", "api", expires_at=long_ago)  # still listed for its owner
    token("api revoked", "api", revoked_at=long_ago)
    db.session.commit()
    retention.run(retention_days=90)
    names = sorted(set(db.session.scalars(sa.select(ApiToken.name))) - before)
    assert names == ["api expired", "api live", "login just expired", "login live"]
