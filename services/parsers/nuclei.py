"""nuclei results: `nuclei -jsonl` output (one JSON object a line) or `-json-export` (a JSON array).

One finding per template and matcher on one matched location: the rule is `template-id` plus
`matcher-name` when the template has several matchers (`http-missing-security-headers:csp`).

Every field spelling nuclei has written is read: v3's `template-id`, `matcher-name`, `matched-at`,
`extracted-results`; v2's `templateID`, `matcher_name`, `matched`, `extracted_results`; v2.0's flat
results (`template`, `name`, `severity` beside the result instead of under `info`). The location is
the first of `matched-at`, `matched`, `url`, `host`, `ip`. Tags, references, authors and CWE ids may be
one string or a list.
"""

from collections.abc import Iterator

from services.parsers.base import (
    ParsedFinding,
    ReportError,
    ReportInfo,
    as_text,
    normalise_severity,
    split_location,
    urls,
)
from services.parsers.jsonstream import iter_records

SCANNER = "nuclei"
META = ("name", "severity", "description", "reference", "tags", "classification")


def parse(stream, info: ReportInfo) -> Iterator[ParsedFinding]:
    info.add_scanner(SCANNER)
    for where, obj in iter_records(stream, "nuclei result"):
        yield from_result(obj, where)


def _first(obj: dict, *names: str) -> str | None:
    for name in names:
        value = as_text(obj.get(name))
        if value:
            return value.strip()
    return None


def _template(obj: dict) -> str | None:
    template = _first(obj, "template-id", "templateID")
    if template:
        return template
    path = _first(obj, "template")  # v2.0 wrote the id here; v3 writes the template's path
    if path and path.endswith((".yaml", ".yml")):
        path = path.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return path


def from_result(obj: dict, where: str) -> ParsedFinding:
    template = _template(obj)
    if not template:
        raise ReportError(f"{where}: a nuclei result needs a 'template-id' (is this a nuclei report?)")
    meta = obj.get("info")
    if meta is None:
        meta = {name: obj[name] for name in META if name in obj}  # v2.0: no "info" object
    if not isinstance(meta, dict):
        raise ReportError(f"{where}: 'info' must be an object")
    matcher = _first(obj, "matcher-name", "matcher_name")
    rule = f"{template}:{matcher}" if matcher else template
    name = as_text(meta.get("name")) or template
    location = _first(obj, "matched-at", "matched", "url", "host", "ip") or ""
    host, path = split_location(location)
    classification = meta.get("classification") if isinstance(meta.get("classification"), dict) else {}
    extracted = obj.get("extracted-results", obj.get("extracted_results"))
    description = as_text(meta.get("description"))
    tags = _strings(meta.get("tags"), split=True)
    if tags:
        description = (
            f"{description}\n\nTags: {', '.join(tags)}" if description else f"Tags: {', '.join(tags)}"
        )
    return ParsedFinding(
        scanner=SCANNER,
        rule_id=rule,
        title=f"{name}: {matcher}" if matcher else name,
        severity=normalise_severity(meta.get("severity")),
        host=host,
        path=path,
        param=_first(obj, "fuzzing_parameter", "fuzzing-parameter") or "",
        location=location,
        description=description,
        cwe=_cwe(classification.get("cwe-id")),
        references=_references(meta.get("reference")),
        evidence="\n".join(_strings(extracted)) or None,
    )


def _strings(value, split: bool = False) -> list[str]:
    """A list of texts from a string or a list; `split` also splits a string on commas."""
    items = value if isinstance(value, list) else [value]
    texts = [text.strip() for text in (as_text(item) for item in items) if text]
    if split:
        texts = [part.strip() for text in texts for part in text.split(",") if part.strip()]
    return texts


def _references(value) -> list[str]:
    """References as a list, or one string holding one or several URLs."""
    found = []
    for text in _strings(value):
        found.extend(urls(text) or [text])
    return list(dict.fromkeys(found))


def _cwe(value) -> str | None:
    ids = _strings(value, split=True)
    return ", ".join(item.upper() for item in ids) if ids else None
