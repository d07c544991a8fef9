"""Report parsers and format detection, on the shared samples and on small reports written here."""

import io
import json
from pathlib import Path

import pytest

from services.models import FORMATS
from services.parsers.base import ParsedFinding, ReportError, scanner_name
from services.parsers.detect import detect_format, format_from_filename, open_report
from services.parsers.jsonstream import JsonReader

SAMPLES = Path(__file__).resolve().parents[1] / "samples"  # copies of ../shared/samples


def parse(data, format=None, buffered=True):
    """(info, findings) of `data` (bytes, str or a JSON-able object)."""
    if not isinstance(data, bytes | str):
        data = json.dumps(data)
    if isinstance(data, str):
        data = data.encode()
    stream = io.BufferedReader(io.BytesIO(data), 1 << 20) if buffered else io.BytesIO(data)
    info, findings = open_report(stream, format)
    return info, list(findings)


def refused(data, format=None) -> str:
    with pytest.raises(ReportError) as caught:
        parse(data, format)
    return str(caught.value)


def nuclei_line(template="git-config", matched="https://a.example.test/x", **extra):
    result = {
        "template-id": template,
        "info": {"name": template.title(), "severity": "high", "description": "d", "reference": ["r1"]},
        "matched-at": matched,
        "host": "https://a.example.test",
    }
    result.update(extra)
    return json.dumps(result)


def sarif(results, rules=None, tool="Semgrep OSS", version="2.1.0"):
    return {
        "version": version,
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [{"tool": {"driver": {"name": tool, "rules": rules or []}}, "results": results}],
    }


def sarif_result(rule="py.sqli", uri="src/app.py", line=42, **extra):
    result = {
        "ruleId": rule,
        "message": {"text": "SQL built from user input"},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": uri},
                    "region": {"startLine": line, "snippet": {"text": "cursor.execute(q)"}},
                }
            }
        ],
    }
    result.update(extra)
    return result


# -- samples -----------------------------------------------------------------------------------------


def test_nuclei_sample_gives_six_distinct_findings_from_seven_lines():
    info, findings = parse((SAMPLES / "nuclei.jsonl").read_bytes())
    assert info.format == "nuclei" and info.scanners == ["nuclei"]
    assert len(findings) == 7
    assert len({finding.dedup_key() for finding in findings}) == 6
    headers = [f for f in findings if f.rule_id.startswith("http-missing-security-headers")]
    assert {f.rule_id for f in headers} == {
        "http-missing-security-headers:strict-transport-security",
        "http-missing-security-headers:content-security-policy",
    }
    git = findings[0]
    assert (git.host, git.path, git.severity, git.cwe) == (
        "shop.example.test",
        "/.git/config",
        "medium",
        "CWE-200",
    )
    assert git.location == "https://shop.example.test/.git/config"
    assert git.references == ["https://example.org/ref/git-config"]
    assert {f.severity for f in findings} == {"critical", "medium", "low", "info"}


def test_nuclei_sample_as_json_array_gives_the_same_findings():
    lines = (SAMPLES / "nuclei.jsonl").read_text().splitlines()
    _, from_lines = parse("\n".join(lines))
    info, from_array = parse(json.dumps([json.loads(line) for line in lines], indent=2))
    assert info.format == "nuclei"
    assert [f.dedup_key() for f in from_array] == [f.dedup_key() for f in from_lines]


def test_zap_sample_gives_one_finding_per_instance():
    info, findings = parse((SAMPLES / "zap.json").read_bytes())
    assert info.format == "zap" and info.scanners == ["zap"]
    assert len(findings) == 4 and len({f.dedup_key() for f in findings}) == 4
    csp = [f for f in findings if f.rule_id == "10038"]
    assert sorted(f.path for f in csp) == ["/", "/cart"]
    xss = next(f for f in findings if f.rule_id == "40012")
    assert (xss.severity, xss.param, xss.cwe) == ("high", "q", "CWE-79")
    assert xss.evidence == "<script>alert(1)</script>"
    assert xss.description.startswith("Reflected XSS.") and "Solution: Encode output." in xss.description
    assert next(f for f in findings if f.rule_id == "10021").severity == "low"
    assert csp[0].references == ["https://example.org/csp"]


# -- detection ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (nuclei_line(), "nuclei"),
        ("[" + nuclei_line() + "]", "nuclei"),
        ("\ufeff  \n" + nuclei_line(), "nuclei"),
        (json.dumps(sarif([])), "sarif"),
        (json.dumps({"@programName": "ZAP", "site": []}), "zap"),
        (json.dumps({"findings": []}), "generic"),
        # Keys nested deeper, or inside strings, do not count: only the first value's own keys do.
        (
            json.dumps({"tool": {"runs": 1, "template-id": "x"}, "note": '"site": 1', "findings": []}),
            "generic",
        ),
    ],
)
def test_detect_format(content, expected):
    assert detect_format(content.encode()) == expected


def test_detection_works_on_a_cut_head():
    head = json.dumps({"$schema": "x", "version": "2.1.0", "runs": [{"results": ["x" * 100]}]})[:60]
    assert detect_format(head.encode()) == "sarif"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("hello", "not JSON"),
        ("<html></html>", "<html> root is not one cloudeye reads"),
        ('{"name": "x", "items": []}', "cannot tell"),
    ],
)
def test_undetectable_reports_are_refused(content, message):
    assert message in refused(content)


def test_a_given_format_that_contradicts_the_content_is_refused():
    zap = (SAMPLES / "zap.json").read_bytes()
    assert "sent as nuclei but its content is a zap report" in refused(zap, "nuclei")
    assert "sent as sarif" in refused((SAMPLES / "nuclei.jsonl").read_bytes(), "sarif")
    assert "unknown format" in refused(zap, "burpsuite")


def test_an_empty_report_with_a_given_format_is_a_scan_that_found_nothing():
    info, findings = parse(b"", "nuclei")
    assert findings == [] and info.scanners == ["nuclei"]
    info, findings = parse(b"\n\n", "nuclei")
    assert findings == []


def test_streams_without_peek_are_read_too():
    info, findings = parse((SAMPLES / "nuclei.jsonl").read_bytes(), buffered=False)
    assert info.format == "nuclei" and len(findings) == 7


# -- nuclei ------------------------------------------------------------------------------------------


def test_nuclei_fields():
    line = nuclei_line(
        "sqli-error",
        "https://A.example.test:8443/item?id=1",
        **{"matcher-name": "mysql", "extracted-results": ["You have an error", "near"]},
        fuzzing_parameter="id",
    )
    _, (finding,) = parse(line)
    assert finding.rule_id == "sqli-error:mysql" and finding.title == "Sqli-Error: mysql"
    assert (finding.host, finding.path, finding.param) == ("a.example.test:8443", "/item?id=1", "id")
    assert finding.evidence == "You have an error\nnear" and finding.severity == "high"


def test_nuclei_unknown_severity_is_info_and_missing_info_is_tolerated():
    _, (finding,) = parse(json.dumps({"template-id": "t", "info": {"severity": "unknown"}, "host": "h"}))
    assert finding.severity == "info" and finding.title == "t"
    _, (finding,) = parse(json.dumps({"template-id": "t", "matched-at": "10.0.0.1:22"}))
    assert finding.severity == "info" and finding.path == "10.0.0.1:22"


