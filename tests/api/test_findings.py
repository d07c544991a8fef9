"""The bug resource through HTTP: findings, triage, imports, who may do what, and malformed input."""

import io
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from services.config import API_PREFIX
from services.extensions import db
from services.models import Finding, FindingImport
from tests.factories import MATRIX_READERS, MATRIX_ROLES, MATRIX_WRITERS, create_site, role_matrix
from tests.services.test_imports import EMPTY, REPORTS, nuclei_report
from tests.services.test_parsers import HOSTILE_XML, SAMPLE_REPORTS

SAMPLES = Path(__file__).resolve().parents[1] / "samples"  # copies of ../shared/samples
NUCLEI = (SAMPLES / "nuclei.jsonl").read_bytes()
ZAP = (SAMPLES / "zap.json").read_bytes()


def upload(caller, site_id, content: bytes | None, filename="report.json", **fields):
    data = {key: str(value) for key, value in fields.items()}
    if site_id is not None:
        data["site_id"] = str(site_id)
    if content is not None:
        data["file"] = (io.BytesIO(content), filename)
    return caller.post("/bugs/imports", data=data, content_type="multipart/form-data")


def imported(caller, site_id, content: bytes, **fields) -> dict:
    response = upload(caller, site_id, content, **fields)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def counts(body) -> tuple:
    return (body["created"], body["reopened"], body["unchanged"], body["closed"])


def state():
    """Every row an import could write, to prove that a refused one wrote nothing."""
    db.session.expire_all()
    rows = db.session.execute(
        sa.select(Finding.id, Finding.status, Finding.last_seen_at, Finding.updated_at).order_by(Finding.id)
    ).all()
    imports = db.session.scalar(sa.select(sa.func.count()).select_from(FindingImport))
    return [tuple(row) for row in rows], imports


@pytest.fixture
def site(operator):
    return create_site(operator.user)


@pytest.fixture
def loaded(operator, site):
    """The operator's site with the nuclei sample imported."""
    imported(operator, site.id, NUCLEI, filename="nuclei.jsonl")
    return site


def finding_id(caller, site_id, rule_id) -> int:
    items = caller.get(f"/bugs?site_id={site_id}&per_page=100").get_json()["items"]
    return next(item["id"] for item in items if item["rule_id"] == rule_id)


# -- imports -----------------------------------------------------------------------------------------


def test_import_nuclei_sample_then_again_creates_nothing(operator, site):
    first = imported(operator, site.id, NUCLEI, filename="scans/nuclei.jsonl")
    assert counts(first) == (6, 0, 0, 0) and first["findings_in_report"] == 6
    assert (first["format"], first["scanner"], first["filename"], first["site_id"]) == (
        "nuclei",
        "nuclei",
        "nuclei.jsonl",
        site.id,
    )
    assert set(first) >= {"id", "duration_ms", "created_at", "file_sha256", "close_missing", "user_id"}
    second = imported(operator, site.id, NUCLEI)
    assert counts(second) == (0, 0, 6, 0)
    assert operator.get(f"/bugs?site_id={site.id}").get_json()["total"] == 6


def test_import_zap_sample_then_again_creates_nothing(operator, site):
    assert counts(imported(operator, site.id, ZAP, format="zap")) == (4, 0, 0, 0)
    assert counts(imported(operator, site.id, ZAP)) == (0, 0, 4, 0)


def test_close_missing_fixes_the_rest_and_the_full_report_reopens_them(operator, loaded):
    smaller = b"\n".join(NUCLEI.splitlines()[:2])
    body = imported(operator, loaded.id, smaller, close_missing="true")
    assert counts(body) == (0, 0, 2, 4) and body["close_missing"] is True
    fixed = operator.get(f"/bugs?site_id={loaded.id}&status=fixed").get_json()
    assert fixed["total"] == 4 and all(item["fixed_at"] for item in fixed["items"])
    assert counts(imported(operator, loaded.id, NUCLEI, close_missing="false")) == (0, 4, 2, 0)


