"""Retention durations: Go durations plus EdgeX's day unit (`7d`, `1d12h`), as `ParseDurationWithDay`."""

from __future__ import annotations

import re

from edgeplane_common.durations import parse_duration

_DAYS = re.compile(r"^\s*(\d+(?:\.\d*)?)d(.*)$")
NS_PER_S = 1_000_000_000


def parse_retention_duration(text: str) -> int:
    """Nanoseconds in `text`; an empty string or "0" is 0 (no time-based purge). ValueError when invalid."""
    s = text.strip()
    if s in ("", "0"):
        return 0
    days = 0.0
    m = _DAYS.match(s)
    if m:
        days, s = float(m.group(1)), m.group(2).strip()
    seconds = days * 86_400 + (parse_duration(s) if s else 0.0)
    if seconds < 0:
        raise ValueError(f"duration {text!r} is negative")
    return round(seconds * NS_PER_S)