def test_same_template_on_two_urls_is_two_findings_and_a_repeat_is_one():
    lines = [nuclei_line(matched="https://a.example.test/1"), nuclei_line(matched="https://a.example.test/2")]
    _, findings = parse("\n".join(lines + lines[:1]))
    assert len({f.dedup_key() for f in findings}) == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (nuclei_line() + "\n[1, 2]\n", "line 2: a nuclei result must be a JSON object, found list"),
        (nuclei_line() + "\n42\n", "line 2: a nuclei result must be a JSON object, found int"),
        (nuclei_line() + "\n\n" + nuclei_line()[:40] + "\n", "line 3 is not valid JSON"),
        (nuclei_line()[:-1], "line 1 is not valid JSON"),
        (nuclei_line() + '\n{"info": {}}\n', "line 2: a nuclei result needs a 'template-id'"),
        (nuclei_line() + '\n{"template-id": "t", "info": "x"}\n', "line 2: 'info' must be an object"),
        (nuclei_line().encode() + b'\n{"template-id": "\xff"}\n', "line 2 is not valid UTF-8"),
        ('{"template-id": "t", "n": 1' + "0" * 5000 + "}", "line 1 is not valid JSON"),
        ("[" + nuclei_line() + ", 3]", "item 2: a nuclei result must be a JSON object"),
        ("[" + nuclei_line() + ", " + nuclei_line()[:30], "truncated"),
        ("[" + nuclei_line(), "truncated"),
        ("[" + nuclei_line() + ",]", "trailing comma"),
        ("[" + nuclei_line() + "] []", "unexpected data after the end"),
        ("[" + nuclei_line() + " " + nuclei_line() + "]", "expected ',' or ']'"),
        ("[" * 100_000, "nested too deeply"),
    ],
)
def test_malformed_nuclei_reports_say_what_and_where(content, message):
    assert message in refused(content if isinstance(content, bytes) else content.encode(), "nuclei")


def test_json_array_errors_carry_line_and_column():
    content = "[\n" + nuclei_line() + ",\n" + '{"template-id": "x", oops}\n]'
    assert "invalid JSON at line 3 column 22" in refused(content)


def test_big_json_array_is_read_in_pieces():
    items = [json.loads(nuclei_line(matched=f"https://a.example.test/{n}")) for n in range(3000)]
    data = json.dumps(items).encode()
    reader = JsonReader(io.BytesIO(data), chunk_size=512)
    decoded = list(reader.iter_array())
    reader.end()
    assert decoded == items
    assert len(reader._buf) < len(data)  # consumed text was dropped along the way


def test_big_value_spanning_many_chunks():
    items = [{"big": "x" * 100_000, "n": 12345678901234567890}, 1.5e300, "tail"]
    reader = JsonReader(io.BytesIO(json.dumps(items).encode()), chunk_size=7)
    assert list(reader.iter_array()) == items


# -- ZAP ---------------------------------------------------------------------------------------------


def zap_report(alerts, site="https://b.example.test"):
    return {"@programName": "ZAP", "@version": "2.16.0", "site": [{"@name": site, "alerts": alerts}]}


def test_zap_alert_without_instances_stands_on_the_site():
    alert = {
        "pluginid": 10020,
        "name": "Clickjacking",
        "riskcode": 2,
        "cweid": "-1",
        "desc": "<p>a &amp; b</p>",
    }
    _, (finding,) = parse(zap_report([alert]))
    assert (finding.rule_id, finding.severity, finding.host, finding.path) == (
        "10020",
        "medium",
        "b.example.test",
        "/",
    )
    assert finding.cwe is None and finding.description == "a & b"


def test_zap_single_site_object_and_informational_risk():
    report = {
        "site": {
            "@name": "https://c.example.test",
            "alerts": [
                {
                    "pluginid": "1",
                    "riskcode": "0",
                    "instances": [{"uri": "https://c.example.test/a", "param": "p"}],
                }
            ],
        }
    }
    _, (finding,) = parse(report)
    assert finding.severity == "info" and finding.param == "p" and finding.title == "ZAP alert 1"


@pytest.mark.parametrize(
    ("report", "message"),
    [
        ({"site": "x"}, "'site' must be a list"),
        ({"site": [1]}, "site[0] must be an object"),
        ({"site": [{"alerts": {"a": 1}}]}, "site[0].alerts must be a list"),
        (
            zap_report([{"name": "no plugin", "riskcode": "1"}]),
            "site[0].alerts[0]: an alert needs a 'pluginid'",
        ),
        (zap_report([{"pluginid": "1", "riskcode": "7"}]), "'riskcode' must be 0, 1, 2 or 3"),
        (
            zap_report([{"pluginid": "1", "riskcode": "1", "instances": [3]}]),
            "alerts[0].instances[0] must be an object",
        ),
        (zap_report([{"pluginid": "1", "riskcode": "1", "instances": {}}]), "instances must be a list"),
        ('{"@programName": "ZAP", "site": [', "not valid JSON"),
    ],
)
def test_malformed_zap_reports(report, message):
    assert message in refused(report, "zap")


# -- SARIF -------------------------------------------------------------------------------------------


def test_sarif_results_with_rules_levels_and_security_severity():
    rules = [
        {
            "id": "py.sqli",
            "shortDescription": {"text": "SQL injection"},
            "fullDescription": {"text": "Long text"},
            "helpUri": "https://semgrep.dev/r/py.sqli",
            "properties": {"security-severity": "9.8", "tags": ["security", "external/cwe/cwe-089"]},
        },
        {"id": "py.debug", "name": "DebugEnabled", "defaultConfiguration": {"level": "note"}},
    ]
    results = [
        sarif_result("py.sqli"),
        sarif_result(None, uri="src/settings.py", line=3, ruleIndex=1),
        sarif_result("py.other", level="error", uri="https://d.example.test/login?x=1", line=None),
        sarif_result("py.other", kind="pass"),
        sarif_result("py.other", uri="src/x.py", suppressions=[{"kind": "inSource"}]),
        sarif_result("py.other", uri="src/y.py", suppressions=[{"kind": "external", "status": "rejected"}]),
    ]
    for result in results:
        if result.get("ruleId") is None:
            del result["ruleId"]
        if result["locations"][0]["physicalLocation"]["region"]["startLine"] is None:
            del result["locations"][0]["physicalLocation"]["region"]
    info, findings = parse(sarif(results, rules))
    assert info.format == "sarif" and info.scanners == ["semgrep-oss"]
    sqli, debug, other, suppressed, kept = findings
    assert (sqli.scanner, sqli.rule_id, sqli.title, sqli.severity) == (
        "semgrep-oss",
        "py.sqli",
        "SQL injection",
        "critical",
    )
    assert (sqli.path, sqli.location, sqli.cwe) == ("src/app.py:42", "src/app.py:42", "CWE-89")
    assert (
        sqli.description == "SQL built from user input\n\nLong text" and sqli.evidence == "cursor.execute(q)"
    )
    assert sqli.references == ["https://semgrep.dev/r/py.sqli"]
    assert (debug.rule_id, debug.title, debug.severity) == ("py.debug", "DebugEnabled", "low")
    assert (other.severity, other.host, other.path, other.title) == (
        "high",
        "d.example.test",
        "/login?x=1",
        "SQL built from user input",
    )
    assert (suppressed.path, suppressed.status) == ("src/x.py:42", "accepted_risk")
    assert (kept.path, kept.severity, kept.status) == ("src/y.py:42", "medium", None)


