"""OWASP ZAP reports: traditional JSON (`zap-baseline.py -J report.json`), traditional XML
(`zap-baseline.py -x report.xml`, the format most CI set-ups keep) and the XML "plus" template
(`traditional-xml-plus`, which adds each instance's request and response).

One finding per alert (`pluginid`) and instance: the instance's URI and parameter are its location, so
one alert on two pages is two findings. ZAP has no "critical": risk codes 0..3 are info..high. ZAP
before 2.6 wrote one <alertitem> per URI, with <uri> and <param> on the alert itself: that is one
instance. The XML is streamed (one <alertitem> in memory at a time, without the requests and responses
of xml-plus); the JSON report is read whole.
"""

from collections.abc import Iterator

from services.parsers.base import (
    ParsedFinding,
    ReportError,
    ReportInfo,
    as_text,
    html_text,
    links,
    split_location,
)
from services.parsers.jsonstream import loads
from services.parsers.xmlstream import child_texts, is_xml, iter_xml

SCANNER = "zap"
RISK = {"0": "info", "1": "low", "2": "medium", "3": "high"}
BULKY = frozenset({"requestheader", "requestbody", "responseheader", "responsebody"})  # xml-plus


def parse(stream, info: ReportInfo) -> Iterator[ParsedFinding]:
    info.add_scanner(SCANNER)
    if is_xml(stream.peek(1 << 16)):
        yield from _parse_xml(stream)
    else:
        yield from _parse_json(stream)


def _parse_json(stream) -> Iterator[ParsedFinding]:
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


def _parse_xml(stream) -> Iterator[ParsedFinding]:
    site_url, site_number, alert_number = "", 0, 0
    instances: list[dict] = []
    events = iter_xml(
        stream,
        roots=("OWASPZAPReport",),
        ends=frozenset({"alertitem", "instance"}) | BULKY,
        starts=frozenset({"site"}),
        what="the ZAP XML report",
    )
    for event, element in events:
        name = element.tag
        if event == "start":
            site_url, site_number, alert_number = element.get("name", "").strip(), site_number + 1, 0
        elif name == "instance":
            instances.append(child_texts(element))
        elif name == "alertitem":
            alert_number += 1
            alert = child_texts(element)
            if not instances and alert.get("uri"):  # ZAP < 2.6: the alert is its one instance
                instances = [{field: alert.get(field) for field in ("uri", "param", "attack", "evidence")}]
            alert["instances"] = instances
            instances = []
            yield from _alert(alert, site_url, f"site {site_number}, alert {alert_number}")


def _alert(alert, site_url: str, where: str) -> Iterator[ParsedFinding]:
    if not isinstance(alert, dict):
        raise ReportError(f"{where} must be an object")
    plugin = as_text(alert.get("pluginid"))
    if not plugin:
        raise ReportError(f"{where}: an alert needs a 'pluginid'")
    plugin = plugin.strip()
    title = as_text(alert.get("name")) or as_text(alert.get("alert")) or f"ZAP alert {plugin}"
    severity = _severity(alert, where)
    description = html_text(alert.get("desc"))
    solution = html_text(alert.get("solution"))
    if solution:
        description = f"{description}\n\nSolution: {solution}" if description else f"Solution: {solution}"
    cwe = (as_text(alert.get("cweid")) or "").strip()
    cwe = f"CWE-{int(cwe)}" if cwe.isdigit() and int(cwe) > 0 else None
    references = links(as_text(alert.get("reference")))
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
        uri = (as_text(instance.get("uri")) or site_url).strip()
        host, path = split_location(uri)
        yield ParsedFinding(
            scanner=SCANNER,
            rule_id=plugin,
            title=title.strip(),
            severity=severity,
            host=host,
            path=path,
            param=(as_text(instance.get("param")) or "").strip(),
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
