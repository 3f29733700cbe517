"""Retention durations: Go durations plus EdgeX's day unit (`7d`, `1d12h`), as `ParseDurationWithDay`.
The parser lives in common (core-metadata validates the same field); this module keeps core-data's imports."""

from __future__ import annotations

from edgeplane_common.durations import NS_PER_S, parse_retention_duration

__all__ = ["NS_PER_S", "parse_retention_duration"]
