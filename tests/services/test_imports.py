"""The import engine on the real database: dedup and re-import rules, atomicity, batching, limits."""

import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from services import imports
from services.cache import cache
from services.errors import Conflict, Invalid
from services.extensions import db
from services.imports import ReportTooLarge, import_report, reconcile_findings
from services.models import Finding, FindingImport
from services.parsers.base import ParsedFinding
from tests.factories import create_site, create_user
from tests.services.test_parsers import HOSTILE_XML, SAMPLE_REPORTS, Endless

SAMPLES = Path(__file__).resolve().parents[1] / "samples"  # copies of ../shared/samples
NUCLEI = (SAMPLES / "nuclei.jsonl").read_bytes()
ZAP = (SAMPLES / "zap.json").read_bytes()


def nuclei_report(count: int, start: int = 0, host: str = "big.example.test") -> bytes:
    """`count` distinct nuclei results as JSON lines (five templates over count/5 paths)."""
    templates = ("exposed-panel", "git-config", "xss-reflected", "open-redirect", "tech-detect")
    severities = ("high", "medium", "high", "low", "info")
    lines = []
    for number in range(start, start + count):
        kind = number % len(templates)
        lines.append(
            json.dumps(
                {
                    "template-id": templates[kind],
                    "info": {
                        "name": templates[kind].replace("-", " ").title(),
                        "severity": severities[kind],
                        "description": "Generated finding for tests.",
                        "reference": [f"https://example.org/{templates[kind]}"],
                        "classification": {"cwe-id": ["cwe-200"]},
                    },
                    "type": "http",
                    "host": f"https://{host}",
                    "matched-at": f"https://{host}/app/{number // len(templates)}/page",
                    "timestamp": "2026-11-20T10:00:00Z",
                }
            )
        )
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def owner(ctx):
    return create_user("operator")


@pytest.fixture
def site(owner):
    return create_site(owner)


def run(site, data: bytes, **kwargs):
    return import_report(site, io.BytesIO(data), **kwargs)


def findings(site_id, **where):
    query = sa.select(Finding).where(Finding.site_id == site_id).order_by(Finding.id)
    for name, value in where.items():
        query = query.where(getattr(Finding, name) == value)
    db.session.expire_all()
    return db.session.scalars(query).all()


def counts(record):
    return (record.created, record.reopened, record.unchanged, record.closed)


def set_status(site_id, rule_id, status):
    finding = findings(site_id, rule_id=rule_id)[0]
    finding.status = status
    if status == "fixed":
        finding.fixed_at = datetime.now(UTC)
    db.session.commit()
    return finding.id


def snapshot(site_id):
    """Everything an import could change, per finding."""
    return {
        f.id: (f.status, f.last_seen_at, f.updated_at, f.fixed_at, f.last_import_id, f.title)
        for f in findings(site_id)
    }


# -- the samples -------------------------------------------------------------------------------------


def test_nuclei_sample_creates_six_and_again_creates_nothing(site, owner):
    first = run(site, NUCLEI, user_id=owner.id, filename="dir/nuclei.jsonl")
    assert counts(first) == (6, 0, 0, 0) and first.findings_in_report == 6
    assert (first.format, first.scanner, first.source, first.filename) == (
        "nuclei",
        "nuclei",
        "api",
        "nuclei.jsonl",
    )
    assert first.file_sha256 == hashlib.sha256(NUCLEI).hexdigest() and first.user_id == owner.id
    stored = findings(site.id)
    assert len(stored) == 6 and {f.status for f in stored} == {"open"}
    assert all(f.last_import_id == first.id and f.first_seen_at == f.last_seen_at for f in stored)

    second = run(site, NUCLEI)
    assert counts(second) == (0, 0, 6, 0) and second.findings_in_report == 6
    again = findings(site.id)
    assert [f.id for f in again] == [f.id for f in stored]
    assert all(f.last_seen_at > f.first_seen_at and f.last_import_id == second.id for f in again)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(FindingImport)) == 2


