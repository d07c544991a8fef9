"""Report parsers and format detection, on the shared samples and on small reports written here."""

import io
import json
from pathlib import Path

import pytest

from services.parsers.base import ParsedFinding, ReportError, scanner_name
from services.parsers.detect import detect_format, open_report
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
        for format in (None, rng.choice(["nuclei", "zap", "sarif", "generic"])):
            try:
                _, findings = parse(data, format)
            except ReportError:
                continue
            for finding in findings:
                assert finding.severity in ("critical", "high", "medium", "low", "info"), round_
                assert isinstance(finding.rule_id, str) and finding.rule_id, round_
                finding.dedup_key()
