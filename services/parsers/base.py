"""What every parser yields: a `ParsedFinding`, and the dedup key that identifies it on a site."""

import hashlib
import html
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from services.models import SEVERITIES


class ReportError(ValueError):
    """The report is malformed or not of the format it claims; the message says what and where."""


@dataclass
class ParsedFinding:
    scanner: str  # nuclei, zap, sarif tool name, generic, cloudeye
    rule_id: str  # nuclei: template-id[:matcher-name]; ZAP: pluginid; SARIF: ruleId
    title: str
    severity: str  # one of SEVERITIES
    host: str = ""
    path: str = ""
    param: str = ""
    location: str = ""  # the full URL or file:line as the scanner reported it
    description: str | None = None
    cwe: str | None = None
    references: list[str] = field(default_factory=list)
    evidence: str | None = None
    # A triage the scanner itself reports (a suppressed SARIF result: accepted_risk; a Burp issue set
    # to "False positive": false_positive); None for an ordinary finding.
    status: str | None = None

    def dedup_key(self) -> str:
        """Same site + scanner + rule + (host, path, parameter) is the same finding."""
        raw = "\x1f".join((self.scanner, self.rule_id, self.host.lower(), self.path, self.param))
        return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def split_location(url: str) -> tuple[str, str]:
    """(host[:port], path?query) of a URL; a non-URL location is returned as the path."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # e.g. "http://[::1/": not a URL after all
        return "", url.strip()
    if parts.scheme and parts.netloc:
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return parts.netloc.lower(), path
    return "", url.strip()


def normalise_severity(value, default: str = "info") -> str:
    text = str(value or "").strip().lower()
    aliases = {
        "informational": "info",
        "information": "info",
        "moderate": "medium",
        "none": "info",
        "unknown": default,
        "warning": "medium",
        "error": "high",
        "note": "low",
    }
    text = aliases.get(text, text)
    return text if text in SEVERITIES else default


@dataclass
class ReportInfo:
    """What a parser learns about a report besides its findings (filled while parsing)."""

    format: str
    scanners: list[str] = field(default_factory=list)  # in order of appearance, even with no finding

    def add_scanner(self, name: str) -> None:
        if name not in self.scanners:
            self.scanners.append(name)


def scanner_name(value, default: str) -> str:
    """A tool name as a short scanner id: 'OWASP ZAP' -> 'owasp-zap' (at most 32 characters)."""
    text = re.sub(r"[^a-z0-9._-]+", "-", str(value or "").strip().lower()).strip("-.")
    return text[:32].rstrip("-.") or default


BLOCK_TAG = re.compile(r"</?(?:p|br|li|ul|ol|div|h[1-6]|tr|table|pre|blockquote)\b[^>]*>", re.IGNORECASE)
TAG = re.compile(r"<[^>]+>")
CWE = re.compile(r"\bCWE[-_ :]?0*([0-9]{1,9})\b", re.IGNORECASE)
HREF = re.compile(r"""href\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
URL = re.compile(r"https?://[^\s<>\"']+")


def html_text(value) -> str | None:
    """The text of a scanner's HTML fragment (ZAP and Burp write <p> and <ul> into their fields)."""
    text = as_text(value)
    if not text:
        return None
    text = html.unescape(TAG.sub("", BLOCK_TAG.sub("\n", text)))
    return re.sub(r"\n\s*\n+", "\n\n", text).strip() or None


def first_cwe(text: str | None) -> str | None:
    """'CWE-79' from the first CWE id mentioned in `text`."""
    match = CWE.search(text or "")
    return f"CWE-{int(match.group(1))}" if match and int(match.group(1)) > 0 else None


def urls(text: str | None) -> list[str]:
    """The bare URLs in a text (without the punctuation that ends a sentence or a list)."""
    return [url.rstrip(",.;") for url in URL.findall(text or "")]


def links(text: str | None) -> list[str]:
    """The URLs of a scanner's reference field: href targets of an HTML list, or bare URLs."""
    found = HREF.findall(text or "") or urls(text)
    return list(dict.fromkeys(html.unescape(url) for url in found))


def as_text(value) -> str | None:
    """A scalar from a report as text (numbers become text too); None for null/empty/containers."""
    if value is None or isinstance(value, dict | list):
        return None
    text = value if isinstance(value, str) else str(value)
    return text if text.strip() else None