def test_triaged_findings_are_untouched_by_imports(operator, loaded):
    fp = finding_id(operator, loaded.id, "git-config")
    risk = finding_id(operator, loaded.id, "CVE-2021-41773")
    assert operator.patch(f"/bugs/{fp}", json={"status": "false_positive"}).status_code == 200
    assert operator.patch(f"/bugs/{risk}", json={"status": "accepted_risk"}).status_code == 200
    before = {i: operator.get(f"/bugs/{i}").get_json() for i in (fp, risk)}
    assert counts(imported(operator, loaded.id, NUCLEI, close_missing="1")) == (0, 0, 6, 0)
    assert counts(imported(operator, loaded.id, b"", format="nuclei", close_missing="yes")) == (0, 0, 0, 4)
    for ident in (fp, risk):
        assert operator.get(f"/bugs/{ident}").get_json() == before[ident]


def test_sarif_and_generic_reports_through_the_api(operator, site):
    sarif = {
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "Semgrep", "rules": [{"id": "r1", "name": "Rule one"}]}},
                "results": [
                    {
                        "ruleId": "r1",
                        "level": "error",
                        "message": {"text": "m"},
                        "locations": [
                            {
                                "physicalLocation": {
                                    "artifactLocation": {"uri": "a.py"},
                                    "region": {"startLine": 3},
                                }
                            }
                        ],
                    }
                ],
            }
        ],
    }
    body = imported(operator, site.id, json.dumps(sarif).encode(), filename="x.sarif")
    assert (body["format"], body["scanner"], counts(body)) == ("sarif", "semgrep", (1, 0, 0, 0))
    generic = {
        "findings": [{"title": "T", "severity": "critical", "rule_id": "g1", "location": "https://g.test/a"}]
    }
    body = imported(operator, site.id, json.dumps(generic).encode(), format="generic")
    assert (body["format"], body["scanner"], counts(body)) == ("generic", "generic", (1, 0, 0, 0))
    items = operator.get(f"/bugs?site_id={site.id}").get_json()["items"]
    assert [(i["scanner"], i["severity"], i["location"]) for i in items] == [
        ("generic", "critical", "https://g.test/a"),
        ("semgrep", "high", "a.py:3"),
    ]


@pytest.mark.parametrize("name", REPORTS)
def test_every_scanner_format_through_the_api_detected_from_its_content(operator, site, name):
    format, scanners, distinct = SAMPLE_REPORTS[name]
    content = (SAMPLES / name).read_bytes()
    body = imported(operator, site.id, content, filename=name)
    assert (body["format"], body["scanner"], counts(body)) == (
        format,
        ",".join(scanners),
        (distinct, 0, 0, 0),
    )
    assert counts(imported(operator, site.id, content, format=format)) == (0, 0, distinct, 0)
    items = operator.get(f"/bugs?site_id={site.id}&per_page=100").get_json()["items"]
    still_open = sum(item["status"] == "open" for item in items)
    body = imported(operator, site.id, EMPTY.get(format, b""), format=format, close_missing="true")
    assert counts(body) == (0, 0, 0, still_open) and body["findings_in_report"] == 0


@pytest.mark.parametrize("name", sorted(HOSTILE_XML))
def test_hostile_xml_is_422_and_changes_nothing(operator, loaded, name):
    before = state()
    response = upload(
        operator, loaded.id, HOSTILE_XML[name][0].encode(), filename="evil.xml", close_missing="true"
    )
    assert response.status_code == 422, response.get_json()
    assert HOSTILE_XML[name][1] in response.get_json()["errors"]["file"][0]
    assert state() == before


