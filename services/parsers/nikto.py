"""Nikto reports, JSON (`nikto -h URL -o report.json -Format json`) or XML (`-o report.xml -Format xml`).

JSON: Nikto 2.5 writes an array of hosts, 2.1.6 a single host object; each host is
`{host, ip, port, banner, vulnerabilities: [{id, OSVDB or references, method, url, msg}]}`.
XML: 2.5 writes <niktoscans><niktoscan><scandetails sitename=...><item id method>, 2.1.6 the same
without <niktoscans>; an item carries <description>, <uri>, <namelink> (the full URL), <iplink> and,
from 2.5, <references>. Both are streamed, one host (JSON) or one item (XML) at a time.

One finding per Nikto test id on one URL. The host is `name:port` in both formats, so a JSON and an XML
report of the same scan give the same findings. Nikto gives no severity: every finding is `info` (the
message says what it found; triage raises what matters).
"""

from collections.abc import Iterator

from services.parsers.base import (
    ParsedFinding,
    ReportError,
    ReportInfo,
    as_text,
    split_location,
    urls,
)
from services.parsers.jsonstream import JsonReader
from services.parsers.xmlstream import is_xml, iter_xml, text

SCANNER = "nikto"
SEVERITY = "info"


def parse(stream, info: ReportInfo) -> Iterator[ParsedFinding]:
    info.add_scanner(SCANNER)
    if is_xml(stream.peek(1 << 16)):
        yield from _parse_xml(stream)
    else:
        yield from _parse_json(stream)


# -- JSON --------------------------------------------------------------------------------------------


def _parse_json(stream) -> Iterator[ParsedFinding]:
    reader = JsonReader(stream)
    first = reader.peek()
    if first == "[":
        for index, host in enumerate(reader.iter_array("the array of Nikto hosts"), 1):
            yield from _json_host(host, f"host {index}")
    elif first == "{":
        yield from _json_host(reader.value(), "the host")
    else:
        raise ReportError(
            "a Nikto JSON report is a host object or an array of them (is this a Nikto report?)"
        )
    reader.end()


def _json_host(host, where: str) -> Iterator[ParsedFinding]:
    if not isinstance(host, dict):
        raise ReportError(f"{where} must be an object with 'host' and 'vulnerabilities'")
    name = (as_text(host.get("host")) or as_text(host.get("ip")) or "").strip()
    port = (as_text(host.get("port")) or "").strip()
    scheme = "https" if port == "443" else "http"
    origin = f"{scheme}://{name}:{port}" if name and port else (f"{scheme}://{name}" if name else "")
    items = host.get("vulnerabilities")
    if items is None:
        items = []
    if not isinstance(items, list):
        raise ReportError(f"{where}: 'vulnerabilities' must be a list")
    for index, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise ReportError(f"{where}, item {index} must be an object")
        url = (as_text(item.get("url")) or "/").strip()
        if not url.lower().startswith(("http://", "https://")):
            url = origin + (url if url.startswith("/") else f"/{url}")
        yield _finding(
            item.get("id"),
            _message(item.get("msg")),
            url,
            item.get("references"),
            f"{where}, item {index}",
        )


def _message(value) -> str | None:
    text = as_text(value)
    return text.replace('\\"', '"').strip() if text else None  # 2.5 escapes quotes twice


# -- XML ---------------------------------------------------------------------------------------------


def _parse_xml(stream) -> Iterator[ParsedFinding]:
    site = ""
    number = 0
    events = iter_xml(
        stream,
        roots=("niktoscans", "niktoscan"),
        ends=frozenset({"item"}),
        starts=frozenset({"scandetails"}),
        what="the Nikto XML report",
    )
    for event, element in events:
        if event == "start":
            site = (element.get("sitename") or element.get("siteip") or "").strip().rstrip("/")
            continue
        if element.tag != "item":
            continue
        number += 1
        uri = text(element, "uri") or "/"
        url = (
            text(element, "namelink")
            or text(element, "iplink")
            or site + (uri if uri.startswith("/") else f"/{uri}")
        )
        yield _finding(
            element.get("id"),
            text(element, "description"),
            url,
            text(element, "references"),
            f"item {number}",
        )


# -- both --------------------------------------------------------------------------------------------


def _finding(test_id, message: str | None, url: str, references, where: str) -> ParsedFinding:
    rule = (as_text(test_id) or "").strip()
    if not rule:
        raise ReportError(f"{where}: a Nikto item needs its test 'id'")
    host, path = split_location(url)
    title = message or f"Nikto test {rule}"
    if title.startswith(path + ": ") and path:  # some versions prefix the message with its URI
        title = title[len(path) + 2 :]
    reference_text = as_text(references) or ""
    return ParsedFinding(
        scanner=SCANNER,
        rule_id=rule,
        title=title.splitlines()[0] if title.strip() else f"Nikto test {rule}",
        severity=SEVERITY,
        host=host,
        path=path,
        location=url,
        description=message,
        references=urls(reference_text),
    )