def test_sarif_runs_of_several_tools_are_several_scanners():
    log = sarif([sarif_result()], tool="CodeQL")
    log["runs"].append({"tool": {"driver": {"name": "Trivy"}}, "results": []})
    info, findings = parse(log)
    assert info.scanners == ["codeql", "trivy"] and [f.scanner for f in findings] == ["codeql"]


def test_sarif_same_rule_on_two_lines_is_two_findings():
    _, findings = parse(sarif([sarif_result(line=1), sarif_result(line=2)]))
    assert len({f.dedup_key() for f in findings}) == 2


def test_sarif_logical_location_and_no_location():
    result = {
        "ruleId": "r",
        "message": {"text": "m"},
        "locations": [{"logicalLocations": [{"fullyQualifiedName": "pkg.mod.func"}]}],
    }
    _, (finding,) = parse(sarif([result]))
    assert finding.path == "pkg.mod.func"
    _, (finding,) = parse(sarif([{"ruleId": "r2", "message": {"text": "n"}}]))
    assert finding.location == "" and finding.severity == "medium"


@pytest.mark.parametrize(
    ("report", "message"),
    [
        (sarif([], version="2.0.0"), "SARIF version '2.0.0' is not supported"),
        ({"version": "2.1.0", "runs": {}}, "'runs' must be a list"),
        ({"version": "2.1.0", "runs": [{"tool": {"driver": {}}}]}, "runs[0].tool.driver.name is required"),
        ({"version": "2.1.0", "runs": [{"tool": []}]}, "runs[0].tool must be an object"),
        (
            sarif([{"locations": []}]),
            "runs[0].results[0]: a result needs a 'ruleId', a rule reference or a message",
        ),
        (sarif(["x"]), "runs[0].results[0] must be an object"),
        (sarif([sarif_result(locations="here")]), "results[0].locations must be a list"),
        ('{"version": "2.1.0", "runs": [', "not valid JSON"),
    ],
)
def test_malformed_sarif_reports(report, message):
    assert message in refused(report, "sarif")


# -- generic -----------------------------------------------------------------------------------------


def test_generic_findings():
    report = {
        "generated": "2026-01-01",
        "findings": [
            {
                "title": "Open redirect",
                "severity": "HIGH",
                "rule_id": "redirect-1",
                "location": "https://e.example.test/go?to=x",
                "description": "d",
                "param": "to",
                "cwe": "CWE-601",
                "references": ["https://ref"],
                "evidence": "Location: x",
            },
            {"title": "Old TLS", "severity": "informational", "rule_id": "tls", "scanner": "testssl.sh"},
        ],
    }
    info, (redirect, tls) = parse(report)
    assert info.format == "generic" and info.scanners == ["generic", "testssl.sh"]
    assert (redirect.scanner, redirect.severity, redirect.host, redirect.path) == (
        "generic",
        "high",
        "e.example.test",
        "/go?to=x",
    )
    assert (redirect.param, redirect.cwe, redirect.references, redirect.evidence) == (
        "to",
        "CWE-601",
        ["https://ref"],
        "Location: x",
    )
    assert (tls.scanner, tls.severity, tls.location) == ("testssl.sh", "info", "")


def test_generic_empty_list_is_the_generic_scanner():
    info, findings = parse({"findings": []})
    assert findings == [] and info.scanners == ["generic"]


@pytest.mark.parametrize(
    ("report", "message"),
    [
        ([], "a generic report is a JSON object"),
        ("1", "a generic report is a JSON object"),
        ({"items": []}, 'needs a "findings" list'),
        ({"findings": {}}, "'findings' must be a list"),
        ({"findings": [1]}, "findings[0] must be an object"),
        ({"findings": [{"severity": "high", "rule_id": "r"}]}, "findings[0].title is required"),
        ({"findings": [{"title": "t", "severity": "high"}]}, "findings[0].rule_id is required"),
        ({"findings": [{"title": "t", "rule_id": "r"}]}, "findings[0].severity is required"),
        ({"findings": [{"title": "t", "rule_id": "r", "severity": "extreme"}]}, "'extreme' is not one of"),
        (
            {"findings": [{"title": "t", "rule_id": "r", "severity": "low", "location": 5}]},
            "location must be a string",
        ),
        (
            {"findings": [{"title": "t", "rule_id": "r", "severity": "low", "references": "x"}]},
            "references must be a list",
        ),
        ('{"findings": [{"title": "t", "rule_id": "r", "severity": "low"}', "truncated"),
        ('{"findings": [], "findings": []}', "'findings' appears twice"),
        ('{"findings": []} x', "unexpected data after the end"),
        (b'{"findings": [{"title": "\xff"}]}', "not valid UTF-8"),
    ],
)
def test_malformed_generic_reports(report, message):
    assert message in refused(report, "generic")


# -- shared pieces -----------------------------------------------------------------------------------


def test_dedup_key_covers_scanner_rule_host_path_and_param():
    base = ParsedFinding(scanner="zap", rule_id="1", title="t", severity="low", host="a", path="/", param="q")
    key = base.dedup_key()
    assert (
        ParsedFinding(
            scanner="zap", rule_id="1", title="other", severity="high", host="A", path="/", param="q"
        ).dedup_key()
        == key
    )
    for changed in ({"scanner": "nuclei"}, {"rule_id": "2"}, {"host": "b"}, {"path": "/x"}, {"param": "p"}):
        fields = {
            "scanner": "zap",
            "rule_id": "1",
            "title": "t",
            "severity": "low",
            "host": "a",
            "path": "/",
            "param": "q",
        }
        fields.update(changed)
        assert ParsedFinding(**fields).dedup_key() != key, changed


def test_scanner_name():
    assert scanner_name("OWASP ZAP", "x") == "owasp-zap"
    assert scanner_name("  ", "sarif") == "sarif"
    assert len(scanner_name("a" * 100, "x")) == 32


def test_error_position_is_right_after_the_consumed_text_was_dropped():
    items = [json.loads(nuclei_line(matched=f"https://a.example.test/{n}")) for n in range(2000)]
    text = json.dumps(items, indent=1)  # many lines
    broken = text[:-2] + ",\n  oops\n]"
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(broken)
    with pytest.raises(ReportError) as caught:
        list(JsonReader(io.BytesIO(broken.encode()), chunk_size=1000).iter_array())
    where = f"line {expected.value.lineno} column {expected.value.colno}"
    assert where == f"line {text.count(chr(10)) + 1} column 3"
    assert f"invalid JSON at {where}" in str(caught.value)


def test_odd_values_are_tolerated_or_refused_never_crash():
    odd = {
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "x",
                        "rules": [{"id": "r", "properties": {"security-severity": "nan"}}],
                    }
                },
                "results": [
                    {
                        "ruleId": "r",
                        "kind": ["pass"],
                        "level": ["error"],
                        "message": {"text": "\n"},
                        "locations": [
                            {
                                "physicalLocation": {
                                    "artifactLocation": {"uri": "http://[::1/"},
                                    "region": {"startLine": True},
                                }
                            }
                        ],
                    }
                ],
            }
        ],
    }
    _, (finding,) = parse(odd)
    assert (finding.severity, finding.title, finding.path, finding.location) == (
        "info",
        "r",
        "http://[::1/",
        "http://[::1/",
    )