def test_a_cut_xml_report_is_422_and_changes_nothing(operator, loaded):
    before = state()
    content = (SAMPLES / "burp.xml").read_bytes()
    response = upload(
        operator, loaded.id, content[: len(content) // 2], filename="burp.xml", close_missing="1"
    )
    assert response.status_code == 422 and "truncated" in response.get_json()["message"]
    assert state() == before


def test_a_generated_20000_finding_report_imports_in_one_request(operator, site):
    report = nuclei_report(20_000)
    body = imported(operator, site.id, report, filename="big.jsonl")
    assert counts(body) == (20_000, 0, 0, 0) and body["findings_in_report"] == 20_000
    listing = operator.get(f"/bugs?site_id={site.id}&severity=high&per_page=100").get_json()
    # More than paging.COUNT_EXACT_UP_TO: the first page says "more than 1,000", the last one is exact.
    assert (listing["total"], listing["total_is_estimate"], len(listing["items"])) == (1000, True, 100)
    last = operator.get(f"/bugs?site_id={site.id}&severity=high&per_page=100&page=80").get_json()
    assert (last["total"], last["total_is_estimate"], len(last["items"])) == (8_000, False, 100)
    body = imported(operator, site.id, report, close_missing="true")
    assert counts(body) == (0, 0, 20_000, 0)


# -- malformed and invalid imports -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "fields", "message"),
    [
        (b'{"template-id": "a", "info": {}}\n[1, 2]\n', {}, "line 2: a nuclei result must be a JSON object"),
        (NUCLEI + b'{"template-id": "cut", "info": {"na', {}, "line 8 is not valid JSON"),
        (b'[{"template-id": "a"}, {"template-id": "b"', {}, "truncated"),
        (b'{"@programName": "ZAP", "site": [{"alerts": [', {}, "not valid JSON"),
        (b'{"version": "2.1.0", "runs": [{"tool": {"driver": {}}}]}', {}, "driver.name is required"),
        (b'{"findings": [{"title": "t"}]}', {}, "findings[0].rule_id is required"),
        (NUCLEI, {"format": "zap"}, "sent as zap but its content is a nuclei report"),
        (ZAP, {"format": "sarif"}, "sent as sarif but its content is a zap report"),
        (b"", {}, "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", {}, "not JSON"),
        (b'{"name": "unknown tool"}', {}, "cannot tell"),
        (b'{"template-id": "\xff\xfe"}\n', {}, "not valid UTF-8"),
    ],
)
def test_malformed_reports_are_422_and_change_nothing(operator, loaded, content, fields, message):
    fixed = finding_id(operator, loaded.id, "git-config")
    operator.patch(f"/bugs/{fixed}", json={"status": "fixed"})
    before = state()
    response = upload(operator, loaded.id, content, close_missing="true", **fields)
    assert response.status_code == 422, response.get_json()
    body = response.get_json()
    assert message in body["message"] and body["errors"]["file"]
    assert state() == before


@pytest.mark.parametrize(
    ("build", "error_field"),
    [
        (lambda site: {"data": {"site_id": str(site.id)}}, "file"),
        (lambda site: {"data": {"file": (io.BytesIO(NUCLEI), "n.jsonl")}}, "site_id"),
        (lambda site: {"data": {"site_id": "abc", "file": (io.BytesIO(NUCLEI), "n")}}, "site_id"),
        (lambda site: {"data": {"site_id": "0", "file": (io.BytesIO(NUCLEI), "n")}}, "site_id"),
        (lambda site: {"data": {"site_id": "9" * 30, "file": (io.BytesIO(NUCLEI), "n")}}, "site_id"),
        (
            lambda site: {
                "data": {"site_id": str(site.id), "format": "burpsuite", "file": (io.BytesIO(NUCLEI), "n")}
            },
            "format",
        ),
        (
            lambda site: {
                "data": {"site_id": str(site.id), "close_missing": "maybe", "file": (io.BytesIO(NUCLEI), "n")}
            },
            "close_missing",
        ),
        (lambda site: {"data": {"site_id": str(site.id), "file": "not a file"}}, "file"),
        (
            lambda site: {"data": {"site_id": str(site.id), "extra": "x", "file": (io.BytesIO(NUCLEI), "n")}},
            "extra",
        ),
        (lambda site: {"json": {"site_id": site.id, "file": "x"}}, "site_id"),
        (
            lambda site: {"data": b"--x\r\nbroken", "content_type": "multipart/form-data; boundary=x"},
            "site_id",
        ),
        (lambda site: {"data": b"garbage", "content_type": "multipart/form-data"}, "site_id"),
    ],
)
def test_invalid_import_requests_are_422(operator, site, build, error_field):
    before = state()
    kwargs = build(site)
    if "data" in kwargs and isinstance(kwargs["data"], dict):
        kwargs.setdefault("content_type", "multipart/form-data")
    response = operator.post("/bugs/imports", **kwargs)
    assert response.status_code == 422, response.get_json()
    errors = response.get_json()["errors"]
    assert error_field in json.dumps(errors)
    assert state() == before


