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