def test_random_mutations_of_valid_reports_only_ever_give_findings_or_report_errors():
    """A bounded, seeded fuzz run: every parser meets wrong types, odd values and flipped bytes."""
    import copy
    import random

    rng = random.Random(20261123)
    values = [None, True, 0, -1, 1.5, "", "x", [], {}, [1], {"a": 1}, "\ud800", "http://[::1/", 10**30]
    seeds = [
        [json.loads(line) for line in (SAMPLES / "nuclei.jsonl").read_text().splitlines()],
        json.loads((SAMPLES / "zap.json").read_text()),
        sarif([sarif_result(), sarif_result(ruleIndex=0, level="note")], [{"id": "py.sqli"}]),
        {
            "findings": [
                {"title": "t", "severity": "low", "rule_id": "r", "location": "https://x/", "references": []}
            ]
        },
        json.loads((SAMPLES / "xray.json").read_text()),
        json.loads((SAMPLES / "xray-1.x.json").read_text()),
        json.loads((SAMPLES / "wapiti.json").read_text()),
        json.loads((SAMPLES / "nikto.json").read_text()),
        json.loads((SAMPLES / "nikto-2.1.6.json").read_text()),
        json.loads((SAMPLES / "gitleaks.sarif").read_text()),
    ]

    def mutate(node):
        if isinstance(node, dict | list) and node:
            key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
            if rng.random() < 0.3:
                node[key] = copy.deepcopy(rng.choice(values))
            else:
                mutate(node[key])

    for round_ in range(1500):
        seed = rng.randrange(len(seeds))
        report = copy.deepcopy(seeds[seed])
        for _ in range(rng.randint(1, 4)):
            mutate(report)
        if seed == 0:  # JSON lines
            data = "\n".join(json.dumps(item) for item in report).encode("utf-8", "surrogatepass")
        else:
            data = json.dumps(report).encode("utf-8", "surrogatepass")
        if rng.random() < 0.2:
            at = rng.randrange(len(data))
            data = data[:at] + bytes([rng.randrange(256)]) + data[at + 1 :]
        for format in (None, rng.choice(FORMATS)):
            try:
                _, findings = parse(data, format)
            except ReportError:
                continue
            for finding in findings:
                assert finding.severity in ("critical", "high", "medium", "low", "info"), round_
                assert isinstance(finding.rule_id, str) and finding.rule_id, round_
                finding.dedup_key()


# -- every sample: detection, parsing with and without format, truncation ------------------------------

# sample file -> (format, scanners, distinct findings)
SAMPLE_REPORTS = {
    "nuclei.jsonl": ("nuclei", ["nuclei"], 6),
    "nuclei-v2.jsonl": ("nuclei", ["nuclei"], 6),
    "zap.json": ("zap", ["zap"], 4),
    "zap.xml": ("zap", ["zap"], 4),
    "zap-plus.xml": ("zap", ["zap"], 3),
    "zap-legacy.xml": ("zap", ["zap"], 2),
    "zap-empty.xml": ("zap", ["zap"], 0),
    "gitleaks.sarif": ("sarif", ["gitleaks"], 5),
    "burp.xml": ("burp", ["burp"], 4),
    "nikto.json": ("nikto", ["nikto"], 4),
    "nikto.xml": ("nikto", ["nikto"], 4),
    "nikto-2.1.6.json": ("nikto", ["nikto"], 3),
    "nikto-2.1.6.xml": ("nikto", ["nikto"], 3),
    "nikto-empty.json": ("nikto", ["nikto"], 0),
    "nikto-empty.xml": ("nikto", ["nikto"], 0),
    "xray.json": ("xray", ["xray"], 5),
    "xray-1.x.json": ("xray", ["xray"], 4),
    "wapiti.json": ("wapiti", ["wapiti"], 5),
    "wapiti.xml": ("wapiti", ["wapiti"], 5),
    "wapiti-3.0.json": ("wapiti", ["wapiti"], 2),
}


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def keys(findings) -> set[str]:
    return {finding.dedup_key() for finding in findings}


def test_every_sample_in_the_folder_is_listed():
    assert {p.name for p in SAMPLES.iterdir() if p.suffix != ".md"} == set(SAMPLE_REPORTS)


@pytest.mark.parametrize("name", sorted(SAMPLE_REPORTS))
def test_every_sample_is_detected_and_parsed_alike_with_or_without_its_format(name):
    format, scanners, distinct = SAMPLE_REPORTS[name]
    data = sample(name)
    assert detect_format(data) == format
    info, findings = parse(data)
    assert (info.format, info.scanners, len(keys(findings))) == (format, scanners, distinct)
    _, given = parse(data, format)
    assert [f.dedup_key() for f in given] == [f.dedup_key() for f in findings]
    _, unbuffered = parse(data, buffered=False)  # a stream without peek()
    assert [f.dedup_key() for f in unbuffered] == [f.dedup_key() for f in findings]
    for finding in findings:
        assert finding.severity in ("critical", "high", "medium", "low", "info")
        assert finding.rule_id and finding.title and finding.scanner in scanners


@pytest.mark.parametrize("name", sorted(SAMPLE_REPORTS))
def test_every_sample_cut_short_is_refused(name):
    data = sample(name)
    cut = data[: len(data) * 2 // 3]
    assert cut[-1:] != b"\n"  # not at a line's end, where a JSON-lines report is complete
    with pytest.raises(ReportError):
        parse(cut, SAMPLE_REPORTS[name][0])


@pytest.mark.parametrize(
    ("format", "scanners"),
    [
        ("nuclei", ["nuclei"]),
        ("zap", ["zap"]),
        ("sarif", []),
        ("burp", ["burp"]),
        ("nikto", ["nikto"]),
        ("xray", ["xray"]),
        ("wapiti", ["wapiti"]),
        ("generic", ["generic"]),
    ],
)
def test_a_zero_byte_report_with_its_format_is_a_scan_that_found_nothing(format, scanners):
    for empty in (b"", b"\n  \r\n", b"\xef\xbb\xbf"):
        info, findings = parse(empty, format)
        assert (findings, info.scanners, info.format) == ([], scanners, format)
    assert "more than 1 MB of blank space" in refused(b" " * (2 << 20) + b"{}", format)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('<?xml version="1.0"?>\n<!-- a comment -->\n<OWASPZAPReport version="2.4.3">', "zap"),
        ("\ufeff<issues burpVersion='1.7'>", "burp"),
        ('<?xml version="1.0" ?>\n<!DOCTYPE niktoscan SYSTEM "/x/nikto.dtd">\n<niktoscan>', "nikto"),
        (
            '<?xml version="1.0" ?><report type="security"><report_infos><info name="generatorName">wapiti',
            "wapiti",
        ),
        ("[\n", None),
        ("[]", None),
        ("[1, 2]", None),
        ('[{"plugin": "xss/reflected/default"}]', "xray"),
        ('[{"host": "h", "ip": "1.2.3.4", "port": "80", "banner": ""}]', "nikto"),
        ('[{"host": "h", "vulnerabilities": []}]', "nikto"),
        ('[{"runs": []}]', None),  # SARIF is never an array
        ('{"vulnerabilities": {"XSS": []}, "classifications": {}}', "wapiti"),
        ('{"vulnerabilities":', None),  # the head ends before the value says whose it is
        ('{"host": "h", "ip": "", "port": "80", "vulnerabilities": [{"id": "1"}]}', "nikto"),
        ('{"create_time": 1, "detail": {}, "plugin": "xss"}', "xray"),
        ('{"templateID": "git-config", "matched": "https://x/"}', "nuclei"),
        ('{"template": "x", "matched": "https://x/"}', "nuclei"),
    ],
)
def test_detection_of_odd_beginnings(content, expected):
    if expected is None:
        with pytest.raises(ReportError):
            detect_format(content.encode())
    else:
        assert detect_format(content.encode()) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("nightly.zap.xml", "zap"),
        ("xray.json", "xray"),
        ("scan.NIKTO.json", "nikto"),
        ("a.b.wapiti.2026.xml", "wapiti"),
        ("report.sarif", None),  # the extension is not a name
        ("nuclei", None),
        ("zap-baseline.xml", None),
        ("", None),
    ],
)
def test_a_format_named_in_a_file_name(name, expected):
    assert format_from_filename(name) == expected


