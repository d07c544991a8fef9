"""Which format a report is in, told from its first bytes; and the one entry point to parse one.

XML is told by its root element: <OWASPZAPReport> (ZAP), <issues> (Burp), <niktoscans>/<niktoscan>
(Nikto), <report> naming Wapiti in its infos (Wapiti).
JSON is told by the top-level keys of its first object (for an array or JSON lines, of its first item),
in the order they come, the first known key deciding: `template-id`/`templateID`/`matched-at`/...
(nuclei), `runs` (SARIF), `site`/`@programName` (ZAP), `findings` (generic), `plugin`/`vuln_class`/
`create_time` (xray), `classifications`/`anomalies`/`infos` (Wapiti), `banner` (Nikto), and
`vulnerabilities` holding an object (Wapiti) or a list (Nikto). Only the first value's own keys count,
so a key quoted inside a description or nested deeper never misleads. An empty array says nothing
about its scanner: it needs `format=`.
"""

import json
import re
from collections.abc import Iterator

from services.models import FORMATS
from services.parsers import burp, generic, nikto, nuclei, sarif, wapiti, xray, zap
from services.parsers.base import ParsedFinding, ReportError, ReportInfo
from services.parsers.jsonstream import Prepended
from services.parsers.xmlstream import UTF16_BOMS

HEAD_BYTES = 1 << 20
MODULES = {
    "nuclei": nuclei,
    "zap": zap,
    "sarif": sarif,
    "burp": burp,
    "nikto": nikto,
    "xray": xray,
    "wapiti": wapiti,
    "generic": generic,
}
PARSERS = {name: module.parse for name, module in MODULES.items()}
KEYS = {
    "template-id": "nuclei",
    "templateID": "nuclei",
    "matched-at": "nuclei",
    "matcher-name": "nuclei",
    "matcher_name": "nuclei",
    "matched": "nuclei",
    "template-path": "nuclei",
    "runs": "sarif",
    "site": "zap",
    "@programName": "zap",
    "findings": "generic",
    "plugin": "xray",
    "vuln_class": "xray",
    "create_time": "xray",
    "classifications": "wapiti",
    "anomalies": "wapiti",
    "additionals": "wapiti",
    "infos": "wapiti",
    "banner": "nikto",
}
ARRAY_FORMATS = {"nuclei", "xray", "nikto"}  # the formats whose report may be a JSON array
XML_ROOTS = {"OWASPZAPReport": "zap", "issues": "burp", "niktoscans": "nikto", "niktoscan": "nikto"}
TOKEN = re.compile(r'["{}\[\]]')
STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
COLON = re.compile(r"\s*:\s*")
# The markup before the root element: the XML declaration, comments, processing instructions, the
# DOCTYPE (with an internal subset, as Burp writes).
PROLOG = re.compile(r"\s*+(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE(?:[^\[>]++|\[[^\]]*+\])*+>)", re.DOTALL)
ROOT = re.compile(r"\s*<([A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)")
EXPECTED = (
    "expected nuclei JSON lines or array, a ZAP JSON or XML report, SARIF 2.1.0, Burp issues XML, "
    'Nikto JSON or XML, xray JSON, Wapiti JSON or XML, or the generic {"findings": [...]}'
)

assert set(PARSERS) == set(FORMATS)


def detect_format(head: bytes) -> str:
    """The format of a report from its first bytes; ReportError when it cannot be told."""
    text = _head_text(head)
    if not text:
        raise ReportError("the report is empty; nothing tells its format (give format=)")
    if text[0] == "<":
        return _xml_format(text)
    if text[0] == "[":
        return _array_format(text)
    if text[0] != "{":
        raise ReportError(f"the report is not JSON or XML: it starts with {text[:20]!r}; {EXPECTED}")
    found = _format_of_keys(text)
    if found is None:
        raise ReportError(f"cannot tell the report's format from its content; {EXPECTED}")
    return found


