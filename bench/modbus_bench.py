"""Modbus acquisition benchmark (issue 3, item 4): `python bench/modbus_bench.py` or `make bench`.

In one run, against the same simulator processes (`python -m device_modbus.sim`, each on its own port with a
generated config of 100 Float32 holding registers), it measures:

  (a) raw pymodbus: AsyncModbusTcpClient issuing the coalesced reads device-modbus plans for the device
      (device_modbus.planner: 2 requests of <=125 registers), back to back, decoded with struct;
  (b) the device service end to end: nats-server (JetStream) + Redis + core-metadata + device-modbus as real
      subprocesses; one device of 100 Float32 resources per simulator, each with an autoEvent at a very short
      interval (polled as fast as it can). The points/s actually published on NATS are counted by a subscriber
      on the events subject (readings in received events, over a fixed window after a warm-up), together
      with the device service's CPU% and RSS (psutil);
  (c) the same 100 resources read naively, one read_holding_registers of 2 registers per resource.

(a) and (c) are measured on one link, back to back; with several devices (a) is measured again on all their
links at once, the like-for-like baseline of (b). The client side (this process during (a)/(c), device-modbus
during (b)) is pinned to core 0 and everything else (simulators, nats-server, Redis, core-metadata, the
subscriber) to the other core(s): a PLC is another machine, so the simulator must neither take the client's
core nor preempt it there on every request (`--no-pin` to compare). Other work on the machine skews every
figure: the machine's CPU before and during the run is printed. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import struct
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import nats
import orjson
import psutil
import yaml
from _procs import Procs, wait_http, wait_tcp, workdir
from pymodbus.client import AsyncModbusTcpClient

from device_modbus.planner import Span, plan
from edgeplane_common.bus import Topics
from edgeplane_common.embedded import EmbeddedNats, EmbeddedRedis, free_port

POINTS = 100
UNIT_ID = 1
PROFILE = "Bench-Float32x100"
SERVICE = "device-modbus"


# ------------------------------------------------------------------------------------------- generated files


def sim_config(tick_interval: float) -> dict[str, object]:
    """100 Float32 holding registers at 0, 2, ..., 198, each a sine with its own amplitude and period."""
    points = [
        {
            "name": f"p{i:03d}",
            "address": 2 * i,
            "type": "float32",
            "sine": {"amplitude": 1.0 + i / 10, "period_s": 5 + i % 17, "offset": 20.0 + i},
        }
        for i in range(POINTS)
    ]
    return {"tick_interval": tick_interval, "units": [{"unit_id": UNIT_ID, "holding_registers": points}]}


def profile() -> dict[str, object]:
    resources = [
        {
            "name": f"Value{i:03d}",
            "description": f"Float32 point {i}",
            "attributes": {"primaryTable": "HOLDING_REGISTERS", "startingAddress": 2 * i},
            "properties": {"valueType": "Float32", "readWrite": "R", "units": "degC"},
        }
        for i in range(POINTS)
    ]
    return {
        "name": PROFILE,
        "manufacturer": "edgeplane",
        "model": "bench",
        "description": "100 Float32 holding registers (benchmark)",
        "deviceResources": resources,
        "deviceCommands": [
            {
                "name": "AllValues",
                "readWrite": "R",
                "resourceOperations": [{"deviceResource": f"Value{i:03d}"} for i in range(POINTS)],
            }
        ],
    }


def devices(ports: list[int], interval: str) -> dict[str, object]:
    return {
        "deviceList": [
            {
                "name": f"bench-plc-{n}",
                "profileName": PROFILE,
                "serviceName": SERVICE,
                "protocols": {
                    "modbus-tcp": {
                        "Address": "127.0.0.1",
                        "Port": str(port),
                        "UnitID": str(UNIT_ID),
                        "Timeout": "5",
                        "IdleTimeout": "0",
                    }
                },
                "autoEvents": [{"interval": interval, "onChange": False, "sourceName": "AllValues"}],
            }
            for n, port in enumerate(ports)
        ]
    }


# ------------------------------------------------------------------------------------------------ processes


class CpuMeter:
    """CPU seconds used by groups of processes between start() and stop()."""

    def __init__(self, procs: dict[str, list[psutil.Process]]) -> None:
        self.procs = procs
        self.before: dict[str, float] = {}
        self.used: dict[str, float] = {}
        self.wall = 0.0
        self._t0 = 0.0

    @staticmethod
    def _cpu(group: list[psutil.Process]) -> float:
        total = 0.0
        for p in group:
            t = p.cpu_times()
            total += t.user + t.system
        return total

    def start(self) -> None:
        self.before = {k: self._cpu(p) for k, p in self.procs.items()}
        self._machine = psutil.cpu_times()
        self._t0 = time.perf_counter()

    def stop(self) -> None:
        self.wall = time.perf_counter() - self._t0
        self.used = {k: self._cpu(p) - self.before[k] for k, p in self.procs.items()}
        now = psutil.cpu_times()
        busy = sum(now) - now.idle - now.iowait - (sum(self._machine) - self._machine.idle - self._machine.iowait)
        self.machine_busy = 100.0 * busy / self.wall

    def percent(self, key: str) -> float:
        return 100.0 * self.used[key] / self.wall


class Pinning:
    """CPU affinity: core 0 for the Modbus client side, the other cores for everything else. Children inherit
    the affinity of the process that starts them (all their threads), so this process switches between the two
    before starting each, and device-modbus is placed on the client core as it starts."""

    def __init__(self, enabled: bool) -> None:
        cores = sorted(os.sched_getaffinity(0))
        self.enabled = enabled and len(cores) >= 2
        self.client_cores, self.rest_cores = set(cores[:1]), set(cores[1:])

    def as_client(self) -> None:
        if self.enabled:
            os.sched_setaffinity(0, self.client_cores)

    def as_rest(self) -> None:
        if self.enabled:
            os.sched_setaffinity(0, self.rest_cores)

    def client_preexec(self) -> Callable[[], None] | None:
        if not self.enabled:
            return None
        cores = self.client_cores
        return lambda: os.sched_setaffinity(0, cores)

    def describe(self) -> str:
        if not self.enabled:
            return "no CPU pinning"
        return (
            f"client side (raw clients, then device-modbus) pinned to core {min(self.client_cores)}; simulators, "
            f"nats-server, Redis, core-metadata and the subscriber to {sorted(self.rest_cores)}"
        )


def start_py_spy(pid: int, seconds: float, out: str) -> subprocess.Popen[bytes]:
    py_spy = str(Path(sys.executable).parent / "py-spy")
    cmd = [py_spy, "record", "-p", str(pid), "--format", "raw", "-r", "200", "-d", str(int(seconds)), "-o", out]
    return subprocess.Popen([*cmd, "--nonblocking", "--gil"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


# ------------------------------------------------------------------------------------------------ raw reads

Reader = Callable[[AsyncModbusTcpClient], Awaitable[int]]


def coalesced_reader() -> Reader:
    """The blocks device-modbus's planner makes for the profile, read one after the other."""
    blocks = plan([Span(i, "HOLDING_REGISTERS", 2 * i, 2) for i in range(POINTS)])
    decoders = [(b.start, b.count, struct.Struct(f">{b.count}H"), struct.Struct(f">{b.count // 2}f")) for b in blocks]

    async def read(client: AsyncModbusTcpClient) -> int:
        n = 0
        for start, count, words, floats in decoders:
            rr = await client.read_holding_registers(start, count=count, device_id=UNIT_ID)
            if rr.isError():
                raise RuntimeError(f"read failed: {rr}")
            n += len(floats.unpack(words.pack(*rr.registers)))
        return n

    read.requests = len(blocks)  # type: ignore[attr-defined]
    return read


