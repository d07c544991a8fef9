"""Chaitin xray: `xray webscan --json-output report.json` (a JSON array of vulnerabilities, streamed one
at a time), or the same objects one a line (as saved from `--webhook-output`, with or without its
`{"type": "web_vuln", "data": {...}}` envelope; `web_statistic` lines are skipped).

Two shapes of a vulnerability:
- xray 1.x: `{"plugin": "xss", "vuln_class": "reflected", "detail": {"url", "param": {"key",
  "position", "value"}, "payload", "request", "response"}, "target": {"url"}, "create_time"}`;
- later versions: `{"plugin": "xss/reflected/default", "detail": {"addr", "payload", "snapshot",
  "extra": {"param": {"key", "position", "value"}, "title", "links", "level"}}, "target": {"url"}}`.

One finding per plugin (the rule: `xss/reflected/default`, or `xss/reflected` from the 1.x fields) on
one URL path (without its query, which carries xray's random payloads) and parameter. xray reports
carry no severity: it comes from the plugin family (the part before the first `/`) through FAMILIES
below, the table docs/scanner-reports.md documents; a POC (`phantasm`) that names its own level keeps
it.
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

SCANNER = "xray"
# family -> (what it finds, severity); keep the table in docs/scanner-reports.md in step.
FAMILIES = {
    "cmd-injection": ("Command or code injection", "critical"),
    "struts": ("Apache Struts2 remote code execution", "critical"),
    "thinkphp": ("ThinkPHP remote code execution", "critical"),
    "shiro": ("Apache Shiro deserialization", "critical"),
    "fastjson": ("Fastjson deserialization", "critical"),
    "xstream": ("XStream deserialization", "critical"),
    "sqldet": ("SQL injection", "high"),
    "xxe": ("XML external entity (XXE)", "high"),
    "ssrf": ("Server-side request forgery (SSRF)", "high"),
    "path-traversal": ("Path traversal", "high"),
    "upload": ("Unrestricted file upload", "high"),
    "brute-force": ("Weak password", "high"),
    "ssti": ("Server-side template injection", "high"),
    "phantasm": ("Known vulnerability (POC)", "high"),
    "xss": ("Cross-site scripting (XSS)", "medium"),
    "redirect": ("Open redirect", "medium"),
    "crlf-injection": ("CRLF injection", "medium"),
    "dirscan": ("Sensitive file or directory", "medium"),
    "jsonp": ("JSONP data leak", "low"),
    "baseline": ("Baseline check (TLS, headers, cookies)", "low"),
}
UNKNOWN_FAMILY_SEVERITY = "medium"


def parse(stream, info: ReportInfo) -> Iterator[ParsedFinding]:
    info.add_scanner(SCANNER)
    for where, obj in iter_records(stream, "xray vulnerability"):
        if "data" in obj and "plugin" not in obj:  # a webhook message
            if obj.get("type") != "web_vuln":
                continue
            obj = obj["data"]
            if not isinstance(obj, dict):
                raise ReportError(f"{where}: 'data' must be an object")
        yield from_vulnerability(obj, where)


def family_of(plugin: str) -> str:
    return plugin.split("/", 1)[0].strip().lower().replace("_", "-")


def _object(value, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ReportError(f"{where} must be an object")
    return value


def from_vulnerability(obj: dict, where: str) -> ParsedFinding:
    plugin = (as_text(obj.get("plugin")) or "").strip().strip("/")
    if not plugin:
        raise ReportError(f"{where}: an xray vulnerability needs its 'plugin' (is this an xray report?)")
    vuln_class = (as_text(obj.get("vuln_class")) or "").strip()
    rule = f"{plugin}/{vuln_class}" if vuln_class and "/" not in plugin else plugin
    detail = _object(obj.get("detail"), f"{where}.detail")
    extra = _object(detail.get("extra"), f"{where}.detail.extra")
    target = _object(obj.get("target"), f"{where}.target")
    param = _object(
        extra.get("param") if "param" in extra else detail.get("param"), f"{where}: the parameter"
    )
    location = (
        as_text(detail.get("addr")) or as_text(detail.get("url")) or as_text(target.get("url")) or ""
    ).strip()
    host, path = split_location(location)
    path = path.split("?", 1)[0]  # the query carries xray's random payloads: the parameter says where
    family = family_of(plugin)
    kind, severity = FAMILIES.get(family, (None, UNKNOWN_FAMILY_SEVERITY))
    level = normalise_severity(extra.get("level"), default="")
    if family == "phantasm" and level:
        severity = level
    variant = rule.split("/", 1)[1].removesuffix("/default") if "/" in rule else ""
    title = f"{kind}: {variant}" if kind and variant else (kind or rule)
    payload = as_text(detail.get("payload"))
    description = "\n".join(
        line
        for line in (
            as_text(extra.get("title")),
            f"xray plugin: {rule}",
            f"payload: {payload}" if payload else None,
        )
        if line
    )
    links = extra.get("links")
    return ParsedFinding(
        scanner=SCANNER,
        rule_id=rule,
        title=title.strip(),
        severity=severity,
        host=host,
        path=path,
        param=(as_text(param.get("key")) or "").strip(),
        location=location,
        description=description,
        references=[
            url
            for url in (links if isinstance(links, list) else [])
            if isinstance(url, str) and urls(url) == [url]
        ],
        evidence=payload,
    )
