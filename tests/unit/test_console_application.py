"""The console's logic without a browser or a server: live series and rates, the status snapshot and its
problems, export counters from /metrics, and where an API error points in the user's text."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from edgeplane_common.bus import MessageEnvelope, Topics
from edgeplane_common.bus.memory import InMemoryBus
from edgeplane_common.errors import NotFound, ServiceUnavailable
from edgeplane_console.application.exports import summarize_metrics
from edgeplane_console.application.live import Firing, Firings, LiveHub, RateMeter, Reading, as_number
from edgeplane_console.application.positions import locate
from edgeplane_console.application.status import Snapshot, collect
from edgeplane_console.messaging.events import LiveFeed
from edgeplane_console.settings import ConsoleSettings
from tests.support.core_data import event
from tests.support.stack import wait_until


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def reading(resource: str, value: str, value_type: str = "Float32", origin_ns: int = 0) -> Reading:
    return Reading(resource, value_type, value, origin_ns, "C")


def test_as_number_charts_numbers_and_booleans_only() -> None:
    assert as_number("Float32", "2.5e+01") == 25.0
    assert as_number("Uint64", "18446744073709551615") == 18446744073709551615.0
    assert as_number("Bool", "true") == 1.0
    assert as_number("Bool", "false") == 0.0
    assert as_number("String", "1") is None
    assert as_number("Float32Array", "[1]") is None
    assert as_number("Float64", "NaN") is None
    assert as_number("Int16", None) is None


def test_hub_keeps_latest_values_and_a_bounded_series_per_resource() -> None:
    hub = LiveHub(keep=3, clock=Clock())
    for i in range(5):
        hub.add_event(
            "plc", [reading("T", str(i), origin_ns=(1_700_000_000 + i) * 10**9), reading("F", "fw", "String")]
        )
    latest = hub.latest("plc")
    assert latest["T"].value == "4"
    assert latest["F"].value == "fw"
    assert latest["T"].at_ms == (1_700_000_000 + 4) * 1000
    points = hub.since("plc", "T", 0)
    assert [p.value for p in points] == [2.0, 3.0, 4.0]
    assert hub.since("plc", "F", 0) == []  # strings are shown, not charted
    assert hub.resources("plc") == ["T"]
    assert hub.last_event_ms["plc"] == (1_700_000_000 + 4) * 1000


def test_hub_gives_a_page_only_the_points_after_its_cursor() -> None:
    hub = LiveHub(clock=Clock())
    hub.add_event("plc", [reading("T", "1"), reading("P", "7")])
    cursor = hub.since("plc", "T", 0)[-1].seq
    assert hub.since("plc", "T", cursor) == []
    hub.add_event("plc", [reading("T", "2"), reading("P", "8")])
    hub.add_event("plc", [reading("T", "3")])
    assert [p.value for p in hub.since("plc", "T", cursor)] == [2.0, 3.0]
    assert [p.value for p in hub.since("other", "T", 0)] == []


def test_rate_meter_counts_per_second_over_its_window() -> None:
    meter = RateMeter(window_s=5)
    meter.add(2, 100.1)
    meter.add(3, 100.9)
    meter.add(4, 102.5)
    assert meter.series(103.0) == [(98, 0), (99, 0), (100, 5), (101, 0), (102, 4)]
    assert meter.rate(103.0, over_s=5) == 9 / 5
    meter.add(1, 110.0)  # older seconds fall out of the window
    assert sum(c for _, c in meter.series(111.0)) == 1


def test_hub_rates_count_events_and_readings() -> None:
    clock = Clock(500.0)
    hub = LiveHub(clock=clock)
    for _ in range(3):
        hub.add_event("plc", [reading("A", "1"), reading("B", "2")])
    clock.now = 501.0
    assert dict(hub.events.series(clock.now))[500] == 3
    assert dict(hub.readings.series(clock.now))[500] == 6


def test_firings_newest_first_per_rule_and_bounded() -> None:
    firings = Firings(keep=3)
    for i in range(4):
        firings.add(Firing("r1" if i % 2 == 0 else "r2", i, str(i)))
    assert [f.data for f in firings.of("r1")] == ["2"]  # "0" fell out
    assert [f.data for f in firings.of("r2")] == ["3", "1"]


async def test_live_feed_takes_events_of_devices_and_core_data_and_the_rules_alerts() -> None:
    bus = InMemoryBus()
    await bus.connect()
    hub, firings = LiveHub(clock=Clock()), Firings()
    feed = LiveFeed(bus, hub, firings)
    await feed.start()
    device_event = event("plc", origin=1_700_000_000 * 10**9)
    await bus.publish(
        Topics.events("device-modbus", "Thermostat", "plc", "Climate"), MessageEnvelope(payload=device_event)
    )
    rest_event = event("sensor")
    await bus.publish(
        Topics.core_events("core-data", "Thermostat", "sensor", "Climate"), MessageEnvelope(payload=rest_event)
    )
    await bus.publish(Topics.events("device-modbus", "Thermostat", "plc", "Climate"), MessageEnvelope(payload=[1]))
    await bus.publish(Topics.rule_alerts("hot"), MessageEnvelope(payload={"ruleId": "hot", "data": {"t": 30}}))
    await wait_until(lambda: hub.latest("plc") and hub.latest("sensor") and feed.invalid and firings.items, timeout=5)
    assert hub.latest("plc")["Temperature"].value == "21.5"
    assert hub.since("plc", "Humidity", 0)[-1].value == 40.0
    assert hub.last_event_ms["plc"] == 1_700_000_000 * 1000
    assert feed.invalid == 1
    assert [(f.rule_id, f.data) for f in firings.of("hot")] == [("hot", '{"t":30}')]
    await feed.stop()
    await bus.close()


METRICS = """# HELP edgeplane_http_requests_total requests
# TYPE edgeplane_http_requests_total counter
edgeplane_http_requests_total{path="/api/v3/ping"} 12.0
edgeplane_app_messages_received_total{pipeline="influx"} 100.0
edgeplane_app_messages_received_total{pipeline="mqtt"} 20.0
edgeplane_app_messages_exported_total 90.0
edgeplane_app_messages_exported_created 1.7e9
edgeplane_app_store_forward_buffered 30.0
process_resident_memory_bytes 5e7
"""


def test_export_counters_and_buffer_depth_from_metrics() -> None:
    status = summarize_metrics("app-influx", "http://x:59700", METRICS)
    assert status.counters == {"edgeplane_app_messages_received": 120.0, "edgeplane_app_messages_exported": 90.0}
    assert status.buffered == 30.0
    assert status.buffered_bytes is None


def test_buffer_depth_is_messages_and_bytes_apart_never_their_sum() -> None:
    # What an app service of ours exports (app_services/metrics.py): depth and bytes as two gauges.
    text = (
        '# TYPE edgeplane_app_buffer_depth gauge\nedgeplane_app_buffer_depth{service="app-http-export"} 3.0\n'
        '# TYPE edgeplane_app_buffer_bytes gauge\nedgeplane_app_buffer_bytes{service="app-http-export"} 4096.0\n'
        'edgeplane_app_buffered_total{service="app-http-export"} 7.0\n'
    )
    status = summarize_metrics("app-http-export", "http://x:59702", text)
    assert status.buffered == 3.0
    assert status.buffered_bytes == 4096.0
    assert status.counters["edgeplane_app_buffered"] == 7.0


def test_locate_yaml_syntax_error_by_its_line() -> None:
    message = "the profile file is not valid YAML at line 3, column 7: mapping values are not allowed here"
    assert locate("a: 1\nb: 2\nc: d: e\n", message) == (3, 7)


def test_locate_validation_error_by_its_path_in_the_yaml() -> None:
    text = "name: P\ndeviceResources:\n  - name: A\n    properties:\n      valueType: Float32\n  - name: B\n    properties:\n      valueType: Nope\n"
    message = "invalid device profile: deviceResources.1.properties.valueType: Input should be 'Bool', ..."
    assert locate(text, message) == (8, 18)
    assert locate(text, "something unrelated") is None


class FakeGateway:
    def __init__(self, *, down: set[str], devices: list[dict[str, Any]] | None = None) -> None:
        self.down = down
        self._devices = devices

    async def health(self, service: str) -> dict[str, Any]:
        if service in self.down:
            raise ServiceUnavailable(f"{service} at http://x is unreachable: connection refused")
        return {"status": "up", "checks": {}}

    async def version(self, service: str) -> dict[str, Any]:
        return {"serviceVersion": "0.1.0"}

    async def devices(self) -> list[dict[str, Any]]:
        if self._devices is None:
            raise ServiceUnavailable("core-metadata at http://x is unreachable")
        return self._devices

    async def rules(self) -> list[dict[str, Any]]:
        if "rules-engine" in self.down:
            raise ServiceUnavailable("rules-engine at http://x is unreachable")
        return [{"id": "r1", "status": "running"}, {"id": "r2", "status": "stopped"}]

    async def rule_status(self, rule_id: str) -> dict[str, Any]:
        if rule_id == "r2":
            return {"lastError": "device 'gone' does not exist"}
        return {"fired": 3}

    async def get_at(self, base_url: str, path: str, *, timeout: float | None = None) -> dict[str, Any]:
        if base_url.endswith(":59700"):
            return {"serviceVersion": "0.2.0"} if path == "/version" else {"serviceName": "app-influx"}
        raise NotFound("nothing")

    async def metrics_text(self, base_url: str, *, timeout: float | None = None) -> str:
        return METRICS


async def test_snapshot_shows_a_down_service_as_down_and_the_rest() -> None:
    gateway = FakeGateway(
        down={"core-data"}, devices=[{"name": "a", "operatingState": "UP"}, {"name": "b", "operatingState": "DOWN"}]
    )
    services = {"core-metadata": "http://x:59881", "core-data": "http://x:59880", "rules-engine": "http://x:59720"}
    snap = await collect(gateway, services, ["http://x:59700", "http://x:59701"])
    by_name = {s.name: s for s in snap.services}
    assert by_name["core-data"].up is False
    assert "connection refused" in by_name["core-data"].message
    assert by_name["core-metadata"].up
    assert by_name["core-metadata"].version == "0.1.0"
    assert snap.devices_by_state() == (1, 1)
    assert [(e.name, e.version) for e in snap.exports] == [("app-influx", "0.2.0")]
    problems = {(p.kind, p.subject) for p in snap.problems()}
    assert problems == {("service", "core-data"), ("device", "b"), ("rule", "r2"), ("export", "app-influx")}


async def test_snapshot_without_metadata_or_rules_engine_still_has_the_services() -> None:
    gateway = FakeGateway(down={"rules-engine"}, devices=None)
    snap = await collect(gateway, {"core-metadata": "u", "rules-engine": "v"}, [])
    assert snap.devices is None
    assert "unreachable" in snap.devices_error
    assert snap.rules is None
    assert "unreachable" in snap.rules_error
    assert snap.exports == []
    assert {p.kind for p in snap.problems()} == {"service", "devices"}


def test_settings_follow_the_launcher_ports(monkeypatch: Any) -> None:
    monkeypatch.setenv("EDGEPLANE_CORE_METADATA_PORT", "60881")
    monkeypatch.setenv("EDGEPLANE_CORE_DATA_PORT", "60880")
    settings = ConsoleSettings(service_urls={"core-command": "http://cmd:1"})
    urls = settings.service_url_map()
    assert urls["core-metadata"] == "http://127.0.0.1:60881"
    assert urls["core-data"] == "http://127.0.0.1:60880"
    assert urls["core-command"] == "http://cmd:1"
    assert "console" not in urls
    apps = settings.app_service_url_list()
    assert apps[0] == "http://127.0.0.1:60700"
    assert len(apps) == 10


def test_the_overview_shows_every_service_unless_told_which(monkeypatch: Any) -> None:
    monkeypatch.delenv("CONSOLE_SHOWN_SERVICES", raising=False)
    shown = ConsoleSettings().shown_service_urls()
    assert {"core-metadata", "core-data", "core-command", "device-modbus", "device-opcua", "device-virtual",
            "rules-engine"} == set(shown)  # fmt: skip
    settings = ConsoleSettings(shown_services=["core-metadata", "device-modbus"])
    assert list(settings.shown_service_urls()) == ["core-metadata", "device-modbus"]
    with pytest.raises(ValidationError, match=r"shown_services: unknown services \['device-bacnet'\]"):
        ConsoleSettings(shown_services=["core-data", "device-bacnet"])


def test_a_rule_that_fired_again_after_its_last_error_is_no_longer_a_problem() -> None:
    def snap(counters: dict[str, Any]) -> Snapshot:
        return Snapshot(services=[], rules=[{"id": "r", "counters": counters}])

    failing = {"lastError": "command timed out", "lastErrorAt": 2_000, "lastFired": 1_000}
    assert [(p.kind, p.subject) for p in snap(failing).problems()] == [("rule", "r")]
    recovered = {**failing, "lastFired": 3_000}
    assert snap(recovered).problems() == []
    assert [p.subject for p in snap({"lastError": "bad", "lastErrorAt": 5}).problems()] == ["r"]  # never fired