def naive_reader() -> Reader:
    words, value = struct.Struct(">2H"), struct.Struct(">f")

    async def read(client: AsyncModbusTcpClient) -> int:
        for i in range(POINTS):
            rr = await client.read_holding_registers(2 * i, count=2, device_id=UNIT_ID)
            if rr.isError():
                raise RuntimeError(f"read failed: {rr}")
            value.unpack(words.pack(*rr.registers))
        return POINTS

    read.requests = POINTS  # type: ignore[attr-defined]
    return read


async def raw_rate(ports: list[int], reader: Reader, seconds: float, warmup: float = 0.5) -> float:
    """Points/s over all links, one client per simulator port reading back to back."""
    clients = [AsyncModbusTcpClient("127.0.0.1", port=p, timeout=5, retries=0) for p in ports]
    for c in clients:
        if not await c.connect():
            raise RuntimeError(f"cannot connect to the simulator on {c.comm_params.port}")
    counted = [0]
    measuring = [False]
    loop = asyncio.get_running_loop()
    stop_at = loop.time() + warmup + seconds

    async def run(client: AsyncModbusTcpClient) -> None:
        while loop.time() < stop_at:
            n = await reader(client)
            if measuring[0]:
                counted[0] += n

    tasks = [asyncio.create_task(run(c)) for c in clients]
    await asyncio.sleep(warmup)
    measuring[0] = True
    t0 = time.perf_counter()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t0
    for c in clients:
        c.close()
    return counted[0] / elapsed


