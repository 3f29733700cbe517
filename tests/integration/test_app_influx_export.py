"""app services against real servers: NATS JetStream (trigger and store-and-forward buffer) and
VictoriaMetrics speaking the InfluxDB v2 write API, started on free loopback ports and read back through its
export API.

Delivery is at least once: a duplicate needs an export that succeeded just before a crash (or whose
acknowledgement was lost), and is bounded by one batch per crash. None of these scenarios can produce one
(nothing is exported while the target is down), so every count below is exact.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app_services.main import create_app
from app_services.settings import AppServiceSettings
from edgeplane_common.bus import MessageEnvelope, Topics
from edgeplane_common.bus.nats import NatsMessageBus
from edgeplane_common.embedded import free_port
from tests.support.apps import event, reading, write_pipeline
from tests.support.export_targets import NO_VICTORIA, VICTORIA, Victoria, now_ms_origin, running_app, status
from tests.support.stack import wait_until

pytestmark = pytest.mark.skipif(VICTORIA is None, reason=NO_VICTORIA)

ROOT = Path(__file__).resolve().parents[2]

PIPELINE = """Trigger:
  Type: edgex-messagebus
  SubscribeTopics: "events/device/DSVC/#"
Writable:
  Pipeline:
    ExecutionOrder: "InfluxDBExport"
    Functions:
      InfluxDBExport:
        Parameters:
          Measurement: "{profileName}"
          Tags: "device={deviceName},source={sourceName}"
          BatchSize: "BATCH"
  StoreAndForward:
    MaxBytes: MAXBYTES
    RetryInterval: 50ms
    MaxRetryInterval: 300ms
