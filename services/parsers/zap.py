"""OWASP ZAP "traditional JSON" report (`-J report.json`, or the Traditional JSON report template).

One finding per alert (`pluginid`) and instance: the instance's URI and parameter are its location, so
one alert on two pages is two findings. ZAP has no "critical": risk codes 0..3 are info..high.
"""

import html
import re
from collections.abc import Iterator

from services.parsers.base import ParsedFinding, ReportError, ReportInfo, as_text, split_location
from services.parsers.jsonstream import loads

SCANNER = "zap"
RISK = {"0": "info", "1": "low", "2": "medium", "3": "high"}
TAG = re.compile(r"<[^>]+>")
CWE = re.compile(r"[0-9]{1,9}")
URL = re.compile(r"https?://[^\s<>\"']+")


def parse(stream, info: ReportInfo) -> Iterator[ParsedFinding]:
    info.add_scanner(SCANNER)
    report = loads(stream.read(), "the ZAP report")
    if not isinstance(report, dict) or "site" not in report:
        raise ReportError("a ZAP report is a JSON object with a 'site' list (is this a ZAP JSON report?)")
    sites = report["site"]
    if isinstance(sites, dict):  # some ZAP versions write a single site as an object
        sites = [sites]
    if not isinstance(sites, list):
        raise ReportError("'site' must be a list of sites")
    for s_index, site in enumerate(sites):
        where_site = f"site[{s_index}]"
        if not isinstance(site, dict):
            raise ReportError(f"{where_site} must be an object")
        alerts = site.get("alerts") or []
        if not isinstance(alerts, list):
            raise ReportError(f"{where_site}.alerts must be a list")
        site_url = as_text(site.get("@name")) or ""
        for a_index, alert in enumerate(alerts):
            yield from _alert(alert, site_url, f"{where_site}.alerts[{a_index}]")


def _alert(alert, site_url: str, where: str) -> Iterator[ParsedFinding]:
    if not isinstance(alert, dict):
        raise ReportError(f"{where} must be an object")
    plugin = as_text(alert.get("pluginid"))
    if not plugin:
        raise ReportError(f"{where}: an alert needs a 'pluginid'")
    title = as_text(alert.get("name")) or as_text(alert.get("alert")) or f"ZAP alert {plugin}"
    severity = _severity(alert, where)
    description = _plain(alert.get("desc"))
    solution = _plain(alert.get("solution"))
    if solution:
        description = f"{description}\n\nSolution: {solution}" if description else f"Solution: {solution}"
    cwe = as_text(alert.get("cweid"))
    cwe = f"CWE-{int(cwe)}" if cwe and CWE.fullmatch(cwe.strip()) and int(cwe) > 0 else None
    references = URL.findall(as_text(alert.get("reference")) or "")
    instances = alert.get("instances")
    if instances is None:
        instances = []
    if not isinstance(instances, list):
        raise ReportError(f"{where}.instances must be a list")
    if not instances:  # an alert without instances still stands, on the site itself
        instances = [{"uri": site_url}]
    for i_index, instance in enumerate(instances):
        if not isinstance(instance, dict):
            raise ReportError(f"{where}.instances[{i_index}] must be an object")
        uri = as_text(instance.get("uri")) or site_url
        host, path = split_location(uri)
        yield ParsedFinding(
            scanner=SCANNER,
            rule_id=plugin,
            title=title,
            severity=severity,
            host=host,
            path=path,
            param=as_text(instance.get("param")) or "",
            location=uri,
            description=description,
            cwe=cwe,
            references=references,
            evidence=as_text(instance.get("evidence")) or as_text(instance.get("attack")),
        )


def _severity(alert: dict, where: str) -> str:
    code = as_text(alert.get("riskcode"))
    if code is not None and code.strip() in RISK:
        return RISK[code.strip()]
    raise ReportError(f"{where}: 'riskcode' must be 0, 1, 2 or 3, found {str(alert.get('riskcode'))[:40]!r}")


def _plain(value) -> str | None:
    """ZAP writes HTML paragraphs; keep the text."""
    text = as_text(value)
    if not text:
        return None
    text = TAG.sub("\n", text)
    text = html.unescape(text)
    return re.sub(r"\n\s*\n+", "\n\n", text).strip() or None
