"""Deadband (report by exception) per device resource: a reading is exported when its value moved at least
`Threshold` (absolute) or `Percent` of the span [SpanMin, SpanMax] away from the last value exported for that
device and resource, or when `MaxSilence` has passed since that export (by the readings' own origins, so a
replayed or delayed stream behaves the same). Non-numeric readings, and resources not listed in
`ResourceNames` (all numeric ones when empty), pass untouched.

What is not exported never differs from the last exported value by more than the threshold, so a consumer
that holds the last value sees the signal within the threshold at every reading."""

from __future__ import annotations

import math
from typing import Any

from app_services.application.data import AppFunction, Context
from app_services.application.functions.filters import reading_number
from app_services.application.params import Params

MAX_TRACKED = 100_000
"""Device resources whose last export is remembered; past it the oldest is forgotten (it then exports its
next reading), so memory stays bounded whatever the number of devices."""


class Deadband:
    def __init__(self, threshold: float, max_silence_ns: int, names: frozenset[str], max_tracked: int) -> None:
        self.threshold = threshold
        self.max_silence_ns = max_silence_ns
        self.names = names
        self.max_tracked = max_tracked
        self.last: dict[tuple[str, str], tuple[float, int]] = {}
        self.suppressed = 0

    def keep(self, device: str, reading: dict[str, Any]) -> bool:
        resource = reading["resourceName"]
        if self.names and resource not in self.names:
            return True
        value = reading_number(reading)
        if value is None:
            return True
        key = (device, resource)
        origin = int(reading.get("origin") or 0)
        last = self.last.get(key)
        if last is not None:
            sent, sent_at = last
            silent = self.max_silence_ns > 0 and origin - sent_at >= self.max_silence_ns
            moved = not math.isfinite(value) or not math.isfinite(sent) or abs(value - sent) >= self.threshold
            if not (silent or moved):
                self.suppressed += 1
                return False
        elif len(self.last) >= self.max_tracked:
            self.last.pop(next(iter(self.last)))
        self.last[key] = (value, origin)
        return True

    async def __call__(self, ctx: Context, event: dict[str, Any]) -> dict[str, Any] | None:
        device = event["deviceName"]
        readings = event["readings"]
        kept = [r for r in readings if self.keep(device, r)]
        if not kept:
            return None
        return event if len(kept) == len(readings) else {**event, "readings": kept}


def deadband(p: Params) -> AppFunction:
    absolute = p.number("Threshold")
    percent = p.number("Percent")
    span_min = p.number("SpanMin")
    span_max = p.number("SpanMax")
    if (absolute is None) == (percent is None):
        raise p.fail("Threshold", "or Percent (of the span SpanMin..SpanMax) is required, not both")
    if percent is not None:
        if span_min is None or span_max is None or span_max <= span_min:
            raise p.fail("Percent", "needs SpanMin and SpanMax with SpanMin < SpanMax")
        if not 0 <= percent <= 100:
            raise p.fail("Percent", f"must be within 0..100, got {percent}")
        threshold = percent / 100 * (span_max - span_min)
    else:
        assert absolute is not None
        if absolute < 0:
            raise p.fail("Threshold", f"must not be negative, got {absolute}")
        threshold = absolute
    silence = p.duration("MaxSilence", "0")
    names = frozenset(p.names("ResourceNames"))
    tracked = p.integer("MaxTracked", MAX_TRACKED, minimum=1)
    return Deadband(threshold, int(silence * 1e9), names, tracked)


__all__ = ["MAX_TRACKED", "Deadband", "deadband"]
