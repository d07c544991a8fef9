"""Which format a report is in, told from its first bytes; and the one entry point to parse one.

A report starting with `[` is a nuclei JSON array. An object is recognised by its top-level keys:
`template-id` (a nuclei JSON line), `runs` (SARIF), `site`/`@programName` (ZAP), `findings` (generic).
Only the first value's top-level keys count, so a key quoted inside a description never misleads.
"""

import json
import re
from collections.abc import Iterator

from services.models import FORMATS
from services.parsers import generic, nuclei, sarif, zap
from services.parsers.base import ParsedFinding, ReportError, ReportInfo
from services.parsers.jsonstream import Prepended

HEAD_BYTES = 1 << 20
PARSERS = {"nuclei": nuclei.parse, "zap": zap.parse, "sarif": sarif.parse, "generic": generic.parse}
KEYS = {
    "template-id": "nuclei",
    "templateID": "nuclei",
    "matched-at": "nuclei",
    "runs": "sarif",
    "site": "zap",
    "@programName": "zap",
    "findings": "generic",
}
TOKEN = re.compile(r'["{}\[\]]')
STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
COLON = re.compile(r"\s*:")
EXPECTED = (
    "expected nuclei JSON lines or a JSON array, a ZAP JSON report, SARIF 2.1.0, "
    'or the generic {"findings": [...]}'
)

assert set(PARSERS) == set(FORMATS)


def detect_format(head: bytes) -> str:
    """The format of a report from its first bytes; ReportError when it cannot be told."""
    text = head.decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    if not text:
        raise ReportError("the report is empty; nothing tells its format (give format=)")
    if text[0] == "[":
        return "nuclei"
    if text[0] != "{":
        raise ReportError(f"the report is not JSON: it starts with {text[:20]!r}; {EXPECTED}")
    for key in top_level_keys(text):
        if key in KEYS:
            return KEYS[key]
    raise ReportError(f"cannot tell the report's format from its content; {EXPECTED}")


def top_level_keys(text: str) -> Iterator[str]:
    """Keys of the outermost object at the start of `text` (which may be cut anywhere)."""
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
            if depth == 1 and COLON.match(text, pos):
                try:
                    yield json.loads(string.group())
                except ValueError:
                    return
            continue
        pos = token.end()
        depth += 1 if char in "{[" else -1
        if depth <= 0:
            return


def open_report(stream, format: str | None = None) -> tuple[ReportInfo, Iterator[ParsedFinding]]:
    """(info, findings) of a binary stream. The findings are parsed lazily, as they are iterated;
    `info.scanners` is complete once they have all been read. ReportError on a wrong or unknown format.
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
    else:
        try:
            detected = detect_format(head)
        except ReportError:
            detected = None  # let the parser say precisely what is wrong
        if detected is not None and detected != format:
            raise ReportError(f"the report was sent as {format} but its content is a {detected} report")
    info = ReportInfo(format=format)
    return info, PARSERS[format](stream, info)
