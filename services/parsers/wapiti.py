"""Wapiti reports, JSON (`wapiti -u URL -f json -o report.json`) or XML (`-f xml -o report.xml`).

JSON: `{classifications: {name: {desc, sol, ref: {title: url}}}, vulnerabilities: {name: [entry]},
anomalies: {...}, additionals: {...}, infos: {target, version, ...}}`, an entry being `{method, path,
info, level, parameter, module, http_request, curl_command}`. XML: <report type="security"> with
<report_infos> first, then <vulnerabilities><vulnerability name=...> (description, solution,
references, then <entries><entry>), <anomalies><anomaly> and <additionals><additional> alike.

One finding per category (`SQL Injection`, `Cross Site Scripting`, ...) on one path and parameter of
the target; vulnerabilities, anomalies and additionals are all imported, each at its own level.
Levels changed meaning in Wapiti 3.1.0: before it 1 = high, 2 = medium, 3 = low; from it 0..4 =
info, low, medium, high, critical. The report's version (`infos.version`, `generatorVersion`) says
which scale applies; a report without a version is read on the current scale.

The XML is streamed entry by entry (its infos come first). In the JSON the infos come last, so the
entries are kept, reduced to the fields a finding needs, until the report has been read.
"""

import re
from collections.abc import Iterator

from services.parsers.base import (
    ParsedFinding,
    ReportError,
    ReportInfo,
    as_text,
    split_location,
)
from services.parsers.jsonstream import JsonReader
from services.parsers.xmlstream import is_xml, iter_xml, text

SCANNER = "wapiti"
LEVELS = {0: "info", 1: "low", 2: "medium", 3: "high", 4: "critical"}
LEVELS_BEFORE_3_1 = {0: "info", 1: "high", 2: "medium", 3: "low"}
VERSION = re.compile(r"(\d+)\.(\d+)")
SECTIONS = ("vulnerabilities", "anomalies", "additionals")
KINDS = {"vulnerability", "anomaly", "additional"}


def parse(stream, info: ReportInfo) -> Iterator[ParsedFinding]:
    info.add_scanner(SCANNER)
    if is_xml(stream.peek(1 << 16)):
        yield from _parse_xml(stream)
    else:
        yield from _parse_json(stream)


def levels_for(version: str | None) -> dict[int, str]:
    match = VERSION.search(version or "")
    if match and (int(match.group(1)), int(match.group(2))) < (3, 1):
        return LEVELS_BEFORE_3_1
    return LEVELS


class _Category:
    """What a report says about one kind of flaw: the finding's description and references."""

    def __init__(self, name: str, description=None, solution=None, references=None):
        self.name = name
        text_parts = [as_text(description), f"Solution: {as_text(solution)}" if as_text(solution) else None]
        self.description = "\n\n".join(part.strip() for part in text_parts if part) or None
        self.references = [url for url in references or [] if url]


def _finding(category: _Category, entry: dict, target: str, levels: dict, where: str) -> ParsedFinding:
    path = (as_text(entry.get("path")) or as_text(entry.get("url")) or "/").strip()
    url = (
        path
        if path.lower().startswith(("http://", "https://"))
        else target + (path if path.startswith("/") else f"/{path}")
    )
    host, url_path = split_location(url)
    raw_level = as_text(entry.get("level"))
    try:
        level = int(str(raw_level).strip())
    except ValueError:
        raise ReportError(f"{where}: 'level' must be a number, found {str(raw_level)[:20]!r}") from None
    info = as_text(entry.get("info"))
    description = "\n\n".join(part for part in (info, category.description) if part) or None
    return ParsedFinding(
        scanner=SCANNER,
        rule_id=category.name,
        title=category.name,
        severity=levels.get(level, "info"),
        host=host,
        path=url_path,
        param=(as_text(entry.get("parameter")) or "").strip(),
        location=url,
        description=description,
        references=category.references,
        evidence=as_text(entry.get("http_request")),
    )


def _origin(target: str | None) -> str:
    """scheme://host[:port] of the scan's target (entries give only paths)."""
    target = (target or "").strip()
    host, _ = split_location(target)
    if not host:
        return ""
    return target.split("://", 1)[0].lower() + "://" + host


