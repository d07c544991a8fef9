"""The generic format, for any tool cloudeye does not know:

    {"findings": [{"title": "...", "severity": "high", "rule_id": "...", "location": "https://...",
                   "description": "...", "param": "q", "cwe": "CWE-79", "references": ["..."],
                   "evidence": "...", "scanner": "mytool"}, ...]}

`title`, `severity` and `rule_id` are required; `scanner` (default "generic") names the tool, so two
tools' findings never close each other's. The findings array is read item by item (any size).
"""

from collections.abc import Iterator

from services.models import SEVERITIES
from services.parsers.base import (
    ParsedFinding,
    ReportError,
    ReportInfo,
    as_text,
    normalise_severity,
    scanner_name,
    split_location,
)
from services.parsers.jsonstream import JsonReader

SCANNER = "generic"
OPTIONAL_TEXT = ("location", "description", "param", "parameter", "cwe", "evidence", "scanner")


def parse(stream, info: ReportInfo) -> Iterator[ParsedFinding]:
    reader = JsonReader(stream)
    if reader.peek() != "{":
        raise ReportError('a generic report is a JSON object: {"findings": [...]}')
    found = False
    for key in reader.iter_object("the report object"):
        if key != "findings":
            reader.value()  # other top-level members (tool name, dates, ...) are allowed and ignored
            continue
        if found:
            raise ReportError("'findings' appears twice")
        found = True
        if reader.peek() != "[":
            raise ReportError("'findings' must be a list")
        for index, item in enumerate(reader.iter_array("the 'findings' list")):
            yield from_item(item, info, f"findings[{index}]")
    reader.end()
    if not found:
        raise ReportError('a generic report needs a "findings" list')
    if not info.scanners:
        info.add_scanner(SCANNER)


def _required(item: dict, name: str, where: str) -> str:
    value = item.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ReportError(f"{where}.{name} is required and must be a non-empty string")
    return value.strip()


def from_item(item, info: ReportInfo, where: str) -> ParsedFinding:
    if not isinstance(item, dict):
        raise ReportError(f"{where} must be an object")
    title = _required(item, "title", where)
    rule_id = _required(item, "rule_id", where)
    raw_severity = _required(item, "severity", where)
    severity = normalise_severity(raw_severity, default="")
    if not severity:
        raise ReportError(f"{where}.severity {raw_severity[:30]!r} is not one of {', '.join(SEVERITIES)}")
    for name in OPTIONAL_TEXT:
        if item.get(name) is not None and not isinstance(item[name], str):
            raise ReportError(f"{where}.{name} must be a string")
    references = item.get("references")
    if references is None:
        references = []
    if not isinstance(references, list) or not all(isinstance(ref, str) for ref in references):
        raise ReportError(f"{where}.references must be a list of strings")
    location = (item.get("location") or "").strip()
    host, path = split_location(location)
    scanner = scanner_name(item.get("scanner"), SCANNER)
    info.add_scanner(scanner)
    return ParsedFinding(
        scanner=scanner,
        rule_id=rule_id,
        title=title,
        severity=severity,
        host=host,
        path=path,
        param=(item.get("param") or item.get("parameter") or "").strip(),
        location=location,
        description=as_text(item.get("description")),
        cwe=as_text(item.get("cwe")),
        references=[ref for ref in references if ref.strip()],
        evidence=as_text(item.get("evidence")),
    )
