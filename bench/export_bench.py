# ruff: noqa: ASYNC110, ASYNC210  (a benchmark driver: blocking status polls between timed parts are fine)
"""App-service export benchmark (issue 13): `python bench/export_bench.py` or `make bench`.

In one run, against one VictoriaMetrics (the InfluxDB v2 write API; Debian's `victoria-metrics`) started here:

  (a) the InfluxDB export: EdgeX events (one reading each) through the pipeline's line-protocol transform,
      joined into batches of 5000 and written by InfluxDBExport (influxdb-client's async v2 write API).
  (b) raw influxdb-client, the same points: pre-built line protocol (the ceiling), and influxdb-client's
      Point objects (its own convenience path).
  (c) deadband on a noisy sine (span 0..100, noise +-0.2): points exported with a deadband of 1% of the
      span, and the largest difference between the signal and the last exported value.
  (d) an outage: `python -m app_services` (a subprocess with its JetStream buffer) while the target is down,
      fed 1,000 readings/s for --outage seconds (default 60; the issue's figure is for 600): its RSS over
      time, then the time to drain once the target is back, and the points counted in the target.
  (e) a burst: the shipped app-influx-export (its own res/ pipeline, a subprocess) with the target up, sent
      --burst events (default 10,000) at once, --bursts times; its RSS sampled every 5 ms (the peak is what a
      compose memory limit must hold).

Figures and ratios are printed; nothing is asserted about time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import psutil
from _procs import Procs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app_services.application.data import Context
from app_services.application.functions.deadband import deadband
from app_services.application.functions.transforms import to_line_protocol
from app_services.application.lineprotocol import LineProtocol
from app_services.application.params import Params
from app_services.infrastructure.influx_export import InfluxExporter
from edgeplane_common.bus import MessageEnvelope, Topics
from edgeplane_common.bus.nats import NatsMessageBus
from edgeplane_common.embedded import EmbeddedNats, free_port
from edgeplane_common.settings import NatsSettings

BATCH = 5000
FEEDER_ACK_TIMEOUT_S = 60.0
"""How long the load generator waits for JetStream's ack of an event (the default 5 s stalls out on a loaded shared
machine, and a 10-minute run is lost to one slow ack)."""


class Victoria:
    def __init__(self, data: Path, port: int | None = None) -> None:
        self.data = data
        self.port = port or free_port()
        self.proc: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        import subprocess

        binary = shutil.which("victoria-metrics")
        assert binary
        self.proc = subprocess.Popen(
            [
                binary,
                f"-httpListenAddr=127.0.0.1:{self.port}",
                f"-storageDataPath={self.data}",
                "-retentionPeriod=100y",
                "-loggerLevel=ERROR",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("victoria-metrics did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    async def count(self, name: str, expect: int, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        total = 0
        async with httpx.AsyncClient(base_url=self.url, timeout=60) as c:
            while time.monotonic() < deadline:
                await c.get("/internal/force_flush")
                r = await c.post("/api/v1/export", data={"match[]": f'{{__name__="{name}"}}'})
                total = sum(len(__import__("orjson").loads(line)["values"]) for line in r.text.splitlines() if line)
                if total >= expect:
                    break
                await asyncio.sleep(0.5)
        return total


def events(n: int, measurement: str, origin: int, readings: int = 1) -> list[dict[str, Any]]:
    """`n` events of `readings` readings each (resources Flow, Flow1, Flow2, ...)."""
    return [
        {
            "id": str(uuid.uuid4()),
            "deviceName": f"dev-{i % 10}",
            "profileName": measurement,
            "sourceName": "Flow",
            "origin": origin + i * 1_000_000,
            "readings": [
                {
                    "resourceName": f"Flow{r}" if r else "Flow",
                    "value": f"{i % 1000}.25",
                    "valueType": "Float64",
                    "origin": origin + i * 1_000_000,
                }
                for r in range(readings)
            ],
        }
        for i in range(n)
    ]


async def bench_export(vm: Victoria, n: int) -> None:
    from influxdb_client import Point, WritePrecision
    from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync

    origin = (time.time_ns() // 1_000_000 - 10 * n) * 1_000_000
    evs = events(n, "benchA", origin)
    exporter = InfluxExporter(Params("InfluxDBExport", {"BatchSize": BATCH}), {"INFLUXDB_V2_URL": vm.url}, {})
    transform = to_line_protocol(exporter.line_protocol)
    ctx = Context()
    t0 = time.perf_counter()
    for start in range(0, n, BATCH):
        lines = [await transform(ctx, e) for e in evs[start : start + BATCH]]
        await exporter.export(ctx, b"\n".join(x for x in lines if x), len(lines))
    ours = n / (time.perf_counter() - t0)
    await exporter.close()

    lp = LineProtocol()
    raw_lines = [lp.encode(e) for e in events(n, "benchB", origin)]
    async with InfluxDBClientAsync(url=vm.url, token="t", org="o") as client:
        api = client.write_api()
        t0 = time.perf_counter()
        for start in range(0, n, BATCH):
            await api.write("b", "o", b"\n".join(raw_lines[start : start + BATCH]))
        raw = n / (time.perf_counter() - t0)
        pts_events = events(n, "benchC", origin)
        t0 = time.perf_counter()
        for start in range(0, n, BATCH):
            points = [
                Point(e["profileName"])
                .tag("device", e["deviceName"])
                .tag("source", e["sourceName"])
                .field("Flow", float(e["readings"][0]["value"]))
                .time(e["origin"], WritePrecision.NS)
                for e in pts_events[start : start + BATCH]
            ]
            await api.write("b", "o", points)
        point_path = n / (time.perf_counter() - t0)
    got = await vm.count("benchA_Flow", n)
    print(
        f"(a) InfluxDBExport (events -> line protocol -> v2 write, batches of {BATCH}): {ours:,.0f} points/s "
        f"({got:,}/{n:,} points read back)"
    )
    print(f"(b) raw influxdb-client, pre-built line protocol:  {raw:,.0f} points/s  (ours = {ours / raw:.0%} of it)")
    print(
        f"    raw influxdb-client, Point objects:            {point_path:,.0f} points/s "
        f"(ours = {ours / point_path:.1f}x)"
    )


async def bench_deadband(n: int = 100_000) -> None:
    rnd = random.Random(13)
    span = 100.0
    fn = deadband(Params("Deadband", {"Percent": "1", "SpanMin": "0", "SpanMax": str(span)}))
    ctx = Context()
    held = None
    worst = 0.0
    sent = 0
    for i in range(n):
        value = 50 + 45 * math.sin(2 * math.pi * i / 20_000) + rnd.uniform(-0.2, 0.2)
        ev = {
            "deviceName": "d",
            "readings": [{"resourceName": "x", "valueType": "Float64", "value": repr(value), "origin": i}],
        }
        if await fn(ctx, ev) is not None:
            held = value
            sent += 1
        assert held is not None
        worst = max(worst, abs(value - held))
    print(
        f"(c) deadband 1% of span on a noisy sine ({n:,} readings): {sent:,} exported, "
        f"{1 - sent / n:.1%} fewer points; largest error {worst:.3f} (threshold {span / 100:.3f})"
    )


@contextlib.asynccontextmanager
async def app_service(
    tmp: Path, instance: str, env: dict[str, str], ready: tuple[str, ...] = ("running",)
) -> AsyncIterator[tuple[psutil.Process, str]]:
    """`python -m app_services --instance INSTANCE` as `edgeplane up` runs it (_procs: -OO), on a free port;
    yields its process and status URL once its state is one of `ready` (and a second more), then stops it."""
    port = free_port()
    prefix = instance.upper().replace("-", "_")
    env = {f"{prefix}_HTTP__PORT": str(port), f"{prefix}_LOG_JSON": "false", **env}
    procs = Procs(tmp)
    proc = procs.spawn(instance, ["-m", "app_services", "--instance", instance], env)
    status_url = f"http://127.0.0.1:{port}/api/v3/status"
    try:
        for _ in range(300):
            try:
                if httpx.get(status_url, timeout=1).json()["state"] in ready:
                    break
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            await asyncio.sleep(0.1)
        await asyncio.sleep(1)
        yield proc.ps, status_url
    finally:
        procs.stop_all()


async def bench_outage(tmp: Path, nats_url: str, seconds: int, rate: int = 1000) -> None:
    vm = Victoria(tmp / "vm-outage")
    pipeline = tmp / "outage.yaml"
    dsvc = f"bench-{uuid.uuid4().hex[:6]}"
    pipeline.write_text(
        f'Trigger: {{Type: edgex-messagebus, SubscribeTopics: "events/device/{dsvc}/#"}}\n'
        "Writable:\n  Pipeline:\n    ExecutionOrder: InfluxDBExport\n"
        "  StoreAndForward: {MaxBytes: 512MiB, RetryInterval: 500ms, MaxRetryInterval: 5s}\n"
    )
    env = {
        "APP_BENCH_OUTAGE_PIPELINE_FILE": str(pipeline),
        "APP_BENCH_OUTAGE_NATS__URL": nats_url,
        "INFLUXDB_V2_URL": vm.url,
    }
    try:
        async with app_service(tmp, "app-bench-outage", env, ready=("running", "failing")) as (ps, status_url):
            bus = NatsMessageBus(NatsSettings(url=nats_url, request_timeout=FEEDER_ACK_TIMEOUT_S), name="bench")
            await bus.connect()
            rss: list[float] = []
            origin = (time.time_ns() // 1_000_000 - 1000 * seconds) * 1_000_000
            total = seconds * rate
            t0 = time.perf_counter()
            futures = []
            for i, ev in enumerate(events(total, "benchOutage", origin)):
                topic = Topics.events(dsvc, "benchOutage", ev["deviceName"], "Flow")
                futures.append(await bus.publish_durable_pipelined(topic, MessageEnvelope(payload=ev)))
                if i % rate == rate - 1:
                    await asyncio.gather(*futures)
                    futures.clear()
                    rss.append(ps.memory_info().rss / 2**20)
                    await asyncio.sleep(max(0.0, (i + 1) / rate - (time.perf_counter() - t0)))
            await asyncio.gather(*futures)
            for _ in range(600):
                if httpx.get(status_url, timeout=5).json()["buffered"] >= total:
                    break
                await asyncio.sleep(0.1)
            rss.append(ps.memory_info().rss / 2**20)
            s = httpx.get(status_url, timeout=5).json()
            print(
                f"(d) outage {seconds}s at {rate:,} readings/s: {s['buffered']:,} buffered "
                f"({s['bufferBytes'] / 2**20:.1f} MiB "
                f"in the JetStream buffer), RSS start {rss[0]:.0f} MB, max {max(rss):.0f} MB, end {rss[-1]:.0f} MB"
            )
            vm.start()
            t1 = time.perf_counter()
            while httpx.get(status_url, timeout=5).json()["exported"] < total:
                await asyncio.sleep(0.2)
            drain = time.perf_counter() - t1
            got = await vm.count("benchOutage_Flow", total)
            print(
                f"    target back: drained in {drain:.1f}s ({total / drain:,.0f} points/s); "
                f"{got:,}/{total:,} points in the target; RSS {ps.memory_info().rss / 2**20:.0f} MB"
            )
            await bus.close()
    finally:
        vm.stop()


def rss_anon(pid: int) -> tuple[float, float]:
    """(RSS, its anonymous part) in MB: anonymous memory is what a memory limit cannot reclaim (the rest is the
    files mapped: libraries, which the kernel drops and reads again under pressure)."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["RssAnon"].split()[0]) / 1024