def test_zap_sample_creates_four_and_again_creates_nothing(site):
    assert counts(run(site, ZAP)) == (4, 0, 0, 0)
    assert counts(run(site, ZAP, format="zap")) == (0, 0, 4, 0)
    severities = sorted(f.severity for f in findings(site.id))
    assert severities == ["high", "low", "medium", "medium"]
    assert all(f.scanner == "zap" for f in findings(site.id))


def test_close_missing_with_a_smaller_report_fixes_the_rest(site):
    run(site, NUCLEI)
    smaller = b"\n".join(NUCLEI.splitlines()[:2])  # git-config and one header matcher
    record = run(site, smaller, close_missing=True)
    assert counts(record) == (0, 0, 2, 4) and record.close_missing is True
    fixed = findings(site.id, status="fixed")
    assert len(fixed) == 4 and all(f.fixed_at is not None for f in fixed)
    assert {f.rule_id for f in findings(site.id, status="open")} == {
        "git-config",
        "http-missing-security-headers:strict-transport-security",
    }
    # The full report again reopens what was fixed.
    assert counts(run(site, NUCLEI)) == (0, 4, 2, 0)
    assert all(f.status == "open" and f.fixed_at is None for f in findings(site.id))


def test_without_close_missing_nothing_is_closed(site):
    run(site, NUCLEI)
    assert counts(run(site, NUCLEI.splitlines()[0])) == (0, 0, 1, 0)
    assert len(findings(site.id, status="open")) == 6


def test_triaged_findings_are_never_touched(site):
    run(site, NUCLEI)
    false_positive = set_status(site.id, "git-config", "false_positive")
    accepted = set_status(site.id, "CVE-2021-41773", "accepted_risk")
    fixed = set_status(site.id, "http-missing-security-headers:content-security-policy", "fixed")
    confirmed = set_status(site.id, "http-missing-security-headers:strict-transport-security", "confirmed")
    before = snapshot(site.id)

    record = run(site, NUCLEI, close_missing=True)
    assert counts(record) == (0, 1, 5, 0)  # the triaged two count as unchanged, and are
    after = snapshot(site.id)
    assert after[false_positive] == before[false_positive] and after[accepted] == before[accepted]
    assert after[fixed][0] == "open" and after[fixed][3] is None
    assert after[confirmed][0] == "confirmed" and after[confirmed][1] > before[confirmed][1]

    # A report without them, closing the missing: triaged stay triaged, confirmed/open become fixed.
    before = snapshot(site.id)
    record = run(site, NUCLEI.splitlines()[4], close_missing=True)  # phpinfo.php only
    assert counts(record) == (0, 0, 1, 3)
    after = snapshot(site.id)
    assert after[false_positive] == before[false_positive] and after[accepted] == before[accepted]
    assert after[confirmed][0] == "fixed" and after[fixed][0] == "fixed"


def test_close_missing_stays_within_its_site_and_scanner(site, owner):
    other = create_site(owner)
    run(site, NUCLEI)
    run(site, ZAP)
    run(other, NUCLEI)
    record = run(site, b"", format="nuclei", close_missing=True)  # a clean nuclei scan
    assert counts(record) == (0, 0, 0, 6) and record.findings_in_report == 0
    assert len(findings(site.id, scanner="zap", status="open")) == 4
    assert len(findings(other.id, status="open")) == 6


def test_sarif_close_missing_is_per_tool_of_the_report(site):
    def log(*runs):
        return json.dumps(
            {
                "version": "2.1.0",
                "runs": [
                    {
                        "tool": {"driver": {"name": tool}},
                        "results": [{"ruleId": rule, "message": {"text": rule}} for rule in rules],
                    }
                    for tool, rules in runs
                ],
            }
        ).encode()

    record = run(site, log(("Semgrep", ["a", "b"]), ("Trivy", ["c"])))
    assert counts(record) == (3, 0, 0, 0) and record.scanner == "semgrep,trivy"
    record = run(site, log(("Semgrep", ["a"])), close_missing=True)
    assert counts(record) == (0, 0, 1, 1)
    assert [f.rule_id for f in findings(site.id, status="fixed")] == ["b"]
    assert findings(site.id, rule_id="c")[0].status == "open"  # trivy was not in that report


