"""A stored unified diff (tamper events) turned into rows for the console: unified, or side by side."""

import re
from dataclasses import dataclass, field

HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")
MAX_ROWS = 5000  # a huge diff is shown up to here (the stored text itself is capped by the detector)


@dataclass
class Line:
    kind: str  # "context", "added", "removed", "hunk", "note"
    text: str
    old: int | None = None
    new: int | None = None


@dataclass
class Diff:
    lines: list[Line] = field(default_factory=list)
    truncated: bool = False
    added: int = 0
    removed: int = 0

    @property
    def pairs(self) -> list[tuple[Line | None, Line | None]]:
        """Side by side: a run of removed lines faces the run of added lines that follows it."""
        rows: list[tuple[Line | None, Line | None]] = []
        removed: list[Line] = []
        added: list[Line] = []

        def flush():
            for index in range(max(len(removed), len(added))):
                rows.append(
                    (
                        removed[index] if index < len(removed) else None,
                        added[index] if index < len(added) else None,
                    )
                )
            removed.clear()
            added.clear()

        for line in self.lines:
            if line.kind == "removed":
                if added:
                    flush()
                removed.append(line)
            elif line.kind == "added":
                added.append(line)
            else:
                flush()
                rows.append((line, line))
        flush()
        return rows


def parse_unified(text: str) -> Diff:
    diff = Diff()
    old = new = 0
    for raw in text.splitlines():
        if len(diff.lines) >= MAX_ROWS:
            diff.truncated = True
            break
        if raw.startswith(("--- ", "+++ ")) and not diff.lines:
            continue  # the file header
        match = HUNK.match(raw)
        if match:
            old, new = int(match.group(1)), int(match.group(2))
            diff.lines.append(Line("hunk", raw))
        elif raw.startswith("+"):
            diff.lines.append(Line("added", raw[1:], new=new))
            new += 1
            diff.added += 1
        elif raw.startswith("-"):
            diff.lines.append(Line("removed", raw[1:], old=old))
            old += 1
            diff.removed += 1
        elif raw.startswith(" "):
            diff.lines.append(Line("context", raw[1:], old=old, new=new))
            old += 1
            new += 1
        else:
            diff.lines.append(Line("note", raw))  # e.g. "… diff truncated"
    return diff