class RssSampler:
    """The peak RSS (and anonymous RSS) of a process, sampled every `every` seconds in a thread (a burst
    lasts about a second)."""

    def __init__(self, pid: int, every: float = 0.005) -> None:
        import threading

        self.pid = pid
        self.every = every
        self.peak = 0.0
        self.peak_anon = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        rss, anon = rss_anon(self.pid)
        self.peak = max(self.peak, rss)
        self.peak_anon = max(self.peak_anon, anon)

    def _run(self) -> None:
        while not self._stop.is_set():
            with __import__("contextlib").suppress(OSError, ValueError, KeyError):
                self.sample()
            self._stop.wait(self.every)

    def __enter__(self) -> RssSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def bench_burst(
    tmp: Path, nats_url: str, points: int, bursts: int, pipeline: str = "", readings: int = 1, down: bool = False
) -> None:
    """With `down`, each burst lands while the target is away and is exported once it is back: the forwarder
    then finds its whole batch size waiting (the largest groups it makes)."""
    n = max(1, points // readings)
    vm = Victoria(tmp / "vm-burst")
    vm.start()
    env = {"APP_INFLUX_EXPORT_NATS__URL": nats_url, "APP_INFLUX_EXPORT_URL": vm.url}
    if pipeline:
        env["APP_INFLUX_EXPORT_PIPELINE_FILE"] = pipeline
    try:
        async with app_service(tmp, "app-influx-export", env) as (ps, status_url):
            bus = NatsMessageBus(NatsSettings(url=nats_url, request_timeout=FEEDER_ACK_TIMEOUT_S), name="bench-burst")
            await bus.connect()
            idle = rss_anon(ps.pid)
            peaks = []
            origin = (time.time_ns() // 1_000_000 - 1000 * n * bursts) * 1_000_000
            for b in range(bursts):
                with RssSampler(ps.pid) as sampler:
                    if down:
                        vm.stop()
                    futures = []
                    for ev in events(n, "benchBurst", origin + b * n * 1_000_000, readings):
                        topic = Topics.events("burst", "benchBurst", ev["deviceName"], "Flow")
                        futures.append(await bus.publish_durable_pipelined(topic, MessageEnvelope(payload=ev)))
                    await asyncio.gather(*futures)
                    if down:
                        while httpx.get(status_url, timeout=5).json()["buffered"] < n * (b + 1):
                            await asyncio.sleep(0.05)
                        vm.start()
                    while httpx.get(status_url, timeout=5).json()["exported"] < n * (b + 1):
                        await asyncio.sleep(0.05)
                    await asyncio.sleep(1)
                peaks.append((sampler.peak, sampler.peak_anon))
            after = rss_anon(ps.pid)
            got = await vm.count("benchBurst_Flow", n * bursts)
            plural = "s" if readings > 1 else ""
            peak, peak_anon = (" / ".join(f"{p[i]:.0f}" for p in peaks) for i in (0, 1))
            print(
                f"(e) burst of {n * readings:,} points ({n:,} events of {readings} reading{plural}) "
                f"into app-influx-export ({pipeline or 'shipped pipeline'}, "
                f"{'target down, then up' if down else 'target up'}), x{bursts}: "
                f"RSS idle {idle[0]:.0f} MB, peak {peak} MB, after {after[0]:.0f} MB "
                f"(anonymous: idle {idle[1]:.0f}, peak {peak_anon}, after {after[1]:.0f}); "
                f"{got:,}/{n * bursts:,} Flow points in the target"
            )
            await bus.close()
    finally:
        vm.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--outage", type=int, default=60, help="seconds of outage at 1,000 readings/s (0: skip)")
    parser.add_argument("--burst", type=int, default=10_000, help="(e): points in a burst (0: skip)")
    parser.add_argument("--readings", type=int, default=1, help="(e): readings per event")
    parser.add_argument("--burst-down", action="store_true", help="(e): each burst while the target is down")
    parser.add_argument("--bursts", type=int, default=3, help="bursts in a row")
    parser.add_argument("--only-burst", action="store_true", help="run (e) alone")
    parser.add_argument("--pipeline", default="", help="(e) with this pipeline file instead of the shipped one")
    args = parser.parse_args()
    if shutil.which("victoria-metrics") is None:
        print("victoria-metrics is not installed (Debian package victoria-metrics): skipping the export bench")
        await bench_deadband()
        return
    with tempfile.TemporaryDirectory(prefix="export-bench-") as d:
        tmp = Path(d)
        if args.only_burst:
            with EmbeddedNats(data_dir=tmp / "nats") as server:
                await bench_burst(
                    tmp, server.url, args.burst, args.bursts, args.pipeline, args.readings, args.burst_down
                )
            return
        vm = Victoria(tmp / "vm")
        vm.start()
        try:
            await bench_export(vm, args.points)
        finally:
            vm.stop()
        await bench_deadband()
        if args.outage > 0:
            with EmbeddedNats(data_dir=tmp / "nats") as server:
                await bench_outage(tmp, server.url, args.outage)
        if args.burst > 0:
            with EmbeddedNats(data_dir=tmp / "nats-burst") as server:
                await bench_burst(tmp, server.url, args.burst, args.bursts, readings=args.readings)


if __name__ == "__main__":
    asyncio.run(main())