# -- atomicity and limits ----------------------------------------------------------------------------


def test_a_report_malformed_after_several_batches_changes_nothing(site):
    run(site, NUCLEI)
    fixed = set_status(site.id, "git-config", "fixed")
    before = snapshot(site.id)
    imports_before = db.session.scalar(sa.select(sa.func.count()).select_from(FindingImport))
    bad = NUCLEI + nuclei_report(2500) + b'{"template-id": "x", "info": \n'
    with pytest.raises(Invalid) as caught:
        run(site, bad)
    assert "line 2508 is not valid JSON" in caught.value.message
    assert caught.value.errors == {
        "file": [caught.value.message.removeprefix("the report cannot be imported: ")]
    }
    assert snapshot(site.id) == before and before[fixed][0] == "fixed"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(FindingImport)) == imports_before


def test_a_wrong_format_changes_nothing(site):
    with pytest.raises(Invalid, match="sent as zap but its content is a nuclei report"):
        run(site, NUCLEI, format="zap")
    assert findings(site.id) == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(FindingImport)) == 0


def test_too_large_report_is_refused_and_changes_nothing(app, site):
    saved = app.config["MAX_REPORT_BYTES"]
    app.config["MAX_REPORT_BYTES"] = len(NUCLEI) - 1
    try:
        with pytest.raises(ReportTooLarge):
            run(site, NUCLEI)
    finally:
        app.config["MAX_REPORT_BYTES"] = saved
    assert findings(site.id) == []
    app.config["MAX_REPORT_BYTES"] = len(NUCLEI)
    try:
        assert counts(run(site, NUCLEI)) == (6, 0, 0, 0)
    finally:
        app.config["MAX_REPORT_BYTES"] = saved


def test_many_findings_in_several_batches(site, monkeypatch):
    monkeypatch.setattr(imports, "BATCH_SIZE", 300)
    lines = nuclei_report(1000).splitlines(keepends=True)
    first = run(site, b"".join(lines + lines[:500]))  # half of it twice
    assert counts(first) == (1000, 0, 0, 0) and first.findings_in_report == 1000
    # Half of them fixed, the report again with 200 new ones, closing the missing.
    ids = [f.id for f in findings(site.id)]
    db.session.execute(sa.update(Finding).where(Finding.id.in_(ids[:500])).values(status="fixed"))
    db.session.commit()
    record = run(site, nuclei_report(900, start=100), close_missing=True)
    # 0..99 missing: fixed ones stay fixed, so nothing to close there; 100..499 reopened; 500..999 seen.
    assert counts(record) == (0, 400, 500, 0)
    record = run(site, nuclei_report(200, start=1000), close_missing=True)
    assert counts(record) == (200, 0, 0, 900)
    assert len(findings(site.id, status="open")) == 200


def test_text_is_cut_to_the_columns_and_cleaned(site):
    line = {
        "template-id": "t" * 300,
        "info": {"name": "N\x00" + "n" * 600, "severity": "high", "description": "bad \ud800 surrogate"},
        "matched-at": "https://" + "h" * 300 + ".example.test/" + "p" * 3000,
        "extracted-results": ["e" * 20_000],
    }
    record = run(site, json.dumps(line).encode())
    assert record.created == 1
    (finding,) = findings(site.id)
    assert len(finding.rule_id) == 255 and len(finding.title) == 500 and "\x00" not in finding.title
    assert len(finding.host) == 255 and len(finding.path) == 1024 and len(finding.location) == 2048
    assert finding.description == "bad ? surrogate" and len(finding.evidence) == 16_000
    assert counts(run(site, json.dumps(line).encode())) == (0, 0, 1, 0)  # same key from the full text


