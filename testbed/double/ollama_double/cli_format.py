"""The CLI's human-readable output: Ollama's format package and tablewriter tables.

Sizes in decimal units and times relative to now, laid out in tables padded
as tablewriter does; what ``ollama list`` and ``ollama ps`` print.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time

_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)$")


def human_bytes(b: int) -> str:
    """format.HumanBytes (decimal units, as `ollama list` prints SIZE)."""
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if b >= size:
            v = b / size
            if v >= 10:
                return f"{int(v)} {unit}"
            if v != math.trunc(v):
                return f"{v:.1f} {unit}"
            return f"{int(v)} {unit}"
    return f"{b} B"


def human_duration(seconds: float) -> str:
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    m = int(seconds // 60)
    if m == 1:
        return "About a minute"
    if m < 60:
        return f"{m} minutes"
    h = round(seconds / 3600)
    if h == 1:
        return "About an hour"
    if h < 48:
        return f"{h} hours"
    if h < 24 * 14:
        return f"{h // 24} days"
    if h < 24 * 60:
        return f"{h // 24 // 7} weeks"
    if h < 24 * 730:
        return f"{h // 24 // 30} months"
    return f"{int(seconds // 3600) // 24 // 365} years"


def human_time(iso: str, zero: str) -> str:
    """format.HumanTime for an RFC3339 timestamp from the API."""
    m = _RFC3339.match(iso or "")
    if not m or iso.startswith("0001-01-01"):
        return zero
    tz = "+00:00" if m.group(2) == "Z" else m.group(2)
    delta = time.time() - dt.datetime.fromisoformat(m.group(1) + tz).timestamp()
    if delta / 3600 / 24 / 365 < -20:
        return "Forever"
    if delta < 0:
        return human_duration(-delta) + " from now"
    return human_duration(delta) + " ago"


def table(header: list[str], rows: list[list[str]]) -> str:
    """tablewriter with NoWhiteSpace and 4-space padding (last column padded by one space)."""
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = []
    for r in [header] + rows:
        cells = [c.ljust(w) for c, w in zip(r, widths)]
        lines.append("    ".join(cells) + " ")
    return "\n".join(lines) + "\n"