def test_utf16_xml_is_detected_and_read():
    data = (
        sample("zap.xml").decode().replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>')
    )
    encoded = data.encode("utf-16")
    assert detect_format(encoded) == "zap"
    _, findings = parse(encoded)
    assert keys(findings) == keys(parse(sample("zap.xml"))[1])


def test_an_xml_report_of_an_unknown_tool_or_with_a_wrong_root_is_refused():
    assert "<scan> root is not one cloudeye reads" in refused(b'<?xml version="1.0"?><scan/>')
    assert "<report> root" in refused(b"<report><x/></report>")  # a <report> that is not Wapiti's
    assert "sent as burp but its content is a zap report" in refused(sample("zap.xml"), "burp")
    assert "must be a <issues> document, found <scan>" in refused(b"<scan/>", "burp")


# -- ZAP XML -----------------------------------------------------------------------------------------


def test_zap_xml_gives_the_same_findings_as_the_json_report_of_the_same_scan():
    _, from_json = parse(sample("zap.json"))
    _, from_xml = parse(sample("zap.xml"))
    assert [f.dedup_key() for f in from_xml] == [f.dedup_key() for f in from_json]
    for xml, json_ in zip(from_xml, from_json, strict=True):
        assert (xml.title, xml.severity, xml.cwe, xml.references, xml.description, xml.evidence) == (
            json_.title,
            json_.severity,
            json_.cwe,
            json_.references,
            json_.description,
            json_.evidence,
        )


def test_zap_xml_plus_skips_requests_and_responses_and_reads_tags_around():
    _, findings = parse(sample("zap-plus.xml"))
    login, newsletter, hsts = findings
    assert (login.rule_id, login.path, login.severity, login.cwe) == (
        "10202",
        "/account/login",
        "medium",
        "CWE-352",
    )
    assert login.evidence == '<form action="/account/login" method="post">'
    assert login.references == [
        "https://cheatsheetseries.owasp.org/cheatsheets/Cross-Site_Request_Forgery_Prevention_Cheat_Sheet.html",
        "https://cwe.mitre.org/data/definitions/352.html",
    ]
    assert "Solution: Use a vetted library" in login.description and "HTTP/1.1" not in login.description
    assert newsletter.path == "/newsletter" and (hsts.rule_id, hsts.severity) == ("10035", "low")


def test_zap_before_2_6_wrote_one_alertitem_per_uri():
    _, findings = parse(sample("zap-legacy.xml"))
    assert [(f.rule_id, f.host, f.path, f.param) for f in findings] == [
        ("10016", "legacy.example.test", "/", "X-XSS-Protection"),
        ("10016", "legacy.example.test", "/contact.php", "X-XSS-Protection"),
    ]


@pytest.mark.parametrize(
    ("report", "message"),
    [
        (
            "<OWASPZAPReport><site name='x'><alerts><alertitem><riskcode>1</riskcode></alertitem>",
            "needs a 'pluginid'",
        ),
        (
            "<OWASPZAPReport><site><alerts><alertitem><pluginid>1</pluginid><riskcode>9</riskcode></alertitem>"
            "</alerts></site></OWASPZAPReport>",
            "site 1, alert 1: 'riskcode' must be 0, 1, 2 or 3",
        ),
        ("<OWASPZAPReport><site></OWASPZAPReport>", "not valid XML: mismatched tag at line 1 column 25"),
        ("<OWASPZAPReport><site>", "ends too early (truncated?)"),
        ("<OWASPZAPReport/><OWASPZAPReport/>", "junk after document element"),
        ("<OWASPZAPReport>&nbsp;</OWASPZAPReport>", "undefined entity"),
        (b"<OWASPZAPReport>\xff</OWASPZAPReport>", "not valid XML"),
    ],
)
def test_malformed_zap_xml(report, message):
    assert message in refused(report, "zap")


# -- Burp --------------------------------------------------------------------------------------------


def test_burp_issues():
    info, (xss, cookie, frame, sqli) = parse(sample("burp.xml"))
    assert info.format == "burp"
    assert (xss.rule_id, xss.title, xss.severity, xss.host, xss.path, xss.param) == (
        "2097920",
        "Cross-site scripting (reflected)",
        "high",
        "shop.example.test",
        "/search",
        "q",
    )
    assert xss.location == "https://shop.example.test/search [q parameter]" and xss.cwe == "CWE-79"
    assert xss.evidence.startswith("The value of the q request parameter is copied")
    assert "Solution: Validate input on arrival" in xss.description
    assert xss.references[:2] == [
        "https://portswigger.net/web-security/cross-site-scripting",
        "https://portswigger.net/web-security/cross-site-scripting/reflected",
    ]
    assert (cookie.severity, cookie.param, cookie.cwe) == ("low", "", "CWE-16")
    assert (frame.severity, frame.evidence) == ("info", None)
    assert (sqli.status, sqli.severity, sqli.param) == ("false_positive", "info", "id")
    assert all(f.status is None for f in (xss, cookie, frame))


def test_burp_issue_on_two_parameters_of_one_path_is_two_findings():
    issue = "<issue><type>1049088</type><name>SQL injection</name><host>https://a.test</host><path>/p</path>"
    report = f"<issues>{issue}<location>/p [a parameter]</location><severity>High</severity></issue>"
    report += f"{issue}<location>/p [session cookie]</location><severity>High</severity></issue></issues>"
    _, findings = parse(report)
    assert [f.param for f in findings] == ["a", "session cookie"] and len(keys(findings)) == 2
    assert "has neither <type> nor <name>" in refused("<issues><issue><host>x</host></issue></issues>")


# -- Nikto -------------------------------------------------------------------------------------------


