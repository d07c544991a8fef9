"""Findings cloudeye raises itself, from the answers its probes already get (scanner `cloudeye`).

- a security header missing from the page's final answer: Strict-Transport-Security (https only),
  Content-Security-Policy, X-Content-Type-Options, X-Frame-Options (or CSP `frame-ancestors`),
  Referrer-Policy;
- the TLS certificate expires within 14 days.

They go through `services.imports.reconcile_findings` with `close_missing=True`, so the import rules apply
(dedup, reopen when fixed, triaged ones untouched) and a condition that went away becomes `fixed`.
Only answers with an accepted status are judged: an error page says nothing about the site's headers,
and a failed probe says nothing at all.

A site answering the same way every minute would rewrite the same findings every minute; the set of
findings is fingerprinted in the cache, and reconciled only when it changes or every
SYNC_FINDINGS_REFRESH_S (which also moves `last_seen_at` and re-opens findings someone marked fixed
while the condition is still there).
"""

import hashlib
import logging
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from services.cache import cache
from services.parsers.base import ParsedFinding
from sync.probe import ProbeResult

log = logging.getLogger(__name__)

SCANNER = "cloudeye"
TLS_WARNING_DAYS = 14
OWASP_HEADERS = "https://owasp.org/www-project-secure-headers/"

# (rule, header, severity, title, why)
HEADER_RULES = (
    (
        "missing-header-strict-transport-security",
        "strict-transport-security",
        "low",
        "Strict-Transport-Security header not set",
        "Without HSTS a browser may be downgraded to plain HTTP by an attacker on the network.",
    ),
    (
        "missing-header-content-security-policy",
        "content-security-policy",
        "medium",
        "Content-Security-Policy header not set",
        "A Content-Security-Policy limits where scripts may come from and blunts cross-site scripting.",
    ),
    (
        "missing-header-x-content-type-options",
        "x-content-type-options",
        "low",
        "X-Content-Type-Options header not set",
        "Without `X-Content-Type-Options: nosniff` browsers may interpret responses as another type.",
    ),
    (
        "missing-header-x-frame-options",
        "x-frame-options",
        "medium",
        "Anti-clickjacking header not set (X-Frame-Options or CSP frame-ancestors)",
        "The page can be framed by any other site, which enables clickjacking.",
    ),
    (
        "missing-header-referrer-policy",
        "referrer-policy",
        "info",
        "Referrer-Policy header not set",
        "Without a Referrer-Policy, full URLs may leak to other sites in the Referer header.",
    ),
)


def evaluate(result: ProbeResult, now: datetime) -> list[ParsedFinding] | None:
    """The findings this answer shows, or None when it tells nothing (no accepted answer)."""
    if not result.status_accepted or result.headers is None or not result.final_url:
        return None
    parts = urlsplit(result.final_url)
    host = parts.netloc.lower()
    path = parts.path or "/"
    headers = result.headers
    findings = []
    for rule, header, severity, title, why in HEADER_RULES:
        if rule == "missing-header-strict-transport-security" and parts.scheme != "https":
            continue
        if header in headers:
            continue
        if header == "x-frame-options" and "frame-ancestors" in headers.get("content-security-policy", ""):
            continue
        findings.append(
            ParsedFinding(
                scanner=SCANNER,
                rule_id=rule,
                title=title,
                severity=severity,
                host=host,
                path=path,
                location=result.final_url,
                description=f"{why} The answer of {result.final_url} has no {header} header.",
                cwe="CWE-693",
                references=[OWASP_HEADERS],
                evidence=f"HTTP {result.http_status}; headers: {', '.join(sorted(headers))}"[:2000],
            )
        )
    expires = result.tls_expires_at
    if expires is not None and expires - now <= timedelta(days=TLS_WARNING_DAYS):
        days = (expires - now).total_seconds() / 86400
        findings.append(
            ParsedFinding(
                scanner=SCANNER,
                rule_id="tls-certificate-expiring",
                title=f"TLS certificate expires within {TLS_WARNING_DAYS} days",
                severity="high",
                host=host,
                path="",
                location=f"{parts.scheme}://{host}/",
                description=(
                    f"The certificate served by {host} expires on {expires.isoformat()} "
                    f"({days:.1f} days from the last check). Renew it before clients reject the site."
                ),
                cwe="CWE-298",
                evidence=f"notAfter={expires.isoformat()}",
            )
        )
    return findings


def fingerprint(findings: list[ParsedFinding]) -> str:
    return hashlib.sha256("\n".join(sorted(f.dedup_key() for f in findings)).encode()).hexdigest()


def reconcile_if_changed(site_id: int, findings: list[ParsedFinding]) -> dict | None:
    """Bring the site's cloudeye findings in line with `findings`, unless they are the same as at the last
    sync (remembered for SYNC_FINDINGS_REFRESH_S). Returns the counts, or None when skipped. The caller
    commits, then calls `remember_fingerprint`, so the fingerprint is stored only once the findings are."""
    from services.imports import reconcile_findings  # the import engine: same rules as uploaded reports

    if cache.get_json(_key(site_id)) == fingerprint(findings):
        return None
    return reconcile_findings(site_id, SCANNER, findings, close_missing=True)


def unchanged(site_findings: dict[int, list[ParsedFinding]]) -> set[int]:
    """The sites of `site_findings` whose findings are the same as at their last sync: nothing to
    reconcile (one round trip to the cache for all of them)."""
    ids = sorted(site_findings)
    remembered = cache.get_json_many([_key(site_id) for site_id in ids])
    return {
        site_id
        for site_id, known in zip(ids, remembered, strict=True)
        if known is not None and known == fingerprint(site_findings[site_id])
    }


def remember_fingerprint(site_id: int, findings: list[ParsedFinding], refresh_s: int) -> None:
    cache.set_json(_key(site_id), fingerprint(findings), ttl=max(1, refresh_s))


def forget_fingerprint(site_id: int) -> None:
    cache.delete(_key(site_id))


def _key(site_id: int) -> str:
    return cache.key("builtin-findings", site_id)