def test_import_into_a_missing_site_is_404(operator):
    assert upload(operator, 999_999, NUCLEI).status_code == 404


def test_too_large_reports_are_413(app, operator, site):
    saved = (app.config["MAX_REPORT_BYTES"], app.config["MAX_UPLOAD_BYTES"])
    try:
        # Beyond the report limit but within the upload limit: the engine stops reading.
        app.config["MAX_REPORT_BYTES"] = 1000
        app.config["MAX_UPLOAD_BYTES"] = 1_000_000
        response = upload(operator, site.id, nuclei_report(50))
        assert response.status_code == 413 and "larger than" in response.get_json()["message"]
        # Beyond the upload limit: refused before the view runs.
        app.config["MAX_UPLOAD_BYTES"] = 2000
        assert upload(operator, site.id, nuclei_report(50)).status_code == 413
    finally:
        app.config["MAX_REPORT_BYTES"], app.config["MAX_UPLOAD_BYTES"] = saved
    assert state() == ([], 0)


# -- history -----------------------------------------------------------------------------------------


def test_import_history_newest_first_and_paginated(operator, site):
    other = create_site(operator.user)
    ids = [imported(operator, site.id, NUCLEI)["id"] for _ in range(3)]
    imported(operator, other.id, ZAP)
    history = operator.get(f"/bugs/imports?site_id={site.id}&per_page=2").get_json()
    assert history["total"] == 3 and [item["id"] for item in history["items"]] == ids[::-1][:2]
    assert (
        operator.get(f"/bugs/imports?site_id={site.id}&page=2&per_page=2").get_json()["items"][0]["id"]
        == ids[0]
    )
    assert operator.get("/bugs/imports").get_json()["total"] == 4
    one = operator.get(f"/bugs/imports/{ids[0]}").get_json()
    assert counts(one) == (6, 0, 0, 0) and one["findings_in_report"] == 6
    assert operator.get("/bugs/imports/999999").status_code == 404
    assert operator.get("/bugs/imports?site_id=abc").status_code == 422
    assert operator.get("/bugs/imports?per_page=1000").status_code == 422


# -- findings: list, filters, sort, paging -----------------------------------------------------------


def test_list_filters(operator, loaded):
    imported(operator, loaded.id, ZAP)

    def total(query):
        response = operator.get(f"/bugs?site_id={loaded.id}&{query}")
        assert response.status_code == 200, response.get_json()
        return response.get_json()["total"]

    assert total("") == 10
    assert total("severity=critical") == 1
    assert total("severity=high&severity=critical") == 2
    assert total("scanner=zap") == 4 and total("scanner=nuclei") == 6 and total("scanner=none") == 0
    assert total("q=phpinfo") == 2 and total("q=SHOP.example") == 10
    assert total("q=Header") == 5  # two nuclei matchers, three ZAP instances
    # LIKE wildcards are taken literally: "%" is in two locations (%2e, %3C), "_" in none.
    assert total("q=%25") == 2 and total("q=_") == 0
    fixed = finding_id(operator, loaded.id, "git-config")
    operator.patch(f"/bugs/{fixed}", json={"status": "fixed"})
    assert total("status=fixed") == 1 and total("status=open") == 9
    assert total("status=open&status=fixed") == 10
    assert total("status=open&severity=medium&scanner=zap") == 2


