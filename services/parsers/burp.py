"""Burp Suite issues XML: in Burp, select issues, "Report selected issues" (or "Save selected issues"),
format XML; Burp Suite Enterprise and DAST export the same document.

    <issues burpVersion="..." exportTime="..."><issue>
      <serialNumber/> <type>5245344</type> <name/> <host ip="...">https://shop.example</host>
      <path>/search</path> <location>/search [q parameter]</location> <severity>High</severity>
      <confidence/> <issueBackground/> <remediationBackground/> <references/>
      <vulnerabilityClassifications/> <issueDetail/> <remediationDetail/> <requestresponse>...
    </issue></issues>

One finding per issue type (`type`, Burp's numeric id) on one host, path and insertion point: the part
of <location> in brackets names the parameter, cookie or header (`[q parameter]` -> `q`). Severities
High, Medium, Low, Information map to high..info; an issue a tester set to "False positive" is imported
as false_positive. The requests and responses (possibly megabytes of base64 each) are skipped as they
stream past.
"""

import re
from collections.abc import Iterator

from services.parsers.base import (
    ParsedFinding,
    ReportError,
    ReportInfo,
    first_cwe,
    html_text,
    links,
    normalise_severity,
    split_location,
)
from services.parsers.xmlstream import iter_xml, text

SCANNER = "burp"
INSERTION_POINT = re.compile(r"\[([^\[\]]+)\]\s*$")


def parse(stream, info: ReportInfo) -> Iterator[ParsedFinding]:
    info.add_scanner(SCANNER)
    events = iter_xml(
        stream,
        roots=("issues",),
        ends=frozenset({"issue", "requestresponse", "collaboratorEvent"}),
        what="the Burp issues report",
    )
    number = 0
    for _, element in events:
        if element.tag == "issue":
            number += 1
            yield _issue(element, f"issue {number}")


def _issue(issue, where: str) -> ParsedFinding:
    issue_type = text(issue, "type")
    name = text(issue, "name")
    if not issue_type and not name:
        raise ReportError(f"{where} has neither <type> nor <name> (is this a Burp issues report?)")
    base = (text(issue, "host") or "").rstrip("/")
    path = text(issue, "path") or ""
    location = text(issue, "location") or path
    point = INSERTION_POINT.search(location)
    param = point.group(1).strip().removesuffix(" parameter") if point else ""
    url = base + path if base else path
    host, url_path = split_location(url) if url else ("", "")
    raw_severity = (text(issue, "severity") or "").lower()
    false_positive = raw_severity.replace("_", " ") == "false positive"
    detail = html_text(text(issue, "issueDetail"))
    background = html_text(text(issue, "issueBackground"))
    remediation = (text(issue, "remediationDetail"), text(issue, "remediationBackground"))
    solution = "\n\n".join(part for part in map(html_text, remediation) if part)
    description = "\n\n".join(part for part in (detail, background) if part) or None
    if solution:
        description = f"{description}\n\nSolution: {solution}" if description else f"Solution: {solution}"
    classifications = text(issue, "vulnerabilityClassifications")
    return ParsedFinding(
        scanner=SCANNER,
        rule_id=issue_type or name,
        title=name or f"Burp issue {issue_type}",
        severity="info" if false_positive else normalise_severity(raw_severity),
        host=host,
        path=url_path,
        param=param,
        location=f"{url} [{point.group(1).strip()}]" if point else url,
        description=description,
        cwe=first_cwe(classifications),
        references=list(dict.fromkeys(links(text(issue, "references")) + links(classifications))),
        evidence=detail,
        status="false_positive" if false_positive else None,
    )
