"""App services (exports) as the console shows them: counters and buffer depth read from each instance's
Prometheus `/metrics`.

The metric names are matched by meaning rather than one exact spelling, so instances built before or after
this console (EdgeX's app-functions-sdk names, ours) show what they export: counters (`*_total`) summed over
their labels, and the buffer depth from any gauge whose name says buffer, queue, pending or stored: in
messages, and apart from it in bytes (a gauge whose name ends in `_bytes`), never the two added together.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")
_BUFFER_WORDS = ("buffer", "queue", "pending", "backlog", "stored", "store_forward")
# Metrics every service has (HTTP, the bus, the runtime): not what an export did.
_GENERIC_PREFIXES = ("python_", "process_", "edgeplane_http_", "edgeplane_bus_", "http_")


@dataclass
class ExportStatus:
    name: str
    url: str
    counters: dict[str, float] = field(default_factory=dict)
    buffered: float = 0.0
    """Messages waiting in the buffer."""
    buffered_bytes: float | None = None
    """Their size, when the instance says it (None: it does not)."""
    error: str = ""
    version: str = ""
    """The instance's own release (`serviceVersion` of its /api/v3/version), when it says it."""


def summarize_metrics(name: str, url: str, text: str) -> ExportStatus:
    status = ExportStatus(name, url)
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if not match:
            continue
        metric, value_text = match.group(1), match.group(3)
        try:
            value = float(value_text)
        except ValueError:
            continue
        if metric.startswith(_GENERIC_PREFIXES) or metric.endswith(("_created", "_bucket", "_sum", "_count")):
            continue
        if any(word in metric for word in _BUFFER_WORDS) and not metric.endswith("_total"):
            if metric.endswith("_bytes"):
                status.buffered_bytes = (status.buffered_bytes or 0.0) + value
            else:
                status.buffered += value
        elif metric.endswith("_total"):
            short = metric.removesuffix("_total")
            status.counters[short] = status.counters.get(short, 0.0) + value
    return status
