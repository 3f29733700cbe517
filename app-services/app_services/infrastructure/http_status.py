"""How an export's HTTP answer is classified (shared by the InfluxDB and HTTP exports)."""

from __future__ import annotations

from collections.abc import Mapping

TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
"""Answers worth retrying as they are; any other 4xx is a refusal that retrying will not fix."""


def is_refusal(status: int) -> bool:
    return 400 <= status < 500 and status not in TRANSIENT_STATUS


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds of a Retry-After header (the delta form), or None."""
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None


__all__ = ["TRANSIENT_STATUS", "is_refusal", "retry_after"]
