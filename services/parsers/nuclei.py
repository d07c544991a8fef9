"""nuclei results: `nuclei -jsonl` output (one JSON object a line) or `-json-export` (a JSON array).

One finding per template and matcher on one matched location: the rule is `template-id` plus
`matcher-name` when the template has several matchers (`http-missing-security-headers:csp`).
"""

import json
from collections.abc import Iterator

from services.parsers.base import (
    ParsedFinding,
    ReportError,
    ReportInfo,
    as_text,
    normalise_severity,
    split_location,
)
from services.parsers.jsonstream import JsonReader, Prepended

SCANNER = "nuclei"


def parse(stream, info: ReportInfo) -> Iterator[ParsedFinding]:
    info.add_scanner(SCANNER)
    first = stream.readline().removeprefix(b"\xef\xbb\xbf")
    line_no = 1
    while first and not first.strip():  # skip leading blank lines
        first = stream.readline()
        line_no += 1
    if not first:
        return  # an empty report: a scan that found nothing
    if first.lstrip().startswith(b"["):
        yield from _parse_array(Prepended(first, stream))
        return
    yield from _parse_lines(first, line_no, stream)


def _parse_lines(first: bytes, first_no: int, stream) -> Iterator[ParsedFinding]:
    line_no = first_no
    line = first
    while line:
        if line.strip():
            yield from_result(_decode_line(line, line_no), f"line {line_no}")
        line = stream.readline()
        line_no += 1


def _decode_line(line: bytes, line_no: int) -> dict:
    try:
        obj = json.loads(line.rstrip(b"\r\n"))
    except json.JSONDecodeError as exc:
        raise ReportError(f"line {line_no} is not valid JSON: {exc.msg} (column {exc.colno})") from None
    except UnicodeDecodeError as exc:
        raise ReportError(f"line {line_no} is not valid UTF-8 (byte {exc.start + 1} of the line)") from None
    except (ValueError, RecursionError):
        raise ReportError(f"line {line_no} is not valid JSON") from None
    if not isinstance(obj, dict):
        raise ReportError(
            f"line {line_no}: a nuclei result must be a JSON object, found {type(obj).__name__}"
        )
    return obj


def _parse_array(stream) -> Iterator[ParsedFinding]:
    reader = JsonReader(stream)
    for index, obj in enumerate(reader.iter_array("the array of nuclei results"), 1):
        if not isinstance(obj, dict):
            raise ReportError(
                f"item {index}: a nuclei result must be a JSON object, found {type(obj).__name__}"
            )
        yield from_result(obj, f"item {index}")
    reader.end()


def from_result(obj: dict, where: str) -> ParsedFinding:
    template = as_text(obj.get("template-id")) or as_text(obj.get("templateID"))
    if not template:
        raise ReportError(f"{where}: a nuclei result needs a 'template-id' (is this a nuclei report?)")
    meta = obj.get("info")
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise ReportError(f"{where}: 'info' must be an object")
    matcher = as_text(obj.get("matcher-name"))
    rule = f"{template}:{matcher}" if matcher else template
    name = as_text(meta.get("name")) or template
    location = as_text(obj.get("matched-at")) or as_text(obj.get("host")) or as_text(obj.get("url")) or ""
    host, path = split_location(location)
    classification = meta.get("classification") if isinstance(meta.get("classification"), dict) else {}
    extracted = obj.get("extracted-results")
    return ParsedFinding(
        scanner=SCANNER,
        rule_id=rule,
        title=f"{name}: {matcher}" if matcher else name,
        severity=normalise_severity(meta.get("severity")),
        host=host,
        path=path,
        param=as_text(obj.get("fuzzing_parameter")) or "",
        location=location,
        description=as_text(meta.get("description")),
        cwe=_cwe(classification.get("cwe-id")),
        references=_strings(meta.get("reference")),
        evidence="\n".join(_strings(extracted)) or None,
    )


def _strings(value) -> list[str]:
    if isinstance(value, list):
        return [text for text in (as_text(item) for item in value) if text]
    text = as_text(value)
    return [text] if text else []


def _cwe(value) -> str | None:
    ids = _strings(value)
    return ", ".join(item.upper() for item in ids) if ids else None