def _head_text(head: bytes) -> str:
    if head.startswith(UTF16_BOMS):
        text = head[: len(head) // 2 * 2].decode("utf-16", "replace")
    else:
        text = head.decode("utf-8", "replace")
    return text.lstrip("\ufeff \t\r\n")


def _xml_format(text: str) -> str:
    pos = 0
    while match := PROLOG.match(text, pos):
        if match.end() == pos:
            break
        pos = match.end()
    root = ROOT.match(text, pos)
    if root is None:
        raise ReportError(
            f"cannot tell the XML report's format: no root element in its first bytes; {EXPECTED}"
        )
    name = root.group(2)
    if name in XML_ROOTS:
        return XML_ROOTS[name]
    if name == "report" and "wapiti" in text[pos : pos + 4096].lower():
        return "wapiti"
    raise ReportError(f"an XML report with a <{name[:40]}> root is not one cloudeye reads; {EXPECTED}")


def _array_format(text: str) -> str:
    first = text[1:].lstrip(" \t\r\n")
    if first.startswith("]"):
        raise ReportError(
            "the report is an empty JSON array: nothing tells which scanner wrote it (give format=)"
        )
    if not first.startswith("{"):
        raise ReportError(
            f"cannot tell the format of a JSON array whose first item is not an object; {EXPECTED}"
        )
    found = _format_of_keys(first)
    if found not in ARRAY_FORMATS:
        raise ReportError(f"cannot tell the format of this JSON array from its first item; {EXPECTED}")
    return found


def _format_of_keys(text: str) -> str | None:
    for key, value_start in top_level_keys(text):
        if key == "vulnerabilities" and value_start in ("{", "["):
            return "wapiti" if value_start == "{" else "nikto"
        if key in KEYS:
            return KEYS[key]
    return None


def top_level_keys(text: str) -> Iterator[tuple[str, str]]:
    """(key, first character of its value) of the outermost object at the start of `text` (which may be
    cut anywhere)."""
    depth = 0
    pos = 0
    while True:
        token = TOKEN.search(text, pos)
        if token is None:
            return
        char = token.group()
        if char == '"':
            string = STRING.match(text, token.start())
            if string is None:
                return  # the head ends inside a string
            pos = string.end()
            colon = COLON.match(text, pos) if depth == 1 else None
            if colon:
                try:
                    yield json.loads(string.group()), text[colon.end() : colon.end() + 1]
                except ValueError:
                    return
            continue
        pos = token.end()
        depth += 1 if char in "{[" else -1
        if depth <= 0:
            return


def format_from_filename(name: str) -> str | None:
    """A format named by a report's file name, e.g. `nightly.zap.xml` or `xray.json`: one of the parts
    of the name before its extension; None when none names a format."""
    parts = name.lower().split(".")[:-1]
    return next((part for part in reversed(parts) if part in MODULES), None)


def _nothing(stream) -> Iterator[ParsedFinding]:
    """The findings of a report that is only whitespace: none (and it must be only whitespace)."""
    while chunk := stream.read(HEAD_BYTES):
        if chunk.strip(b" \t\r\n\xef\xbb\xbf"):
            raise ReportError("the report starts with more than 1 MB of blank space; that is not a report")
    yield from ()


def open_report(stream, format: str | None = None) -> tuple[ReportInfo, Iterator[ParsedFinding]]:
    """(info, findings) of a binary stream. The findings are parsed lazily, as they are iterated;
    `info.scanners` is complete once they have all been read. ReportError on a wrong or unknown format.
    A report with nothing in it but whitespace, with its format given, is a scan that found nothing.
    """
    if hasattr(stream, "peek"):
        head = stream.peek(HEAD_BYTES)[:HEAD_BYTES]
    else:
        head = stream.read(HEAD_BYTES)
        stream = Prepended(head, stream)
    if format is None:
        format = detect_format(head)
    elif format not in PARSERS:
        raise ReportError(f"unknown format {format!r}; one of {', '.join(FORMATS)}")
    elif not _head_text(head):
        info = ReportInfo(format=format)
        if MODULES[format].SCANNER:
            info.add_scanner(MODULES[format].SCANNER)
        return info, _nothing(stream)
    else:
        try:
            detected = detect_format(head)
        except ReportError:
            detected = None  # let the parser say precisely what is wrong
        if detected is not None and detected != format:
            raise ReportError(f"the report was sent as {format} but its content is a {detected} report")
    info = ReportInfo(format=format)
    return info, PARSERS[format](stream, info)