"""


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[Victoria]:
    server = Victoria(tmp_path / "victoria")
    server.start()
    yield server
    server.stop()


def pipeline_file(tmp_path: Path, dsvc: str, *, batch: int = 100, max_bytes: str = "64MiB") -> Path:
    text = PIPELINE.replace("DSVC", dsvc).replace("BATCH", str(batch)).replace("MAXBYTES", max_bytes)
    return write_pipeline(tmp_path, text, f"{dsvc}.yaml")


def settings(name: str, path: Path, nats_url: str, **extra: Any) -> AppServiceSettings:
    return AppServiceSettings.model_validate(
        {"service_name": name, "pipeline_file": str(path), "nats": {"url": nats_url}, **extra}
    )


async def publish(bus: NatsMessageBus, dsvc: str, profile: str, events: list[dict[str, Any]]) -> None:
    for ev in events:
        topic = Topics.events(dsvc, profile, ev["deviceName"], ev["sourceName"])
        await bus.publish_durable(topic, MessageEnvelope(payload=ev, content_type="application/json"))


def flow_events(n: int, profile: str, *, start: int = 0, base: int | None = None) -> list[dict[str, Any]]:
    origin = base if base is not None else now_ms_origin()
    return [
        event(
            f"pump-{i % 3}",
            [reading("Flow", f"{start + i}.5", origin=origin + (start + i) * 1_000_000)],
            profile=profile,
            origin=origin + (start + i) * 1_000_000,
        )
        for i in range(n)
    ]


async def test_every_point_arrives_with_measurement_tags_fields_and_timestamp(
    bus: NatsMessageBus, nats_url: str, tmp_path: Path, victoria: Victoria
) -> None:
    dsvc = f"dev-{uuid.uuid4().hex[:8]}"
    profile = f"Pump{uuid.uuid4().hex[:6]}"
    origin = now_ms_origin()
    events = [
        event(
            "pump 1",
            [
                reading("Flow", "21.5", origin=origin),
                reading("Count", "-7", "Int32", origin=origin + 1_000_000),
                reading("Total", "9", "Uint64", origin=origin + 2_000_000),
                reading("On", "true", "Bool", origin=origin + 3_000_000),
            ],
            profile=profile,
            source="All,Values",
            origin=origin,
            tags={"site": "plant a"},
        ),
        event("pump=2", [reading("Flow", "-0.25", origin=origin + 5_000_000)], profile=profile, origin=origin),
    ]
    app = create_app(
        settings("app-it-influx", pipeline_file(tmp_path, dsvc), nats_url),
        bus=bus,
        environ={"INFLUXDB_V2_URL": victoria.url, "INFLUXDB_V2_TOKEN": "t", "INFLUXDB_V2_ORG": "o"},
    )
    async with running_app(app) as client:
        await wait_until(lambda: app.state.app_service.trigger.subscriptions, timeout=20)
        await publish(bus, dsvc, profile, events)

        async def exported() -> bool:
            return (await status(client))["exported"] == 2

        await wait_until(exported, timeout=30)
        s = await status(client)
        assert (s["received"], s["buffered"], s["exported"], s["dropped"]) == (2, 2, 2, 0)
    got = {
        (x["metric"]["__name__"], tuple(sorted((k, v) for k, v in x["metric"].items() if k != "__name__"))): list(
            zip(x["timestamps"], x["values"], strict=True)
        )
        for x in await victoria.series(f'{{__name__=~"{profile}_.*"}}', at_least=5)
    }
    ms = origin // 1_000_000
    tags1 = (("device", "pump 1"), ("site", "plant a"), ("source", "All,Values"))
    tags2 = (("device", "pump=2"), ("source", "Flow"))
    assert got == {
        (f"{profile}_Flow", tags1): [(ms, 21.5)],
        (f"{profile}_Count", tags1): [(ms + 1, -7)],
        (f"{profile}_Total", tags1): [(ms + 2, 9)],
        (f"{profile}_On", tags1): [(ms + 3, 1)],
        (f"{profile}_Flow", tags2): [(ms + 5, -0.25)],
    }


async def test_outage_of_the_target_loses_nothing_and_duplicates_nothing(
    bus: NatsMessageBus, nats_url: str, tmp_path: Path, victoria: Victoria
) -> None:
    dsvc = f"dev-{uuid.uuid4().hex[:8]}"
    profile = f"Out{uuid.uuid4().hex[:6]}"
    base = now_ms_origin()
    app = create_app(
        settings("app-it-outage", pipeline_file(tmp_path, dsvc, batch=50), nats_url),
        bus=bus,
        environ={"INFLUXDB_V2_URL": victoria.url},
    )
    async with running_app(app) as client:
        await wait_until(lambda: app.state.app_service.trigger.subscriptions, timeout=20)
        await publish(bus, dsvc, profile, flow_events(100, profile, base=base))

        async def exported(n: int) -> Any:
            async def check() -> bool:
                return (await status(client))["exported"] == n

            return check

        await wait_until(await exported(100), timeout=30)
        victoria.stop()  # the outage
        await publish(bus, dsvc, profile, flow_events(400, profile, start=100, base=base))

        async def buffered_and_failing() -> bool:
            s = await status(client)
            return s["buffered"] == 500 and s["retried"] > 0 and s["state"] == "failing"

        await wait_until(buffered_and_failing, timeout=30)
        s = await status(client)
        assert s["bufferDepth"] > 0
        assert s["lastErrorPermanent"] is False
        victoria.start()
        await wait_until(await exported(500), timeout=60)

        async def drained() -> bool:
            return (await status(client))["bufferDepth"] == 0

        await wait_until(drained, timeout=10)
        s = await status(client)
        assert (s["state"], s["dropped"], s["exported"]) == ("running", 0, 500)
    found = await victoria.series(f'{{__name__="{profile}_Flow"}}', at_least=500)
    values = sorted(v for x in found for v in x["values"])
    assert values == [i + 0.5 for i in range(500)]


async def test_full_buffer_drops_the_oldest_and_counts_them(
    bus: NatsMessageBus, nats_url: str, tmp_path: Path, victoria: Victoria
) -> None:
    dsvc = f"dev-{uuid.uuid4().hex[:8]}"
    profile = f"Full{uuid.uuid4().hex[:6]}"
    victoria.stop()  # down from the start: everything waits in the buffer
    app = create_app(
        settings("app-it-full", pipeline_file(tmp_path, dsvc, batch=10, max_bytes="8KiB"), nats_url),
        bus=bus,
        environ={"INFLUXDB_V2_URL": victoria.url},
    )
    total = 300
    async with running_app(app) as client:
        await wait_until(lambda: app.state.app_service.trigger.subscriptions, timeout=20)
        await publish(bus, dsvc, profile, flow_events(total, profile))

        async def all_buffered() -> bool:
            return (await status(client))["buffered"] == total

        await wait_until(all_buffered, timeout=30)
        assert (await status(client))["bufferBytes"] <= 8 * 1024
        victoria.start()

        async def settled() -> bool:
            s = await status(client)
            return s["bufferDepth"] == 0 and s["exported"] + s["dropped"] == total and s["exported"] > 0

        await wait_until(settled, timeout=60)
        s = await status(client)
        metrics = (await client.get("/metrics")).text
    assert s["dropped"] > 0
    assert f'edgeplane_app_dropped_total{{reason="drop-oldest",service="app-it-full"}} {float(s["dropped"])}' in metrics
    found = await victoria.series(f'{{__name__="{profile}_Flow"}}', at_least=s["exported"])
    values = sorted(v for x in found for v in x["values"])
    assert len(values) == s["exported"]
    assert values[-1] == total - 1 + 0.5  # the newest are kept


class AppProcess:
    def __init__(self, instance: str, env: dict[str, str], log: Path) -> None:
        self.instance = instance
        self.env = env
        self.log = log
        self.port = int(env[f"{instance.upper().replace('-', '_')}_HTTP__PORT"])
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app_services", "--instance", self.instance],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )

    async def status(self) -> dict[str, Any] | None:
        assert self.proc is not None
        assert self.proc.poll() is None, f"the app service exited; see {self.log}"
        try:
            async with httpx.AsyncClient() as c:
                r = await c.get(f"http://127.0.0.1:{self.port}/api/v3/status")
        except httpx.HTTPError:
            return None
        return r.json() if r.status_code == 200 else None

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


async def test_kill_9_during_the_outage_still_delivers_every_point_once(
    bus: NatsMessageBus, nats_url: str, tmp_path: Path
) -> None:
    dsvc = f"dev-{uuid.uuid4().hex[:8]}"
    profile = f"Kill{uuid.uuid4().hex[:6]}"
    victoria = Victoria(tmp_path / "victoria")  # not started: the outage is on from the beginning
    instance = f"app-kill-{uuid.uuid4().hex[:6]}"
    prefix = instance.upper().replace("-", "_")
    env = {
        **os.environ,
        f"{prefix}_HTTP__PORT": str(free_port()),
        f"{prefix}_PIPELINE_FILE": str(pipeline_file(tmp_path, dsvc, batch=20)),
        f"{prefix}_NATS__URL": nats_url,
        f"{prefix}_LOG_JSON": "false",
        "INFLUXDB_V2_URL": victoria.url,
    }
    app = AppProcess(instance, env, tmp_path / "app.log")
    total = 300
    try:
        app.start()

        async def subscribed() -> bool:
            s = await app.status()
            return s is not None and s["state"] in ("running", "failing")

        await wait_until(subscribed, timeout=30)
        await asyncio.sleep(0.5)  # the durable consumer is created right after the buffer
        await publish(bus, dsvc, profile, flow_events(total, profile))

        async def buffered() -> bool:
            s = await app.status()
            return s is not None and s["buffered"] == total and s["retried"] > 0

        await wait_until(buffered, timeout=30)
        app.kill()
        app.start()
        victoria.start()

        async def exported() -> bool:
            s = await app.status()
            return s is not None and s["exported"] == total and s["bufferDepth"] == 0

        await wait_until(exported, timeout=60)
        assert await victoria.count(f'{{__name__="{profile}_Flow"}}', at_least=total) == total
    finally:
        app.stop()
        victoria.stop()
