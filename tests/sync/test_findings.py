"""Built-in findings (scanner `cloudeye`): missing security headers and soon-expiring certificates,
with the import rules (dedup, fixed when gone, reopened when back, triage respected) — through the API."""

from sync import builtin_findings
from sync.probe import Prober, make_ssl_context
from tests.sync.conftest import SECURE_HEADERS, WebServer

HEADER_RULES = {
    "missing-header-content-security-policy",
    "missing-header-x-content-type-options",
    "missing-header-x-frame-options",
    "missing-header-referrer-policy",
}


def _site(caller, url):
    response = caller.post("/sites", json={"name": "s", "url": url})
    assert response.status_code == 201
    return response.get_json()["id"]


def _findings(caller, site_id, status=None):
    query = f"/bugs?site_id={site_id}&scanner=cloudeye&per_page=100"
    if status:
        query += f"&status={status}"
    return {f["rule_id"]: f for f in caller.get(query).get_json()["items"]}


def _recheck(caller, worker, site_id):
    assert caller.post(f"/sites/{site_id}/check").status_code == 202
    return worker.run_once()


def test_missing_headers_become_findings_and_are_fixed_when_added(operator, worker, web):
    site_id = _site(operator, web.set("/"))
    worker.run_once()
    found = _findings(operator, site_id)
    assert set(found) == HEADER_RULES  # plain http: no HSTS finding
    csp = found["missing-header-content-security-policy"]
    assert csp["status"] == "open" and csp["severity"] == "medium" and csp["scanner"] == "cloudeye"
    assert csp["location"] == web.url("/") and csp["host"] == f"127.0.0.1:{web.port}"

    web.set("/", headers=SECURE_HEADERS)
    _recheck(operator, worker, site_id)
    after = _findings(operator, site_id)
    assert {rule: f["status"] for rule, f in after.items()} == dict.fromkeys(HEADER_RULES, "fixed")
    assert all(f["id"] == found[rule]["id"] for rule, f in after.items())  # the same findings, not new ones

    web.set("/", headers={k: v for k, v in SECURE_HEADERS.items() if k != "Referrer-Policy"})
    _recheck(operator, worker, site_id)
    assert set(_findings(operator, site_id, "open")) == {"missing-header-referrer-policy"}


def test_csp_frame_ancestors_counts_as_clickjacking_protection(operator, worker, web):
    headers = {"Content-Security-Policy": "frame-ancestors 'self'", "X-Content-Type-Options": "nosniff"}
    site_id = _site(operator, web.set("/", headers=headers))
    worker.run_once()
    assert set(_findings(operator, site_id)) == {"missing-header-referrer-policy"}


def test_an_unchanged_answer_is_not_rewritten_every_check(operator, worker, web):
    site_id = _site(operator, web.set("/"))
    assert worker.run_once().findings_reconciled == 1
    first = _findings(operator, site_id)
    assert _recheck(operator, worker, site_id).findings_reconciled == 0
    builtin_findings.forget_fingerprint(
        site_id
    )  # what SYNC_FINDINGS_REFRESH_S does: reconcile again now and then
    assert _recheck(operator, worker, site_id).findings_reconciled == 1
    again = _findings(operator, site_id)
    rule = "missing-header-referrer-policy"
    assert (
        again[rule]["id"] == first[rule]["id"] and again[rule]["last_seen_at"] > first[rule]["last_seen_at"]
    )


def test_triaged_findings_are_left_alone_and_a_down_site_changes_nothing(operator, worker, web):
    site_id = _site(operator, web.set("/"))
    worker.run_once()
    rule = "missing-header-referrer-policy"
    finding = _findings(operator, site_id)[rule]
    assert operator.patch(f"/bugs/{finding['id']}", json={"status": "accepted_risk"}).status_code == 200
    builtin_findings.forget_fingerprint(site_id)
    _recheck(operator, worker, site_id)
    assert _findings(operator, site_id)[rule]["status"] == "accepted_risk"

    web.set("/", status=500, headers=SECURE_HEADERS)  # an error page says nothing about the site
    builtin_findings.forget_fingerprint(site_id)
    _recheck(operator, worker, site_id)
    assert len(_findings(operator, site_id, "open")) == 3


def test_a_certificate_expiring_soon_is_a_finding_until_renewed(operator, worker, certificates):
    worker.prober = Prober(make_ssl_context(certificates.ca_file))
    server = WebServer(certificates.server_context(days_valid=5))
    try:
        url = server.set(
            "/", headers={k: v for k, v in SECURE_HEADERS.items() if k != "Strict-Transport-Security"}
        )
        site_id = _site(operator, url)
        worker.run_once()
    finally:
        server.close()
    found = _findings(operator, site_id)
    assert set(found) == {"tls-certificate-expiring", "missing-header-strict-transport-security"}
    tls = operator.get(f"/bugs/{found['tls-certificate-expiring']['id']}").get_json()
    assert tls["severity"] == "high" and tls["status"] == "open"
    assert certificates.not_after.date().isoformat() in tls["description"]

    renewed = WebServer(certificates.server_context(days_valid=90))
    try:
        url = renewed.set("/", headers=SECURE_HEADERS)
        assert operator.patch(f"/sites/{site_id}", json={"url": url}).status_code == 200
        _recheck(operator, worker, site_id)
    finally:
        renewed.close()
    # The port changed with the new server, so these are other dedup keys: the old ones are fixed.
    assert _findings(operator, site_id, "open") == {}
    assert (
        _findings(operator, site_id, "fixed")["tls-certificate-expiring"]["id"]
        == found["tls-certificate-expiring"]["id"]
    )
