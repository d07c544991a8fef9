"""Tamper detection rules: normalise a page, compare it with the baseline, decide whether that is an event.

Pure functions (no database) so they are easy to test and the worker can run them off the hot path.
"""

import difflib
import hashlib
import re
import zlib
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

MAX_DIFF_CHARS = 200_000  # an event keeps at most this much unified diff
WHITESPACE = re.compile(r"\s+")


def compress(text: str) -> bytes:
    return zlib.compress(text.encode("utf-8", "replace"), 6)


def decompress(blob: bytes) -> str:
    return zlib.decompress(blob).decode("utf-8", "replace")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


def normalise(html: str, ignore_patterns: list[str]) -> str:
    """Remove what the site says to ignore (timestamps, CSRF tokens…) and fold whitespace per line."""
    for pattern in ignore_patterns:
        try:
            html = re.sub(pattern, "", html)
        except re.error:
            continue  # validated on input; an old bad pattern must not stop monitoring
    # Break between tags so that the diff is by element rather than one giant line.
    html = html.replace(">", ">\n")
    lines = (WHITESPACE.sub(" ", line).strip() for line in html.splitlines())
    return "\n".join(line for line in lines if line)


def change_ratio(baseline: str, current: str) -> float:
    """0.0 identical .. 1.0 entirely different, by lines."""
    if baseline == current:
        return 0.0
    matcher = difflib.SequenceMatcher(None, baseline.splitlines(), current.splitlines(), autojunk=False)
    return round(1.0 - matcher.ratio(), 4)


def unified_diff(baseline: str, current: str) -> str:
    diff = "\n".join(
        difflib.unified_diff(
            baseline.splitlines(), current.splitlines(), "baseline", "current", lineterm="", n=2
        )
    )
    if len(diff) > MAX_DIFF_CHARS:
        diff = diff[:MAX_DIFF_CHARS] + "\n… diff truncated"
    return diff


def forbidden_found(text: str, keywords: list[str]) -> list[str]:
    lowered = text.lower()
    return [word for word in keywords if word and word.lower() in lowered]


class _ScriptSources(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.sources: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "iframe"):
            for name, value in attrs:
                if name == "src" and value:
                    self.sources.append(value.strip())


def external_script_domains(html: str, page_url: str) -> set[str]:
    """Hosts, other than the page's own, that the page loads scripts or iframes from."""
    parser = _ScriptSources()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # malformed markup: use what was parsed so far
        pass
    own = (urlsplit(page_url).hostname or "").lower()
    domains = set()
    for source in parser.sources:
        host = (urlsplit(urljoin(page_url, source)).hostname or "").lower()
        if host and host != own:
            domains.add(host)
    return domains


@dataclass
class Verdict:
    tampered: bool
    change_ratio: float
    forbidden: list[str] = field(default_factory=list)
    new_domains: list[str] = field(default_factory=list)
    diff: str = ""
    severity: str = "medium"


def compare(
    baseline_html: str,
    current_html: str,
    page_url: str,
    threshold: float,
    ignore_patterns: list[str],
    forbidden_keywords: list[str],
    baseline_domains: set[str] | None = None,
) -> Verdict:
    """Decide whether `current_html` is a tamper event against `baseline_html`."""
    before = normalise(baseline_html, ignore_patterns)
    after = normalise(current_html, ignore_patterns)
    ratio = change_ratio(before, after)
    forbidden = forbidden_found(after, forbidden_keywords)
    known = (
        baseline_domains if baseline_domains is not None else external_script_domains(baseline_html, page_url)
    )
    new_domains = sorted(external_script_domains(current_html, page_url) - known)
    tampered = ratio >= threshold and ratio > 0 or bool(forbidden) or bool(new_domains)
    severity = "high" if forbidden or new_domains else ("high" if ratio >= 0.5 else "medium")
    return Verdict(
        tampered=tampered,
        change_ratio=ratio,
        forbidden=forbidden,
        new_domains=new_domains,
        diff=unified_diff(before, after) if tampered else "",
        severity=severity,
    )
