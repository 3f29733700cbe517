"""The bus in a service's `/metrics`: read at scrape time from the bus itself, so nothing is counted twice."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from edgeplane_common.bus import MessageBus


class BusCollector(Collector):
    def __init__(self, bus: MessageBus) -> None:
        self._bus = bus

    def collect(self) -> Iterator[Metric]:
        dead = CounterMetricFamily(
            "edgeplane_bus_dead_lettered",
            "Messages a durable consumer gave up on (poison): copied to the dead-letter stream and terminated",
            labels=["consumer"],
        )
        for consumer, count in sorted(self._bus.dead_lettered.items()):
            dead.add_metric([consumer], count)
        yield dead
        connected = GaugeMetricFamily("edgeplane_bus_connected", "1 while the service is connected to the bus")
        connected.add_metric([], 0.0 if self._bus.problem() else 1.0)
        yield connected


__all__ = ["BusCollector"]