# ------------------------------------------------------------------------------------------- device service


@dataclass
class ServiceResult:
    points_per_s: float
    events_per_s: float
    readings_per_event: float
    window: float
    cpu: dict[str, float]
    machine_busy: float
    rss_mb: float
    sample: dict[str, object] | None


async def measure_published(nats_url: str, warmup: float, window: float, meter: CpuMeter) -> ServiceResult:
    nc = await nats.connect(nats_url, pending_size=256 * 1024 * 1024)
    counts = {"events": 0, "readings": 0}
    sample: list[dict[str, object]] = []
    counting = [False]

    async def on_msg(msg: nats.aio.msg.Msg) -> None:
        # Counting a key is far cheaper than parsing 25 kB of JSON, so the subscriber takes little of the CPU
        # the service needs; every 100th event is parsed in full to check that both counts agree.
        readings = msg.data.count(b'"resourceName":')
        if not sample or counts["events"] % 100 == 0:
            event = orjson.loads(msg.data)["payload"]
            if len(event["readings"]) != readings:
                raise RuntimeError(f"event with {len(event['readings'])} readings counted as {readings}")
            if not sample:
                sample.append(event)
        if counting[0]:
            counts["events"] += 1
            counts["readings"] += readings

    sub = await nc.subscribe(Topics.events_of(SERVICE), cb=on_msg, pending_msgs_limit=1_000_000)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while not sample:
        if loop.time() > deadline:
            raise RuntimeError("no event published on NATS within 60 s (see the device-modbus log)")
        await asyncio.sleep(0.05)
    await asyncio.sleep(warmup)
    counting[0] = True
    meter.start()
    t0 = time.perf_counter()
    await asyncio.sleep(window)
    counting[0] = False
    elapsed = time.perf_counter() - t0
    meter.stop()
    await sub.unsubscribe()
    await nc.drain()
    events = counts["events"]
    return ServiceResult(
        points_per_s=counts["readings"] / elapsed,
        events_per_s=events / elapsed,
        readings_per_event=counts["readings"] / events if events else 0.0,
        window=elapsed,
        cpu={k: meter.percent(k) for k in meter.used},
        machine_busy=meter.machine_busy,
        rss_mb=meter.procs["device-modbus"][0].memory_info().rss / 2**20,
        sample=sample[0] if sample else None,
    )


# ----------------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--devices",
        type=int,
        default=2,
        help="devices polled at once, each on its own simulator process/port (default 2: one device's poll is a "
        "chain of round trips to its simulator that leaves the service idle in between)",
    )
    ap.add_argument("--interval", default="100us", help="autoEvent interval (default 100us: as fast as it can)")
    ap.add_argument("--raw-seconds", type=float, default=5.0, help="measuring time of (a) and (c)")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds of publishing ignored before the window")
    ap.add_argument("--window", type=float, default=10.0, help="seconds over which (b) is counted")
    ap.add_argument("--tick", type=float, default=0.1, help="simulator tick interval (values change this often)")
    ap.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="pin the client side (raw clients, device-modbus) to core 0 and the rest to the other cores",
    )
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, generated files)")
    ap.add_argument(
        "--py-spy", metavar="FILE", help="profile device-modbus during the window (py-spy, collapsed stacks)"
    )
    args = ap.parse_args(argv)
    with workdir("modbus", args.keep) as tmp:
        procs = Procs(tmp)
        try:
            return asyncio.run(run(args, tmp, procs))
        finally:
            procs.stop_all()


