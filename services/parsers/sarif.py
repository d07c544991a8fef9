"""SARIF 2.1.0 (Static Analysis Results Interchange Format): code scanners, DAST tools, linters.

Each run's `tool.driver.name` is the scanner (so `semgrep` and `codeql` findings never close each
other's). Severity follows GitHub's convention: the rule's `security-severity` score when present,
otherwise the SARIF level (error → high, warning → medium, note → low, none → info).

A result is one finding per location (and one without a location when it has none). Its rule is its
`ruleId`, else `rule.id`, else the id of the driver's rule at `ruleIndex` (`rule.index`), else a stable
id made from its message (gitleaks and others leave `ruleId` out). Results that are a
`pass`/`notApplicable` are not findings; suppressed ones (a suppression accepted or without a status)
are imported as accepted_risk.
"""

import hashlib
import re
from collections.abc import Iterator

from services.parsers.base import (
    ParsedFinding,
    ReportError,
    ReportInfo,
    as_text,
    scanner_name,
    split_location,
)
from services.parsers.jsonstream import loads

SCANNER = None  # each run's tool names its scanner: an empty report names none
LEVELS = {"error": "high", "warning": "medium", "note": "low", "none": "info"}
NOT_FINDINGS = {"pass", "notApplicable"}
CWE = re.compile(r"cwe[-/:_ ]?0*([0-9]{1,9})\b", re.IGNORECASE)


def parse(stream, info: ReportInfo) -> Iterator[ParsedFinding]:
    log = loads(stream.read(), "the SARIF report")
    if not isinstance(log, dict) or "runs" not in log:
        raise ReportError("a SARIF log is a JSON object with 'version' and 'runs' (is this a SARIF file?)")
    version = log.get("version")
    if version != "2.1.0":
        raise ReportError(f"SARIF version {str(version)[:20]!r} is not supported; only 2.1.0 is")
    runs = log["runs"]
    if not isinstance(runs, list):
        raise ReportError("'runs' must be a list")
    for r_index, run in enumerate(runs):
        yield from _run(run, info, f"runs[{r_index}]")