def test_list_sorts_and_pages(operator, loaded):
    def order(sort, key):
        items = operator.get(f"/bugs?site_id={loaded.id}&sort={sort}").get_json()["items"]
        return [item[key] for item in items]

    ranks = {"critical": 4, "high": 3, "medium": 2, "low": 1, "info": 0}
    by_severity = [ranks[s] for s in order("-severity", "severity")]
    assert by_severity == sorted(by_severity, reverse=True) and by_severity[0] == 4
    assert [ranks[s] for s in order("severity", "severity")] == sorted(by_severity)
    ids = order("id", "id")
    assert ids == sorted(ids) and order("-id", "id") == ids[::-1]
    first_seen = order("first_seen_at", "id")
    assert first_seen == ids and order("-first_seen_at", "id") == ids[::-1]
    # Seen again: two of them get a later last_seen_at.
    imported(operator, loaded.id, b"\n".join(NUCLEI.splitlines()[4:6]))
    recent = order("-last_seen_at", "rule_id")
    assert (
        recent[:2] == ["phpinfo-files", "phpinfo-files"]
        and order("last_seen_at", "rule_id")[-1] == "phpinfo-files"
    )
    default = operator.get(f"/bugs?site_id={loaded.id}").get_json()["items"]
    assert default[0]["severity"] == "critical"

    page1 = operator.get(f"/bugs?site_id={loaded.id}&per_page=4&sort=id").get_json()
    page2 = operator.get(f"/bugs?site_id={loaded.id}&per_page=4&page=2&sort=id").get_json()
    assert (page1["total"], page1["page"], page1["per_page"], len(page1["items"])) == (6, 1, 4, 4)
    assert len(page2["items"]) == 2 and [i["id"] for i in page1["items"] + page2["items"]] == ids
    assert operator.get(f"/bugs?site_id={loaded.id}&page=9").get_json()["items"] == []


@pytest.mark.parametrize(
    "query",
    [
        "severity=extreme",
        "status=closed",
        "sort=title",
        "sort=",
        "per_page=101",
        "per_page=0",
        "page=0",
        "site_id=abc",
        "site_id=-1",
        "q=" + "x" * 201,
        "q=",
        "scanner=" + "s" * 33,
        "q=%00",
    ],
)
def test_invalid_list_queries_are_422(operator, query):
    assert operator.get(f"/bugs?{query}").status_code == 422


def test_list_has_no_long_text_and_the_detail_has_it(operator, site):
    imported(operator, site.id, ZAP)
    item = operator.get(f"/bugs?site_id={site.id}&severity=high").get_json()["items"][0]
    assert "description" not in item and "evidence" not in item
    detail = operator.get(f"/bugs/{item['id']}").get_json()
    assert (
        detail["description"].startswith("Reflected XSS.")
        and detail["evidence"] == "<script>alert(1)</script>"
    )
    assert detail["param"] == "q" and detail["cwe"] == "CWE-79" and detail["scanner"] == "zap"
    assert operator.get("/bugs/999999").status_code == 404
    assert operator.get("/bugs/0").status_code == 404


# -- PATCH -------------------------------------------------------------------------------------------


def test_patch_transitions_and_fixed_at(operator, loaded):
    ident = finding_id(operator, loaded.id, "git-config")

    def patch(body):
        response = operator.patch(f"/bugs/{ident}", json=body)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    assert patch({"status": "confirmed"})["status"] == "confirmed"
    fixed = patch({"status": "fixed", "note": "patched in 1.2"})
    assert fixed["fixed_at"] is not None and fixed["note"] == "patched in 1.2"
    assert patch({"note": "still fixed"})["fixed_at"] == fixed["fixed_at"]
    reopened = patch({"status": "open"})
    assert reopened["fixed_at"] is None and reopened["note"] == "still fixed"
    assert patch({"status": "false_positive", "note": None})["note"] is None
    assert patch({"status": "accepted_risk"})["status"] == "accepted_risk"
    assert patch({"status": "open"})["status"] == "open"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"status": "closed"},
        {"status": None},
        {"status": 3},
        {"note": "x" * 10_001},
        {"note": "bad\u0000"},
        {"title": "renamed"},
        {"status": "open", "severity": "low"},
    ],
)
def test_invalid_patches_are_422(operator, loaded, body):
    ident = finding_id(operator, loaded.id, "git-config")
    before = operator.get(f"/bugs/{ident}").get_json()
    response = operator.patch(f"/bugs/{ident}", json=body)
    assert response.status_code == 422 and response.get_json()["errors"]
    assert operator.get(f"/bugs/{ident}").get_json() == before