async def run(args: argparse.Namespace, tmp: Path, procs: Procs) -> int:
    # Other work on the machine skews every figure: measure it first, and report it.
    args.load_before = psutil.cpu_percent(interval=1.0) * (os.cpu_count() or 1)
    env_quiet = {"EDGEPLANE_LOG_LEVEL": "WARNING", "EDGEPLANE_LOG_JSON": "false"}
    (tmp / "sim.yaml").write_text(yaml.safe_dump(sim_config(args.tick)))
    # The client side (this process for (a)/(c), device-modbus for (b)) gets core 0 to itself; the simulators
    # and everything else share the other core(s). A PLC is another machine: the simulator must not take the
    # client's core, and a wakeup of the simulator must not preempt the client on its own core.
    pins = Pinning(args.pin)
    pins.as_rest()
    ports = [free_port() for _ in range(args.devices)]
    sims = [
        procs.spawn(
            f"modbus-sim-{n}",
            ["-m", "device_modbus.sim", "--config", str(tmp / "sim.yaml"), "--port", str(port), "--no-log-json"],
            env_quiet,
        )
        for n, port in enumerate(ports)
    ]
    for sim, port in zip(sims, ports, strict=True):
        wait_tcp(sim, port)
    pins.as_client()

    coalesced, naive = coalesced_reader(), naive_reader()
    raw = Raw(requests=coalesced.requests)  # type: ignore[attr-defined]
    print(f"(a) raw pymodbus, coalesced ({raw.requests} requests per 100 points), one link ...", flush=True)
    raw.coalesced = await raw_rate(ports[:1], coalesced, args.raw_seconds)
    if len(ports) > 1:
        print(f"(a) raw pymodbus, coalesced, {len(ports)} links at once ...", flush=True)
        raw.coalesced_all = await raw_rate(ports, coalesced, args.raw_seconds)
    print("(c) raw pymodbus, naive (100 requests per 100 points), one link ...", flush=True)
    raw.naive = await raw_rate(ports[:1], naive, args.raw_seconds)

    print("(b) starting nats-server, Redis, core-metadata, device-modbus ...", flush=True)
    pins.as_rest()  # from now on this process only subscribes and counts
    nats_srv = EmbeddedNats(data_dir=tmp / "nats").start()
    redis_srv = EmbeddedRedis(data_dir=tmp / "redis").start()
    try:
        res = tmp / "res"
        (res / "profiles").mkdir(parents=True)
        (res / "devices").mkdir()
        (res / "profiles" / "bench.profile.yaml").write_text(yaml.safe_dump(profile(), sort_keys=False))
        (res / "devices" / "bench.devices.yaml").write_text(yaml.safe_dump(devices(ports, args.interval)))
        shared = {**env_quiet, "EDGEPLANE_NATS__URL": nats_srv.url, "EDGEPLANE_REDIS__URL": redis_srv.url}
        md_port, ds_port = free_port(), free_port()
        metadata = procs.spawn(
            "core-metadata",
            ["-m", "core_metadata"],
            {**shared, "CORE_METADATA_HTTP__HOST": "127.0.0.1", "CORE_METADATA_HTTP__PORT": str(md_port)},
        )
        wait_http(metadata, f"http://127.0.0.1:{md_port}/api/v3/ping")
        service = procs.spawn(
            "device-modbus",
            ["-m", "device_modbus"],
            {
                **shared,
                "DEVICE_MODBUS_HTTP__HOST": "127.0.0.1",
                "DEVICE_MODBUS_HTTP__PORT": str(ds_port),
                "DEVICE_MODBUS_METADATA_URL": f"http://127.0.0.1:{md_port}",
                "DEVICE_MODBUS_RES_DIR": str(res),
            },
            pins.client_preexec(),
        )
        wait_http(service, f"http://127.0.0.1:{ds_port}/api/v3/ping")
        assert nats_srv.pid is not None
        meter = CpuMeter(
            {
                "device-modbus": [service.ps],
                "nats-server": [psutil.Process(nats_srv.pid)],
                f"simulator{'s' if len(sims) > 1 else ''} ({len(sims)})": [s.ps for s in sims],
                "bench (subscriber)": [psutil.Process()],
                "core-metadata": [metadata.ps],
            }
        )
        spy = start_py_spy(service.popen.pid, args.warmup + args.window, args.py_spy) if args.py_spy else None
        result = await measure_published(nats_srv.url, args.warmup, args.window, meter)
        if spy is not None:
            spy.wait()
    finally:
        procs.stop_all()
        nats_srv.stop()
        redis_srv.stop()

    report(args, raw, result, pins)
    return 0