def _obj(value, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ReportError(f"{where} must be an object")
    return value


def _list(value, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ReportError(f"{where} must be a list")
    return value


def _text(message) -> str | None:
    return as_text(message.get("text")) if isinstance(message, dict) else None


def _run(run, info: ReportInfo, where: str) -> Iterator[ParsedFinding]:
    run = _obj(run, where)
    driver = _obj(_obj(run.get("tool"), f"{where}.tool").get("driver"), f"{where}.tool.driver")
    tool = as_text(driver.get("name"))
    if not tool:
        raise ReportError(f"{where}.tool.driver.name is required: it names the scanner")
    scanner = scanner_name(tool, "sarif")
    info.add_scanner(scanner)
    rules = [
        _obj(rule, f"{where}.tool.driver.rules[{i}]")
        for i, rule in enumerate(_list(driver.get("rules"), f"{where}.tool.driver.rules"))
    ]
    by_id = {as_text(rule.get("id")): rule for rule in rules if as_text(rule.get("id"))}
    for index, result in enumerate(_list(run.get("results"), f"{where}.results")):
        yield from _result(
            _obj(result, f"{where}.results[{index}]"), scanner, rules, by_id, f"{where}.results[{index}]"
        )


def _rule_for(result: dict, rules: list, by_id: dict, where: str) -> tuple[str, dict]:
    ref = _obj(result.get("rule"), f"{where}.rule")
    rule_id = as_text(result.get("ruleId")) or as_text(ref.get("id"))
    index = result.get("ruleIndex", ref.get("index"))
    rule = by_id.get(rule_id) if rule_id else None
    if rule is None and isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(rules):
        rule = rules[index]
        rule_id = rule_id or as_text(rule.get("id"))
    if not rule_id:
        message = _message(result.get("message"), rule or {})
        if not message:
            raise ReportError(f"{where}: a result needs a 'ruleId', a rule reference or a message")
        rule_id = (
            "message-" + hashlib.sha256(message.strip().encode("utf-8", "surrogatepass")).hexdigest()[:16]
        )
    return rule_id.strip(), rule or {}


def _message(message, rule: dict) -> str | None:
    """A result's message: its text, or the rule's message string it names by `id`."""
    text = _text(message)
    if text or not isinstance(message, dict):
        return text
    strings = rule.get("messageStrings")
    named = (
        strings.get(message.get("id"))
        if isinstance(strings, dict) and isinstance(message.get("id"), str)
        else None
    )
    return _text(named)


def _result(result: dict, scanner: str, rules: list, by_id: dict, where: str) -> Iterator[ParsedFinding]:
    kind = result.get("kind")
    if isinstance(kind, str) and kind in NOT_FINDINGS:
        return
    rule_id, rule = _rule_for(result, rules, by_id, where)
    message = _message(result.get("message"), rule)
    title = (
        _text(rule.get("shortDescription"))
        or as_text(rule.get("name"))
        or (message.splitlines()[0] if message else None)
        or rule_id
    )
    description = message
    full = _text(rule.get("fullDescription"))
    if full and full != description:
        description = f"{description}\n\n{full}" if description else full
    references = [ref for ref in (as_text(rule.get("helpUri")),) if ref]
    severity = _severity(result, rule)
    cwe = _cwe(rule, result)
    status = "accepted_risk" if _suppressed(result) else None
    locations = _list(result.get("locations"), f"{where}.locations") or [None]
    for index, location in enumerate(locations):
        uri, line, snippet = _location(location, f"{where}.locations[{index}]")
        host, path = split_location(uri) if uri else ("", "")
        if line:
            path = f"{path}:{line}"
        yield ParsedFinding(
            scanner=scanner,
            rule_id=rule_id,
            title=title,
            severity=severity,
            host=host,
            path=path,
            param="",
            location=f"{uri}:{line}" if uri and line else (uri or ""),
            description=description,
            cwe=cwe,
            references=references,
            evidence=snippet,
            status=status,
        )


def _suppressed(result: dict) -> bool:
    suppressions = result.get("suppressions")
    if not isinstance(suppressions, list):
        return False
    # A suppression without a status, or with status "accepted", hides the result.
    return any(isinstance(s, dict) and s.get("status", "accepted") == "accepted" for s in suppressions)


def _location(location, where: str) -> tuple[str | None, int | None, str | None]:
    """(uri or logical name, start line, snippet) of one location; all None for no location."""
    if location is None:
        return None, None, None
    location = _obj(location, where)
    physical = _obj(location.get("physicalLocation"), f"{where}.physicalLocation")
    if physical:
        artifact = _obj(physical.get("artifactLocation"), f"{where}.physicalLocation.artifactLocation")
        region = _obj(physical.get("region"), f"{where}.physicalLocation.region")
        line = region.get("startLine")
        line = line if isinstance(line, int) and not isinstance(line, bool) and line > 0 else None
        return as_text(artifact.get("uri")), line, _text(region.get("snippet"))
    for logical in _list(location.get("logicalLocations"), f"{where}.logicalLocations"):
        if isinstance(logical, dict):
            name = as_text(logical.get("fullyQualifiedName")) or as_text(logical.get("name"))
            if name:
                return name, None, None
    return None, None, None


def _severity(result: dict, rule: dict) -> str:
    for properties in (result.get("properties"), rule.get("properties")):
        if isinstance(properties, dict) and "security-severity" in properties:
            try:
                score = float(properties["security-severity"])
            except (TypeError, ValueError):
                continue
            if score >= 9.0:
                return "critical"
            if score >= 7.0:
                return "high"
            if score >= 4.0:
                return "medium"
            return "low" if score > 0 else "info"
    level = result.get("level")
    if level is None:
        default = rule.get("defaultConfiguration")
        level = default.get("level") if isinstance(default, dict) else None
    return LEVELS.get(level if isinstance(level, str) else "warning", "medium")


def _cwe(rule: dict, result: dict) -> str | None:
    for properties in (rule.get("properties"), result.get("properties")):
        tags = properties.get("tags") if isinstance(properties, dict) else None
        for tag in tags if isinstance(tags, list) else []:
            match = CWE.search(tag) if isinstance(tag, str) else None
            if match:
                return f"CWE-{int(match.group(1))}"
    return None
