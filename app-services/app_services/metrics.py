"""The instance's counters in /metrics, read at scrape time from the running service."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app_services.service import AppService

_COUNTERS = (
    ("received", "Events handed to the pipeline by its trigger"),
    ("filtered", "Events filtered out by the pipeline's functions (filters, deadband)"),
    ("invalid", "Events refused as invalid (dead-lettered)"),
    ("buffered", "Items stored in the durable store-and-forward buffer"),
    ("exported", "Items the export target accepted"),
    ("retried", "Items in export attempts that failed and were kept to retry"),
    ("failed_permanent", "Export attempts refused by the target in a way retrying will not fix (4xx)"),
)


class AppCollector(Collector):
    def __init__(self, service: AppService) -> None:
        self._service = service

    def collect(self) -> Iterator[Metric]:
        s = self._service
        c = s.counters
        labels = [s.name]
        for name, text in _COUNTERS:
            family = CounterMetricFamily(f"edgeplane_app_{name}", text, labels=["service"])
            family.add_metric(labels, float(getattr(c, name)))
            yield family
        dropped = CounterMetricFamily(
            "edgeplane_app_dropped",
            "Items dropped by the buffer's bound (policy drop-oldest / drop-newest), or on failure without "
            "store-and-forward",
            labels=["service", "reason"],
        )
        dropped.add_metric([s.name, "drop-oldest"], float(s.outbox.dropped if s.outbox else 0))
        dropped.add_metric([s.name, "drop-newest"], float(c.dropped_newest))
        yield dropped
        depth = GaugeMetricFamily("edgeplane_app_buffer_depth", "Items waiting in the buffer", labels=["service"])
        depth.add_metric(labels, float(s.depth[0]))
        yield depth
        size = GaugeMetricFamily("edgeplane_app_buffer_bytes", "Bytes waiting in the buffer", labels=["service"])
        size.add_metric(labels, float(s.depth[1]))
        yield size
        failing = GaugeMetricFamily("edgeplane_app_export_failing", "1 while the export fails", labels=["service"])
        failing.add_metric(labels, 1.0 if c.failing_since is not None else 0.0)
        yield failing
        enabled = GaugeMetricFamily("edgeplane_app_enabled", "0 when the target is not configured", labels=["service"])
        enabled.add_metric(labels, 0.0 if s.disabled else 1.0)
        yield enabled


__all__ = ["AppCollector"]