def test_malformed_patch_json_is_400(operator, loaded):
    ident = finding_id(operator, loaded.id, "git-config")
    response = operator.patch(
        f"/bugs/{ident}", data='{"status": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400


def test_patch_unknown_finding_is_404(operator):
    assert operator.patch("/bugs/424242", json={"status": "fixed"}).status_code == 404


# -- who may do what ---------------------------------------------------------------------------------

READERS, WRITERS = MATRIX_READERS, MATRIX_WRITERS
ROLES = MATRIX_ROLES


@pytest.fixture
def matrix(client, operator, loaded):
    """One caller per role/ownership case, all looking at the operator's loaded site."""
    callers = role_matrix(client, operator, loaded)
    ident = finding_id(operator, loaded.id, "git-config")
    record = operator.get(f"/bugs/imports?site_id={loaded.id}").get_json()["items"][0]["id"]
    return callers, loaded, ident, record


@pytest.mark.parametrize("role", ROLES)
def test_read_endpoints_by_role(matrix, role):
    callers, site, ident, record = matrix
    caller = callers[role]
    expected = 200 if role in READERS else 404
    assert caller.get(f"/bugs?site_id={site.id}").status_code == expected
    assert caller.get(f"/bugs/{ident}").status_code == expected
    assert caller.get(f"/bugs/imports?site_id={site.id}").status_code == expected
    assert caller.get(f"/bugs/imports/{record}").status_code == expected
    # Unfiltered lists only ever show what the caller may see.
    assert caller.get("/bugs").get_json()["total"] == (6 if role in READERS else 0)
    assert caller.get("/bugs/imports").get_json()["total"] == (1 if role in READERS else 0)


@pytest.mark.parametrize("role", ROLES)
def test_write_endpoints_by_role(matrix, role):
    callers, site, ident, _ = matrix
    caller = callers[role]
    expected = 200 if role in WRITERS else (403 if role in READERS else 404)
    before = state()
    response = caller.patch(f"/bugs/{ident}", json={"status": "confirmed", "note": role})
    assert response.status_code == expected
    response = upload(caller, site.id, ZAP)
    assert response.status_code == (201 if role in WRITERS else expected)
    if role not in WRITERS:
        assert state() == before
    else:
        assert caller.get(f"/bugs/{ident}").get_json()["note"] == role
        assert response.get_json()["user_id"] == caller.user.id


def test_forbidden_caller_gets_403_even_for_a_malformed_report(matrix):
    callers, site, _, _ = matrix
    assert upload(callers["viewer_read"], site.id, b"[1,").status_code == 403
    assert upload(callers["other_operator"], site.id, b"[1,").status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/bugs"),
        ("get", "/bugs/1"),
        ("patch", "/bugs/1"),
        ("get", "/bugs/imports"),
        ("post", "/bugs/imports"),
        ("get", "/bugs/imports/1"),
    ],
)
def test_every_bug_endpoint_needs_a_token(client, method, path):
    assert getattr(client, method)(API_PREFIX + path).status_code == 401


def test_openapi_documents_the_multipart_import(client):
    spec = client.get(API_PREFIX + "/openapi.json").get_json()
    post = spec["paths"][API_PREFIX + "/bugs/imports"]["post"]
    schema = post["requestBody"]["content"]["multipart/form-data"]["schema"]
    properties = schema.get("properties") or {}
    if not properties:  # a $ref or allOf of the form and files schemas
        parts = schema.get("allOf", [schema])
        for part in parts:
            name = part["$ref"].rsplit("/", 1)[-1]
            properties.update(spec["components"]["schemas"][name]["properties"])
    assert {"file", "site_id", "format", "close_missing"} <= set(properties)
    assert "201" in post["responses"] and "422" in post["responses"]
    parameters = {p["name"] for p in spec["paths"][API_PREFIX + "/bugs"]["get"]["parameters"]}
    assert {"site_id", "severity", "status", "scanner", "q", "sort", "page", "per_page"} <= parameters


def test_a_report_larger_than_the_limit_of_other_requests_is_imported(app, operator, site):
    report = nuclei_report(3000)
    assert len(report) > app.config["MAX_REQUEST_BYTES"]
    response = upload(operator, site.id, report)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["created"] == 3000
