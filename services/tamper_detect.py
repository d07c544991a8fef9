"""Tamper detection rules: normalise a page, compare it with the baseline, decide whether that is an event.

Pure functions (no database) so they are easy to test and the worker can run them off the hot path.
"""

import difflib
import functools
import hashlib
import logging
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import re2

log = logging.getLogger(__name__)

MAX_DIFF_CHARS = 200_000  # an event keeps at most this much unified diff
# tamper_ignore patterns come from users and run on pages of up to SYNC_MAX_BODY_BYTES. RE2 has no
# backtracking (matching is linear in the page) and compiles within a memory budget; a pattern whose
# compiled program is larger than this is refused too, so no pattern makes a check slow.
IGNORE_PATTERN_MAX_MEM = 1 << 20  # bytes RE2 may use to compile one pattern
IGNORE_PATTERN_MAX_PROGRAM = 10_000  # instructions of the compiled pattern
# Matches one pattern removes from one page (timestamps, tokens and nonces match a handful of times). RE2
# finds each in linear time, but its Python wrapper costs microseconds per match: a pattern like "." would
# take seconds on a 2 MB page without this bound; with it, 50 patterns cost well under a second.
IGNORE_PATTERN_MAX_MATCHES = 1_000
# Lines of the differing middle of two pages that are aligned exactly (difflib is quadratic in the worst
# case); beyond it the ratio counts common lines regardless of order.
MAX_ALIGNED_LINES = 5_000
WHITESPACE = re.compile(r"\s+")


def _re2_options() -> re2.Options:
    options = re2.Options()
    options.max_mem = IGNORE_PATTERN_MAX_MEM
    options.log_errors = False  # the reason goes into the 422, not onto stderr
    return options


_OPTIONS = _re2_options()


@functools.lru_cache(maxsize=4096)
def compile_ignore_pattern(pattern: str):
    """The compiled tamper_ignore pattern (once per process); ValueError with RE2's reason otherwise."""
    try:
        compiled = re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "refused"
        reason = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
        raise ValueError(f"{pattern!r} is refused by the pattern engine (RE2 syntax): {reason}") from None
    if compiled.programsize > IGNORE_PATTERN_MAX_PROGRAM:
        raise ValueError(
            f"{pattern!r} is too complex: {compiled.programsize} instructions once compiled, "
            f"at most {IGNORE_PATTERN_MAX_PROGRAM}"
        )
    return compiled


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
            compiled = compile_ignore_pattern(pattern)
        except ValueError as exc:
            # Validated on input; a pattern stored before RE2 (lookarounds, backreferences) is skipped
            # rather than stop monitoring the site.
            _warn_once(f"tamper_ignore pattern skipped: {exc}")
            continue
        html, removed = compiled.subn("", html, IGNORE_PATTERN_MAX_MATCHES)
        if removed == IGNORE_PATTERN_MAX_MATCHES:
            _warn_once(
                f"tamper_ignore pattern {pattern!r} matches more than {IGNORE_PATTERN_MAX_MATCHES} times "
                "in a page: the matches after those are kept"
            )
    # Break between tags so that the diff is by element rather than one giant line.
    html = html.replace(">", ">\n")
    lines = (WHITESPACE.sub(" ", line).strip() for line in html.splitlines())
    return "\n".join(line for line in lines if line)


@functools.lru_cache(maxsize=256)
def _warn_once(message: str) -> None:
    log.warning("%s", message)


def change_ratio(baseline: str, current: str) -> float:
    """0.0 identical .. 1.0 entirely different, by lines (1 - difflib's 2·matches / total lines).

    The common head and tail are counted as matches without aligning them, and only the differing middle
    goes through difflib; a middle longer than MAX_ALIGNED_LINES counts its common lines regardless of
    order (an upper bound of the matches), so a huge rewritten page costs linear time."""
    if baseline == current:
        return 0.0
    before, after = baseline.splitlines(), current.splitlines()
    total = len(before) + len(after)
    head = 0
    while head < min(len(before), len(after)) and before[head] == after[head]:
        head += 1
    tail = 0
    while tail < min(len(before), len(after)) - head and before[-1 - tail] == after[-1 - tail]:
        tail += 1
    middle_before, middle_after = before[head : len(before) - tail], after[head : len(after) - tail]
    if max(len(middle_before), len(middle_after)) <= MAX_ALIGNED_LINES:
        matcher = difflib.SequenceMatcher(None, middle_before, middle_after, autojunk=False)
        middle_matches = sum(block.size for block in matcher.get_matching_blocks())
    else:
        middle_matches = sum((Counter(middle_before) & Counter(middle_after)).values())
    matches = head + tail + middle_matches
    return round(1.0 - 2.0 * matches / total, 4) if total else 0.0


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
