"""Go-style duration strings ("20s", "1m30s", "500ms"), the format EdgeX uses for intervals."""

from __future__ import annotations

import re

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Seconds in a Go duration string; ValueError names the bad text."""
    s = text.strip()
    if s in ("0", ""):
        if s == "0":
            return 0.0
        raise ValueError("empty duration")
    pos, total = 0, 0.0
    while pos < len(s):
        m = _PART.match(s, pos)
        if m is None:
            raise ValueError(f"invalid duration {text!r}: expected e.g. '500ms', '20s', '1m30s'")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return total


_DAYS = re.compile(r"^\s*(\d+(?:\.\d*)?)d(.*)$")
NS_PER_S = 1_000_000_000


def parse_retention_duration(text: str) -> int:
    """Nanoseconds in a retention duration: a Go duration plus EdgeX's day unit (`7d`, `1d12h`), as
    `ParseDurationWithDay`. An empty string or "0" is 0 (no time-based purge). ValueError when invalid.

    In common because core-metadata checks it in the device DTO (EdgeX refuses the request) and core-data
    applies it."""
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