# -- JSON --------------------------------------------------------------------------------------------


def _parse_json(stream) -> Iterator[ParsedFinding]:
    reader = JsonReader(stream)
    if reader.peek() != "{":
        raise ReportError(
            "a Wapiti JSON report is an object with 'vulnerabilities' (is this a Wapiti report?)"
        )
    classifications: dict = {}
    infos: dict = {}
    entries: list[tuple[str, int, dict]] = []
    for key in reader.iter_object("the Wapiti report"):
        if key == "classifications":
            classifications = _object(reader.value(), "'classifications'")
        elif key == "infos":
            infos = _object(reader.value(), "'infos'")
        elif key in SECTIONS:
            if reader.peek() != "{":
                raise ReportError(f"'{key}' must be an object of categories")
            for name in reader.iter_object(f"'{key}'"):
                if reader.peek() != "[":
                    raise ReportError(f"{key}[{name[:60]!r}] must be a list")
                for index, entry in enumerate(reader.iter_array(f"{key}[{name[:60]!r}]")):
                    if not isinstance(entry, dict):
                        raise ReportError(f"{key}[{name[:60]!r}][{index}] must be an object")
                    entries.append((name, index, _reduced(entry)))
        else:
            reader.value()  # suppressed_findings and whatever a later version adds
    reader.end()
    target = _origin(as_text(infos.get("target")))
    levels = levels_for(as_text(infos.get("version")))
    categories: dict[str, _Category] = {}
    for name, index, entry in entries:
        if name not in categories:
            known = classifications.get(name)
            known = known if isinstance(known, dict) else {}
            refs = known.get("ref")
            urls = [as_text(url) for url in refs.values()] if isinstance(refs, dict) else []
            categories[name] = _Category(name, known.get("desc"), known.get("sol"), urls)
        yield _finding(categories[name], entry, target, levels, f"{name[:60]!r}[{index}]")


def _object(value, what: str) -> dict:
    if not isinstance(value, dict):
        raise ReportError(f"{what} must be an object")
    return value


def _reduced(entry: dict) -> dict:
    """An entry without its bulky fields (the attack's curl command, the detailed response)."""
    request = as_text(entry.get("http_request"))
    return {
        "path": entry.get("path", entry.get("url")),
        "level": entry.get("level"),
        "parameter": entry.get("parameter"),
        "info": entry.get("info"),
        "http_request": request[:4000] if request else None,
    }


# -- XML ---------------------------------------------------------------------------------------------


def _parse_xml(stream) -> Iterator[ParsedFinding]:
    target, levels = "", LEVELS
    category: _Category | None = None
    open_kind = None
    number = 0
    events = iter_xml(
        stream,
        roots=("report",),
        ends=frozenset({"report_infos", "entry", "detail", "description", "solution", "references"}),
        starts=frozenset(KINDS),
        what="the Wapiti XML report",
    )
    description = solution = None
    references: list[str] = []
    for event, element in events:
        name = element.tag
        if event == "start":
            open_kind, category = element, None
            description = solution = None
            references = []
            continue
        if name == "report_infos":
            infos = {node.get("name"): text(node) for node in element.findall("info")}
            target = _origin(infos.get("target"))
            levels = levels_for(infos.get("generatorVersion"))
        elif open_kind is None:
            continue  # e.g. the crawled pages' entries of a detailed report
        elif name == "description":
            description = text(element)
        elif name == "solution":
            solution = text(element)
        elif name == "references":
            references = [url for node in element.findall("reference") if (url := text(node, "url"))]
        elif name == "entry":
            if category is None:
                kind_name = (open_kind.get("name") or "").strip()
                if not kind_name:
                    raise ReportError(f"a <{open_kind.tag}> of the Wapiti report has no name")
                category = _Category(kind_name, description, solution, references)
            number += 1
            entry = {field: text(element, field) for field in ("path", "level", "parameter", "info")}
            entry["http_request"] = text(element, "http_request")
            yield _finding(category, entry, target, levels, f"entry {number}")