def test_nikto_json_and_xml_of_one_scan_give_the_same_findings():
    _, from_json = parse(sample("nikto.json"))
    _, from_xml = parse(sample("nikto.xml"))
    assert [f.dedup_key() for f in from_json] == [f.dedup_key() for f in from_xml]
    assert [f.title for f in from_json] == [f.title for f in from_xml]
    header = from_json[0]
    assert (header.rule_id, header.host, header.path, header.location, header.severity) == (
        "999100",
        "shop.example.test:443",
        "/",
        "https://shop.example.test:443/",
        "info",
    )
    assert header.title == 'Uncommon header "x-served-by" found, with contents: cache-fra-eddf8230052-FRA.'
    assert from_xml[1].references == [
        "https://developer.mozilla.org/en-US/docs/Web/HTTP/Headers/Permissions-Policy"
    ]
    assert from_json[1].references == from_xml[1].references


def test_nikto_2_1_6_json_object_and_xml_give_the_same_findings():
    _, from_json = parse(sample("nikto-2.1.6.json"))
    _, from_xml = parse(sample("nikto-2.1.6.xml"))
    assert [f.dedup_key() for f in from_json] == [f.dedup_key() for f in from_xml]
    assert [f.title for f in from_json] == [f.title for f in from_xml]
    assert [(f.rule_id, f.path) for f in from_xml] == [
        ("999957", "/"),
        ("999102", "/"),
        ("000364", "/icons/README"),
    ]
    assert from_xml[2].title == "Apache default file found."  # the "/icons/README: " prefix is left out


@pytest.mark.parametrize(
    ("report", "message"),
    [
        ('{"host": "h", "banner": "", "vulnerabilities": {}}', "'vulnerabilities' must be a list"),
        (
            '[{"host": "h", "vulnerabilities": [{"msg": "m"}]}]',
            "host 1, item 1: a Nikto item needs its test 'id'",
        ),
        ('[{"host": "h", "vulnerabilities": [{"id": "1"}]},]', "trailing comma"),
        ('{"id": "000029","OSVDB": "0","url":"/","msg":"No web server found"}}', "unexpected data"),
        ('"x"', "a Nikto JSON report is a host object or an array"),
        (
            "<niktoscan><scandetails><item><uri>/</uri></item></scandetails></niktoscan>",
            "item 1: a Nikto item needs",
        ),
    ],
)
def test_malformed_nikto_reports(report, message):
    assert message in refused(report, "nikto")


# -- xray --------------------------------------------------------------------------------------------


def test_xray_later_shape():
    _, (xss, sqli, backup, poc, jsonp) = parse(sample("xray.json"))
    assert (xss.rule_id, xss.title, xss.severity, xss.host, xss.path, xss.param) == (
        "xss/reflected/default",
        "Cross-site scripting (XSS): reflected",
        "medium",
        "shop.example.test",
        "/search",
        "q",
    )
    assert (
        xss.location == "https://shop.example.test/search?q=shoes"
        and xss.evidence == "<sCrIpT>alert(8526)</sCrIpT>"
    )
    assert (sqli.severity, sqli.param, sqli.path) == ("high", "id", "/product")
    assert sqli.description.startswith(
        "Generic Boolean based case ['int']\nxray plugin: sqldet/blind-based/default"
    )
    assert (backup.severity, backup.param, backup.path) == ("medium", "", "/www.zip")
    assert (poc.title, poc.severity, poc.path) == (
        "Known vulnerability (POC): poc-yaml-thinkphp5023-method-rce",
        "high",
        "/index.php",
    )
    assert poc.references == ["https://github.com/vulhub/vulhub/tree/master/thinkphp/5.0.23-rce"]
    assert (jsonp.severity, jsonp.param) == ("low", "callback")


def test_xray_1x_shape():
    _, (xss, sqli, cmd, git) = parse(sample("xray-1.x.json"))
    assert (xss.rule_id, xss.path, xss.param, xss.severity) == ("xss/reflected", "/search", "q", "medium")
    assert (sqli.rule_id, sqli.param) == ("sqldet/error_based", "id")
    assert (cmd.rule_id, cmd.title, cmd.severity, cmd.param) == (
        "cmd_injection",
        "Command or code injection",
        "critical",
        "ip",
    )
    assert (git.rule_id, git.path, git.severity) == ("dirscan/sourcecode", "/.git/config", "medium")


def test_xray_random_payloads_in_the_query_do_not_make_new_findings():
    first = json.loads(sample("xray-1.x.json"))[0]
    again = json.loads(json.dumps(first).replace("4143", "9071"))
    assert again != first
    assert parse([again])[1][0].dedup_key() == parse([first])[1][0].dedup_key()


def test_xray_severity_table_and_phantasm_levels():
    from services.parsers.xray import FAMILIES

    def severity(plugin, **extra):
        return parse([{"plugin": plugin, "detail": {"addr": "https://a.test/", "extra": extra}}])[1][
            0
        ].severity

    assert {family: severity(f"{family}/x/default") for family in FAMILIES} == {
        family: level for family, (_, level) in FAMILIES.items()
    }
    assert severity("cmd_injection") == "critical" and severity("brand-new-plugin/x") == "medium"
    assert severity("phantasm/poc-yaml-x/default", level="critical") == "critical"
    assert severity("xss/reflected/default", level="critical") == "medium"  # only POCs name their level


def test_xray_webhook_lines():
    vuln = json.loads(sample("xray.json"))[0]
    lines = [
        json.dumps({"type": "web_statistic", "data": {"num_found_urls": 12}}),
        json.dumps({"type": "web_vuln", "data": vuln}),
        json.dumps(vuln),
    ]
    _, findings = parse("\n".join(lines), "xray")
    assert [f.rule_id for f in findings] == ["xss/reflected/default"] * 2


@pytest.mark.parametrize(
    ("report", "message"),
    [
        ('[{"detail": {}}]', "item 1: an xray vulnerability needs its 'plugin'"),
        ('[{"plugin": "xss", "detail": []}]', "item 1.detail must be an object"),
        (
            '[{"plugin": "xss", "detail": {"extra": {"param": "q"}}}]',
            "item 1: the parameter must be an object",
        ),
        ('[{"plugin": "xss"}, 3]', "item 2: a xray vulnerability must be a JSON object"),
        ('{"type": "web_vuln", "data": 5}', "line 1: 'data' must be an object"),
        ('[{"plugin": "xss"},', "truncated"),
    ],
)
def test_malformed_xray_reports(report, message):
    assert message in refused(report, "xray")


# -- Wapiti ------------------------------------------------------------------------------------------


def test_wapiti_json_and_xml_of_one_scan_give_the_same_findings():
    _, from_json = parse(sample("wapiti.json"))
    _, from_xml = parse(sample("wapiti.xml"))
    assert [f.dedup_key() for f in from_json] == [f.dedup_key() for f in from_xml]
    assert [(f.severity, f.description, f.references) for f in from_json] == [
        (f.severity, f.description, f.references) for f in from_xml
    ]
    assert [(f.rule_id, f.severity, f.path, f.param) for f in from_json] == [
        ("Content Security Policy Configuration", "low", "/", ""),
        ("Cross Site Scripting", "medium", "/search", "q"),
        ("SQL Injection", "critical", "/account/login", "username"),
        ("Internal Server Error", "high", "/product", "id"),
        ("Fingerprint web technology", "info", "/", ""),
    ]
    xss = from_json[1]
    assert xss.host == "shop.example.test" and xss.location == "https://shop.example.test/search"
    assert xss.description.startswith(
        "XSS vulnerability found via injection in the parameter q\n\nCross-site"
    )
    assert "Solution: Avoid Raw HTML Output" in xss.description
    assert xss.references == [
        "https://owasp.org/www-community/attacks/xss/",
        "https://cwe.mitre.org/data/definitions/79.html",
    ]
    assert xss.evidence.startswith("GET /search?q=")