def test_import_invalidates_the_site_cache(site):
    key = cache.key("summary", site.id)
    cache.set_json(key, {"cached": True}, 60)
    assert cache.get_json(key) == {"cached": True}
    run(site, NUCLEI)
    assert cache.get_json(key) is None


def test_a_running_import_on_the_same_site_is_waited_for(app, site, monkeypatch):
    if db.engine.dialect.name != "mysql":
        pytest.skip("named locks are MySQL's")
    monkeypatch.setattr(imports, "LOCK_TIMEOUT_S", 0)
    # Another import holds the site (on its own connection).
    with imports._import_lock(site.id), pytest.raises(Conflict):
        run(site, NUCLEI)
    assert counts(run(site, NUCLEI)) == (6, 0, 0, 0)  # released afterwards


# -- reconcile_findings (the worker's entry point) --------------------------------------------------------


def finding(rule, path="/", scanner="cloudeye", severity="medium"):
    return ParsedFinding(
        scanner=scanner, rule_id=rule, title=rule, severity=severity, host="s.example.test", path=path
    )


def test_reconcile_findings_applies_the_rules_and_leaves_the_commit_to_the_caller(site):
    result = reconcile_findings(
        site.id, "cloudeye", [finding("tls-expiry"), finding("hsts")], close_missing=False
    )
    assert result == {"created": 2, "reopened": 0, "unchanged": 0, "closed": 0}
    db.session.rollback()
    assert findings(site.id) == []

    reconcile_findings(site.id, "cloudeye", [finding("tls-expiry"), finding("hsts")], close_missing=False)
    db.session.commit()
    result = reconcile_findings(site.id, "cloudeye", [finding("hsts"), finding("hsts")], close_missing=True)
    db.session.commit()
    assert result == {"created": 0, "reopened": 0, "unchanged": 1, "closed": 1}
    assert findings(site.id, rule_id="tls-expiry")[0].status == "fixed"
    assert findings(site.id, rule_id="tls-expiry")[0].last_import_id is None

    result = reconcile_findings(site.id, "cloudeye", iter([]), close_missing=True)
    db.session.commit()
    assert result["closed"] == 1 and findings(site.id, status="open") == []


def test_reconcile_findings_refuses_another_scanners_finding(site):
    with pytest.raises(ValueError, match="zap finding"):
        reconcile_findings(site.id, "cloudeye", [finding("a", scanner="zap")], close_missing=False)
    db.session.rollback()


def test_reconcile_findings_unknown_severity_is_normalised(site):
    reconcile_findings(site.id, "cloudeye", [finding("a", severity="Warning")], close_missing=False)
    db.session.commit()
    (stored,) = findings(site.id)
    assert (stored.severity, stored.severity_rank) == ("medium", 2)
    assert stored.first_seen_at > datetime.now(UTC) - timedelta(minutes=1)


# -- every scanner format ----------------------------------------------------------------------------


REPORTS = sorted(name for name, (_, _, distinct) in SAMPLE_REPORTS.items() if distinct)
# What the scanner writes when it finds nothing (ZAP and Nikto write structure; others a zero-byte file).
EMPTY = {
    "zap": (SAMPLES / "zap-empty.xml").read_bytes(),
    "nikto": (SAMPLES / "nikto-empty.xml").read_bytes(),
    "sarif": json.dumps(
        {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "gitleaks"}}, "results": []}]}
    ).encode(),
}


@pytest.mark.parametrize("name", REPORTS)
def test_every_format_imports_again_without_creating_and_an_empty_scan_closes_what_is_open(site, name):
    format, scanners, distinct = SAMPLE_REPORTS[name]
    data = (SAMPLES / name).read_bytes()
    first = run(site, data, filename=name)
    assert counts(first) == (distinct, 0, 0, 0)
    assert (first.format, first.scanner, first.findings_in_report) == (format, ",".join(scanners), distinct)
    stored = findings(site.id)
    assert len(stored) == distinct and {f.scanner for f in stored} == set(scanners)
    still_open = [f.id for f in stored if f.status == "open"]

    again = run(site, data)
    assert counts(again) == (0, 0, distinct, 0)
    assert [f.id for f in findings(site.id)] == [f.id for f in stored]

    empty = run(site, EMPTY.get(format, b""), format=format, close_missing=True)
    assert counts(empty) == (0, 0, 0, len(still_open)) and empty.findings_in_report == 0
    assert sorted(f.id for f in findings(site.id, status="fixed")) == sorted(still_open)
    assert counts(run(site, data)) == (0, len(still_open), distinct - len(still_open), 0)