@dataclass
class Raw:
    requests: int
    coalesced: float = 0.0
    coalesced_all: float | None = None
    naive: float = 0.0


def report(args: argparse.Namespace, raw: Raw, b: ServiceResult, pins: Pinning) -> None:
    n = args.devices
    w, cores = 64, os.cpu_count() or 1
    speedup = raw.coalesced / raw.naive

    def row(label: str, value: str) -> None:
        print(f"{label:<{w}}{value:>20}")

    print()
    print("=" * (w + 20))
    print("Modbus acquisition benchmark: devices of 100 Float32 holding registers")
    print(f"machine: {cores} cores, Python {platform.python_version()}, {platform.machine()}")
    print(
        f"configuration: {n} device{'s' if n > 1 else ''}, each on its own simulator process and TCP link; "
        f"autoEvent interval {args.interval}; simulator tick {args.tick}s"
    )
    print(f"placement: {pins.describe()}")
    print(f"machine busy before the run (other work): {args.load_before:.0f}% of {cores * 100}%")
    print("-" * (w + 20))
    row("measure", "points/s")
    row(f"(a) raw pymodbus, coalesced ({raw.requests} requests / 100 points), one link", f"{raw.coalesced:,.0f}")
    if raw.coalesced_all is not None:
        row(f"(a{n}) raw pymodbus, coalesced, {n} links at once", f"{raw.coalesced_all:,.0f}")
    row(f"(b) device-modbus, published on NATS, {n} device{'s' if n > 1 else ''}", f"{b.points_per_s:,.0f}")
    row("(c) raw pymodbus, naive (100 requests / 100 points), one link", f"{raw.naive:,.0f}")
    print("-" * (w + 20))
    if raw.coalesced_all is not None:
        row(f"(b)/(a{n})  device service vs raw pymodbus, same links", f"{b.points_per_s / raw.coalesced_all:.2f}x")
    row("(b)/(a)   device service vs raw pymodbus, one link", f"{b.points_per_s / raw.coalesced:.2f}x")
    row("(a)/(c)   coalescing speed-up (target >= 20x)", f"{speedup:.1f}x")
    print("-" * (w + 20))
    row(f"(b) events/s published (counted over {b.window:.1f}s)", f"{b.events_per_s:,.0f}")
    row("(b) readings per event", f"{b.readings_per_event:.1f}")
    row("(b) device-modbus RSS at the end of the window", f"{b.rss_mb:.1f} MB")
    if b.events_per_s:
        per_event = 1e6 * b.cpu["device-modbus"] / 100 / b.events_per_s
        row("(b) device-modbus CPU per event (2 Modbus reads, 100 readings)", f"{per_event:,.0f} us")
    for name, pct in b.cpu.items():
        row(f"(b) CPU {name} (100% = one core)", f"{pct:.1f}%")
    row("(b) CPU of the processes above", f"{sum(b.cpu.values()):.1f}%")
    row(f"(b) CPU busy, whole machine (of {cores * 100}%)", f"{b.machine_busy:.1f}%")
    row("(b) CPU busy otherwise (kernel, other work on the machine)", f"{b.machine_busy - sum(b.cpu.values()):.1f}%")
    print("-" * (w + 20))
    print(
        f"target >= 100,000 points/s published: {'MET' if b.points_per_s >= 100_000 else 'NOT met'}; "
        f"coalescing >= 20x: {'MET' if speedup >= 20 else 'NOT met'}"
    )
    if b.sample:
        readings = b.sample.get("readings") or []
        first = readings[0] if isinstance(readings, list) and readings else {}
        print(f"sample reading: {orjson.dumps(first).decode()}")
    print("=" * (w + 20))


if __name__ == "__main__":
    sys.exit(main())