def test_wapiti_before_3_1_counts_levels_the_other_way():
    _, (xss, backup) = parse(sample("wapiti-3.0.json"))
    assert (xss.severity, xss.host, xss.param) == ("high", "legacy.example.test", "name")
    assert backup.severity == "low"
    report = json.loads(sample("wapiti.json"))
    report["infos"]["version"] = "Wapiti 3.0.9"
    assert [f.severity for f in parse(report)[1]][:3] == ["high", "medium", "info"]  # levels 1, 2, 4


def test_wapiti_json_with_its_infos_first_or_vulnerabilities_first():
    report = json.loads(sample("wapiti.json"))
    reordered = {
        key: report[key]
        for key in ("infos", "vulnerabilities", "anomalies", "additionals", "classifications")
    }
    text = json.dumps(reordered)
    assert detect_format(text.encode()) == "wapiti"
    assert [f.dedup_key() for f in parse(text)[1]] == [f.dedup_key() for f in parse(report)[1]]


@pytest.mark.parametrize(
    ("report", "message"),
    [
        (
            '{"classifications": {}, "vulnerabilities": []}',
            "'vulnerabilities' must be an object of categories",
        ),
        ('{"vulnerabilities": {"XSS": {}}}', "vulnerabilities['XSS'] must be a list"),
        ('{"vulnerabilities": {"XSS": [1]}}', "vulnerabilities['XSS'][0] must be an object"),
        ('{"vulnerabilities": {"XSS": [{"path": "/", "level": "high"}]}}', "'level' must be a number"),
        ('{"infos": []}', "'infos' must be an object"),
        ("[]", "a Wapiti JSON report is an object"),
        (
            "<report><vulnerabilities><vulnerability><entries><entry/></entries></vulnerability>",
            "has no name",
        ),
    ],
)
def test_malformed_wapiti_reports(report, message):
    assert message in refused(report, "wapiti")


# -- nuclei spellings --------------------------------------------------------------------------------


def test_nuclei_v2_spellings_keep_matchers_and_locations_apart():
    _, findings = parse(sample("nuclei-v2.jsonl"))
    assert [(f.rule_id, f.path) for f in findings] == [
        ("git-config", "/.git/config"),
        ("http-missing-security-headers:x-frame-options", "/"),
        ("http-missing-security-headers:strict-transport-security", "/"),
        ("tech-detect:nginx", "/"),
        ("CVE-2021-41773", "/cgi-bin/.%2e/.%2e/.%2e/.%2e/etc/passwd"),
        ("openssh-detect", "shop.example.test:22"),
    ]
    git, cve, ssh = findings[0], findings[4], findings[5]
    assert git.references == ["https://github.com/arthaud/git-dumper"]
    assert git.description.endswith("Tags: config, git, exposure")
    assert (cve.cwe, cve.severity, len(cve.references)) == ("CWE-22", "critical", 2)
    assert ssh.evidence == "SSH-2.0-OpenSSH_8.2p1 Ubuntu-4ubuntu0.3"


def test_nuclei_v2_and_v3_spellings_of_one_result_are_one_finding():
    v3 = {
        "template-id": "t",
        "matcher-name": "m",
        "matched-at": "https://a.test/x",
        "info": {"severity": "low"},
    }
    v2 = {"templateID": "t", "matcher_name": "m", "matched": "https://a.test/x", "info": {"severity": "low"}}
    flat = {
        "template": "t",
        "matcher_name": "m",
        "matched": "https://a.test/x",
        "severity": "low",
        "name": "T",
    }
    path = {"template": "http/misc/t.yaml", "matcher-name": "m", "url": "https://a.test/x"}
    results = [parse([item], "nuclei")[1][0] for item in (v3, v2, flat, path)]
    assert len(keys(results)) == 1
    assert results[2].title == "T: m" and results[2].severity == "low"
    ip_only = parse([{"template-id": "t", "ip": "10.0.0.9"}], "nuclei")[1][0]
    assert ip_only.location == "10.0.0.9"


@pytest.mark.parametrize(
    ("meta", "references", "tags"),
    [
        ({"reference": "https://a.test/1", "tags": "a,b"}, ["https://a.test/1"], "a, b"),
        (
            {"reference": "https://a.test/1, https://a.test/2", "tags": ["a", "b"]},
            ["https://a.test/1", "https://a.test/2"],
            "a, b",
        ),
        ({"reference": ["https://a.test/1", None, 3], "tags": None}, ["https://a.test/1", "3"], None),
        ({"reference": None, "tags": ""}, [], None),
    ],
)
def test_nuclei_references_and_tags_as_strings_or_lists(meta, references, tags):
    _, (finding,) = parse([{"template-id": "t", "info": meta}], "nuclei")
    assert finding.references == references
    assert (finding.description == f"Tags: {tags}") if tags else finding.description is None


# -- SARIF without ruleId ----------------------------------------------------------------------------


def test_sarif_results_without_rule_id_each_location_one_finding():
    info, findings = parse(sample("gitleaks.sarif"))
    assert info.scanners == ["gitleaks"]
    assert [(f.rule_id, f.path, f.status) for f in findings] == [
        ("generic-api-key", "config/settings.py:12", None),
        ("private-key", "deploy/id_rsa:1", None),
        ("private-key", "deploy/backup/id_rsa:1", None),
        (findings[3].rule_id, "tests/fixtures/users.json:3", None),
        ("generic-api-key", "docs/example.env:2", "accepted_risk"),
    ]
    assert (
        findings[1].title
        == "Identified a Private Key, which may compromise cryptographic security and sensitive data encryption."
    )
    assert (
        findings[3].rule_id.startswith("message-")
        and findings[3].title == "A hard-coded password was found in a test fixture."
    )
    # The id made from the message is stable: the same result in another report has the same key.
    assert parse(sample("gitleaks.sarif"))[1][3].dedup_key() == findings[3].dedup_key()


def test_sarif_message_strings_and_suppression_statuses():
    rules = [{"id": "r1", "messageStrings": {"default": {"text": "Secret in {0}"}}}]
    results = [
        {"ruleIndex": 0, "message": {"id": "default", "arguments": ["a.py"]}},
        {
            "message": {"id": "default"},
            "rule": {"index": 0},
            "suppressions": [{"kind": "external", "status": "underReview"}],
        },
        {
            "message": {"text": "m"},
            "suppressions": [{"kind": "external", "status": "accepted"}, {"kind": "inSource"}],
        },
        {"message": {"text": "m"}, "suppressions": []},
    ]
    _, findings = parse(sarif(results, rules))
    assert [(f.rule_id, f.status) for f in findings][:2] == [("r1", None), ("r1", None)]
    assert findings[0].description == "Secret in {0}"
    assert findings[2].status == "accepted_risk" and findings[3].status is None
    assert findings[2].rule_id == findings[3].rule_id  # both from the message "m"