@pytest.mark.parametrize("name", REPORTS)
def test_every_format_cut_short_is_refused_and_changes_nothing(site, name):
    format = SAMPLE_REPORTS[name][0]
    data = (SAMPLES / name).read_bytes()
    run(site, data)
    first = findings(site.id)[0].id
    db.session.execute(sa.update(Finding).where(Finding.id == first).values(status="fixed"))
    db.session.commit()
    before = snapshot(site.id)
    for given in (None, format):
        with pytest.raises(Invalid) as caught:
            run(site, data[: len(data) * 2 // 3], format=given, close_missing=True)
        assert caught.value.errors["file"]
    assert snapshot(site.id) == before
    assert db.session.scalar(sa.select(sa.func.count()).select_from(FindingImport)) == 1


@pytest.mark.parametrize("name", sorted(HOSTILE_XML))
def test_hostile_xml_is_refused_and_changes_nothing(site, name):
    run(site, (SAMPLES / "zap.xml").read_bytes())
    before = snapshot(site.id)
    with pytest.raises(Invalid, match=HOSTILE_XML[name][1]):
        run(site, HOSTILE_XML[name][0].encode(), close_missing=True)
    assert snapshot(site.id) == before


def test_a_gigabyte_of_nesting_is_refused_without_reading_it(site):
    stream = Endless(b'<?xml version="1.0"?><OWASPZAPReport>', b"<site>", 1 << 30)
    with pytest.raises(Invalid, match="nests elements more than 64 deep"):
        import_report(site, stream, close_missing=True)
    assert stream.read_bytes <= 2 << 20  # the first buffer's worth, of a gigabyte
    assert db.session.scalar(sa.select(sa.func.count()).select_from(FindingImport)) == 0


def test_findings_the_scanner_triaged_take_that_status_unless_a_person_triaged_them(site):
    burp = (SAMPLES / "burp.xml").read_bytes()
    record = run(site, burp)
    assert counts(record) == (4, 0, 0, 0)
    assert findings(site.id, rule_id="1049088")[0].status == "false_positive"  # "False positive" in Burp

    gitleaks = json.loads((SAMPLES / "gitleaks.sarif").read_text())
    run(site, json.dumps(gitleaks).encode())
    suppressed = findings(site.id, scanner="gitleaks", path="docs/example.env:2")[0]
    assert suppressed.status == "accepted_risk"

    # Suppressed later in the code: the open finding becomes accepted_risk, a fixed one too; one a
    # person marked false positive stays so.
    results = gitleaks["runs"][0]["results"]
    results[0]["suppressions"] = [{"kind": "inSource"}]
    results[1]["suppressions"] = [{"kind": "external", "status": "accepted"}]
    set_status(site.id, "private-key", "fixed")  # the first of the two private-key findings
    person = findings(site.id, rule_id="private-key")[1]
    person.status = "false_positive"
    db.session.commit()
    record = run(site, json.dumps(gitleaks).encode(), close_missing=True)
    assert counts(record) == (0, 0, 5, 0)
    by_path = {f.path: f for f in findings(site.id, scanner="gitleaks")}
    assert by_path["config/settings.py:12"].status == "accepted_risk"
    assert (
        by_path["deploy/id_rsa:1"].status == "accepted_risk" and by_path["deploy/id_rsa:1"].fixed_at is None
    )
    assert by_path["deploy/backup/id_rsa:1"].status == "false_positive"
    assert by_path["tests/fixtures/users.json:3"].status == "open"
