"""The words a person on call reads: what happened, to which site, since when, and where to look.

One title (a line) and a body per event, in English or Simplified Chinese (`language` "zh-CN"). Every
channel gets the same facts; the webhook also carries them as data (`details`). The texts are a small
table here rather than a gettext catalogue: they are rendered in the worker, per channel, not in a
request's locale, and a dozen strings do not need a compile step.
"""

from datetime import UTC, datetime

from services.models import SEVERITIES

TEXTS = {
    "en": {
        "site.down": ("[DOWN] {site}", "{site} ({url}) is down since {since}.\nCause: {cause}"),
        "site.down.reminder": (
            "[STILL DOWN] {site}",
            "{site} ({url}) is still down, since {since} ({duration}).\nCause: {cause}",
        ),
        "site.up": (
            "[UP] {site}",
            "{site} ({url}) is up again at {at}, after {duration} down (since {since}).",
        ),
        "site.up.settled": ("[UP] {site}", "{site} ({url}) has been stable and up since {since}."),
        "site.flapping": (
            "[FLAPPING] {site}",
            "{site} ({url}) changed state {changes} times within {window} minutes (last: {state}). "
            "No more up/down messages until it has been stable for {settle} minutes.",
        ),
        "tls.expiring": (
            "[TLS] {site}: certificate expires in {days} days",
            "The TLS certificate of {site} ({url}) expires on {expires_at} ({days} days left). Renew it.",
        ),
        "tamper.opened": (
            "[TAMPER] {site}: the page changed",
            "A {severity} tamper event opened on {site} ({url}) at {at}: {reason}.\n{diff}",
        ),
        "findings.new": (
            "[FINDINGS] {site}: {total} new",
            "{total} new or reopened findings on {site} ({url}) from {source}: {counts}.",
        ),
        "test": ("cloudeye test message", 'This is a test from cloudeye: channel "{channel}" works.'),
        "link": "Open: {link}",
        "reason.ratio": "{ratio:.0%} of the page changed",
        "reason.forbidden": "forbidden words {words}",
        "reason.domains": "new script/iframe domains {domains}",
        "after_flapping": " (it had been flapping)",
    },
    "zh-CN": {
        "site.down": ("【故障】{site}", "{site}（{url}）自 {since} 起无法访问。\n原因：{cause}"),
        "site.down.reminder": (
            "【仍未恢复】{site}",
            "{site}（{url}）仍无法访问，自 {since} 起（已持续 {duration}）。\n原因：{cause}",
        ),
        "site.up": (
            "【恢复】{site}",
            "{site}（{url}）已于 {at} 恢复，故障持续 {duration}（自 {since} 起）。",
        ),
        "site.up.settled": ("【恢复】{site}", "{site}（{url}）自 {since} 起保持稳定可用。"),
        "site.flapping": (
            "【频繁波动】{site}",
            "{site}（{url}）在 {window} 分钟内状态变化了 {changes} 次（当前：{state}）。"
            "在其稳定 {settle} 分钟之前不再发送故障/恢复消息。",
        ),
        "tls.expiring": (
            "【证书】{site}：TLS 证书将在 {days} 天后过期",
            "{site}（{url}）的 TLS 证书将于 {expires_at} 过期（剩余 {days} 天），请及时续期。",
        ),
        "tamper.opened": (
            "【篡改】{site}：页面发生变化",
            "{site}（{url}）于 {at} 出现{severity}级篡改事件：{reason}。\n{diff}",
        ),
        "findings.new": (
            "【漏洞】{site}：新增 {total} 个",
            "{site}（{url}）新增或重新打开 {total} 个漏洞（来源：{source}）：{counts}。",
        ),
        "test": ("cloudeye 测试消息", "这是一条来自 cloudeye 的测试消息：通知渠道“{channel}”工作正常。"),
        "link": "查看：{link}",
        "reason.ratio": "页面 {ratio:.0%} 的内容发生变化",
        "reason.forbidden": "出现违禁词 {words}",
        "reason.domains": "出现新的脚本/iframe 域名 {domains}",
        "after_flapping": "（此前状态频繁波动）",
    },
}
SEVERITY_NAMES = {
    "en": {name: name for name in SEVERITIES},
    "zh-CN": {"critical": "严重", "high": "高危", "medium": "中危", "low": "低危", "info": "信息"},
}
STATE_NAMES = {"en": {"up": "up", "down": "down"}, "zh-CN": {"up": "可用", "down": "故障"}}