# -- hostile XML -------------------------------------------------------------------------------------


class Endless(io.RawIOBase):
    """A stream of `size` bytes made of `head` then `body` repeated, produced as it is read (never held
    in memory); counts what was read."""

    def __init__(self, head: bytes, body: bytes, size: int):
        self.head, self.body, self.size = head, body, size
        self.read_bytes = 0
        self.reads = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        self.reads += 1
        left = self.size - self.read_bytes
        if left <= 0:
            return 0
        n = min(len(buffer), left)
        start = self.read_bytes
        prefix = self.head[start : start + n] if start < len(self.head) else b""
        rest = n - len(prefix)
        offset = (start + len(prefix) - len(self.head)) % len(self.body)
        tail = (self.body * (rest // len(self.body) + 2))[offset : offset + rest]
        buffer[:n] = prefix + tail
        self.read_bytes += n
        return n


HOSTILE_XML = {
    "billion laughs": (
        '<?xml version="1.0"?><!DOCTYPE OWASPZAPReport [<!ENTITY lol "lol">'
        + "".join(f'<!ENTITY lol{i} "{"&lol{};".format(i - 1 if i > 1 else "") * 10}">' for i in range(1, 10))
        + "]><OWASPZAPReport>&lol9;</OWASPZAPReport>",
        "declares XML entities",
    ),
    "external entity (file)": (
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        "<OWASPZAPReport><site name='&xxe;'/></OWASPZAPReport>",
        "declares XML entities",
    ),
    "external entity (network)": (
        '<!DOCTYPE r [<!ENTITY xxe SYSTEM "http://127.0.0.1:9/steal">]><OWASPZAPReport>&xxe;</OWASPZAPReport>',
        "declares XML entities",
    ),
    "parameter entity": (
        '<!DOCTYPE r [<!ENTITY % dtd SYSTEM "http://127.0.0.1:9/evil.dtd"> %dtd;]><OWASPZAPReport/>',
        "declares XML entities",
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_XML))
def test_hostile_xml_is_refused(name):
    content, message = HOSTILE_XML[name]
    assert message in refused(content)
    assert message in refused(content, "zap")


def test_an_external_dtd_is_never_read(tmp_path):
    dtd = tmp_path / "zap.dtd"
    dtd.write_text('<!ENTITY leak "LEAKED">')
    report = (
        f'<?xml version="1.0"?><!DOCTYPE OWASPZAPReport SYSTEM "{dtd.as_uri()}"><OWASPZAPReport><site name="https://a.test">'
        "<alerts><alertitem><pluginid>1</pluginid><riskcode>1</riskcode><instances><instance>"
        "<uri>https://a.test/&leak;</uri></instance></instances></alertitem></alerts></site></OWASPZAPReport>"
    )
    _, (finding,) = parse(report)
    assert finding.location == "https://a.test/"  # the entity it would define is left out


def test_a_gigabyte_of_nesting_is_refused_after_reading_a_few_kilobytes():
    stream = Endless(b'<?xml version="1.0"?><OWASPZAPReport>', b"<site>", 1 << 30)
    with pytest.raises(ReportError, match="nests elements more than 64 deep"):
        list(open_report(io.BufferedReader(stream, 1 << 16), "zap")[1])
    assert stream.read_bytes < 1 << 20


def test_millions_of_elements_inside_one_record_are_refused_before_they_fill_memory():
    stream = Endless(b"<issues><issue><type>1</type>", b"<x/>", 1 << 30)
    with pytest.raises(ReportError, match="more than 500,000 elements in one <issue>"):
        list(open_report(io.BufferedReader(stream, 1 << 16), "burp")[1])
    assert stream.read_bytes < 8 << 20


def test_a_gigabyte_of_text_without_markup_is_read_in_growing_chunks():
    stream = Endless(b"<OWASPZAPReport>", b"x" * 4096, 64 << 20)  # then it ends: truncated
    with pytest.raises(ReportError, match="truncated"):
        list(open_report(io.BufferedReader(stream, 1 << 16), "zap")[1])
    assert stream.read_bytes == 64 << 20 and stream.reads < 64  # not 1024 reads of 64 KB


def test_one_huge_attribute_is_read_in_growing_chunks():
    # expat before 2.6 re-scans an unfinished token from its start on each read: quadratic in 64 KB reads
    stream = Endless(b'<OWASPZAPReport version="', b"9" * 4096, 32 << 20)
    with pytest.raises(ReportError, match="truncated"):
        list(open_report(io.BufferedReader(stream, 1 << 16), "zap")[1])
    assert stream.reads < 64


def test_a_big_zap_xml_report_is_streamed_in_constant_memory():
    import tracemalloc

    alert = (
        "<alertitem><pluginid>10038</pluginid><name>CSP</name><riskcode>2</riskcode><desc>&lt;p&gt;d&lt;/p&gt;"
        "</desc><instances><instance><uri>https://a.test/p</uri><param></param><requestheader>GET / HTTP/1.1"
        "</requestheader><responsebody>" + "b" * 2000 + "</responsebody></instance></instances>"
        "<solution>s</solution><cweid>693</cweid></alertitem>"
    ).encode()
    size = 16 << 20  # about 7,000 alerts
    stream = Endless(b"<OWASPZAPReport><site name='https://a.test'><alerts>", alert, size)
    tracemalloc.start()
    try:
        count = 0
        with pytest.raises(ReportError, match="truncated"):  # the generated stream stops mid-alert
            for _ in open_report(io.BufferedReader(stream, 1 << 16), "zap")[1]:
                count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count > 6_000
    assert peak < 8 << 20  # a few MB for a 16 MB report: nothing accumulates


def test_elements_outside_what_a_parser_reads_are_dropped_as_they_end():
    import tracemalloc

    stream = Endless(b"<OWASPZAPReport>", b"<junk a='1'>text</junk>", 2 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(ReportError, match="truncated"):
            list(open_report(io.BufferedReader(stream, 1 << 16), "zap")[1])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20  # 90,000 elements, none kept


def test_random_mutations_of_xml_reports_only_ever_give_findings_or_report_errors():
    """A bounded, seeded fuzz run over the XML samples: flipped, dropped and inserted bytes and markup."""
    import random

    rng = random.Random(20261201)
    seeds = [sample(name) for name in sorted(SAMPLE_REPORTS) if name.endswith(".xml")]
    inserts = [
        b"<",
        b">",
        b"&",
        b"]]>",
        b"<!--",
        b"<x>",
        b"</alertitem>",
        b"<!ENTITY a 'b'>",
        b"\x00",
        b"\xff",
    ]
    for round_ in range(600):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(data))
            action = rng.randrange(3)
            if action == 0:
                data[at] = rng.randrange(256)
            elif action == 1:
                del data[at : at + rng.randint(1, 40)]
            else:
                data[at:at] = rng.choice(inserts)
        for format in (None, rng.choice(FORMATS)):
            try:
                _, findings = parse(bytes(data), format)
            except ReportError:
                continue
            for finding in findings:
                assert finding.severity in ("critical", "high", "medium", "low", "info"), round_
                assert isinstance(finding.rule_id, str) and finding.rule_id, round_
                finding.dedup_key()