def render(
    event: str,
    occurred_at: datetime,
    site: dict | None,
    details: dict,
    language: str = "en",
    public_url: str | None = None,
    channel_name: str = "",
) -> tuple[str, str]:
    """(title, body) of one notification."""
    texts = TEXTS.get(language) or TEXTS["en"]
    key = event
    if event == "site.down" and details.get("reminder"):
        key = "site.down.reminder"
    elif event == "site.up" and details.get("after_flapping") and not details.get("downtime_s"):
        key = "site.up.settled"
    title, body = texts[key]
    values = {
        "site": (site or {}).get("name", ""),
        "url": (site or {}).get("url", ""),
        "at": _time(occurred_at),
        "channel": channel_name,
        **_event_values(event, occurred_at, details, language, texts),
    }
    body = body.format(**values)
    if event in ("site.down", "site.up") and details.get("after_flapping"):
        body += texts["after_flapping"]
    link = console_link(public_url, site)
    if link:
        body += "\n" + texts["link"].format(link=link)
    return title.format(**values), body


def console_link(public_url: str | None, site: dict | None) -> str | None:
    """The site's page in the web console, when CLOUDEYE_PUBLIC_URL says where that is."""
    return f"{public_url.rstrip('/')}/sites/{site['id']}" if public_url and site else None


def _event_values(event: str, occurred_at: datetime, details: dict, language: str, texts: dict) -> dict:
    if event == "site.down":
        since = _parse(details.get("since")) or occurred_at
        return {
            "since": _time(since),
            "duration": _duration((occurred_at - since).total_seconds(), language),
            "cause": details.get("cause") or "-",
        }
    if event == "site.up":
        since = _parse(details.get("down_since") or details.get("up_since")) or occurred_at
        return {
            "since": _time(since),
            "duration": _duration(details.get("downtime_s") or 0, language),
        }
    if event == "site.flapping":
        return {
            "changes": details.get("changes"),
            "window": details.get("window_min"),
            "settle": details.get("settle_min"),
            "state": STATE_NAMES[language if language in STATE_NAMES else "en"].get(
                details.get("state"), "-"
            ),
        }
    if event == "tls.expiring":
        return {
            "days": details.get("days_left"),
            "expires_at": _time(_parse(details.get("expires_at"))),
        }
    if event == "tamper.opened":
        reasons = []
        if details.get("change_ratio"):
            reasons.append(texts["reason.ratio"].format(ratio=details["change_ratio"]))
        if details.get("forbidden_found"):
            reasons.append(texts["reason.forbidden"].format(words=", ".join(details["forbidden_found"])))
        if details.get("new_domains"):
            reasons.append(texts["reason.domains"].format(domains=", ".join(details["new_domains"])))
        return {
            "severity": SEVERITY_NAMES[language if language in SEVERITY_NAMES else "en"].get(
                details.get("severity"), details.get("severity")
            ),
            "reason": "; ".join(reasons) or "-",
            "diff": details.get("diff_excerpt") or "",
        }
    if event == "findings.new":
        names = SEVERITY_NAMES[language if language in SEVERITY_NAMES else "en"]
        counts = details.get("counts") or {}
        return {
            "total": details.get("total", sum(counts.values())),
            "source": details.get("source") or "-",
            "counts": ", ".join(f"{names[s]} {counts[s]}" for s in SEVERITIES if counts.get(s)),
        }
    return {}


def _parse(value) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def _time(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float, language: str) -> str:
    """The two largest units: "2 h 5 min", "2小时5分钟"."""
    chinese = language == "zh-CN"
    units = ("天", "小时", "分钟", "秒") if chinese else (" d", " h", " min", " s")
    seconds = int(max(0, seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in zip((days, hours, minutes, secs), units, strict=True) if n]
    return ("" if chinese else " ").join(parts[:2] or [f"0{units[-1]}"])
