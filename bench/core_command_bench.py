"""core-command round-trip benchmark (issue 4, benchmark): `python bench/core_command_bench.py` or `make bench`.

Everything runs as real processes on loopback, as `make run` runs them: nats-server, Redis, core-metadata,
the Modbus simulator (`python -m device_modbus.sim`, demo PLC), device-modbus, and core-command twice
(cache on, the default; and cache off, which asks core-metadata for the device and profile on every
command). The client is this process, one keep-alive HTTP/1.1 connection (http.client), requests strictly
sequential, each measured from sending the request to reading the whole response.

For GET (read holding register SpeedSetpoint) and PUT (write it; the value changes every request and the
last one is checked on the simulator), in the order of the path a command travels:

  (a) raw pymodbus: read_holding_registers / write_register on the simulator (the floor);
  (b) device-modbus's own REST API (no NATS, no core-command);
  (c) core-command → NATS request/reply → device-modbus → simulator (cache on: the product path);
  (d) as (c) with core-command's metadata cache off.

Each: `--warmup` requests ignored, then `--requests` measured (default 50 + 500). Target: (c) p99 <= 10 ms.
Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson
from _procs import Procs, demo_plc_stack, wait_http, workdir
from pymodbus.client import AsyncModbusTcpClient

from edgeplane_common.embedded import free_port

SERVICE = "device-modbus"
DEVICE = "bench-plc"
RESOURCE = "SpeedSetpoint"  # holding register 1, Uint16, 0..3000
REGISTER = 1
UNIT_ID = 1


# ---------------------------------------------------------------------------------------------- measuring


@dataclass
class Stats:
    label: str
    samples_ms: list[float]

    def pct(self, p: float) -> float:
        s = sorted(self.samples_ms)
        return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples_ms)


def measure(label: str, call: Callable[[int], None], warmup: int, n: int) -> Stats:
    for i in range(warmup):
        call(i)
    samples = []
    for i in range(n):
        t0 = time.perf_counter()
        call(warmup + i)
        samples.append((time.perf_counter() - t0) * 1000)
    return Stats(label, samples)


class Http:
    """One keep-alive connection; each call sends one request and reads the whole response."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def request(self, method: str, path: str, body: object | None = None) -> dict[str, object]:
        data = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        self.conn.request(method, path, body=data, headers=headers)
        r = self.conn.getresponse()
        payload = r.read()
        if r.status != 200:
            raise RuntimeError(f"{method} {path} answered {r.status}: {payload[:300]!r}")
        result: dict[str, object] = orjson.loads(payload)
        return result

    def close(self) -> None:
        self.conn.close()


def setpoint(i: int) -> int:
    return 100 + i % 2900


def http_pair(port: int, warmup: int, n: int, label: str) -> tuple[Stats, Stats, int]:
    """GET and PUT of the resource through a REST API on `port`; returns the last value written."""
    client = Http(port)
    path = f"/api/v3/device/name/{DEVICE}/{RESOURCE}"
    last = [0]

    def get(_: int) -> None:
        body = client.request("GET", path)
        assert isinstance(body.get("event"), dict), body

    def put(i: int) -> None:
        last[0] = setpoint(i)
        client.request("PUT", path, {RESOURCE: str(last[0])})

    try:
        g = measure(f"{label} GET", get, warmup, n)
        p = measure(f"{label} PUT", put, warmup, n)
    finally:
        client.close()
    return g, p, last[0]


async def raw_pair(port: int, warmup: int, n: int) -> tuple[Stats, Stats]:
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=5, retries=0)
    if not await client.connect():
        raise RuntimeError(f"cannot connect to the simulator on {port}")

    async def timed(label: str, op: Callable[[int], object]) -> Stats:
        samples = []
        for i in range(warmup + n):
            t0 = time.perf_counter()
            rr = await op(i)  # type: ignore[misc]
            dt = (time.perf_counter() - t0) * 1000
            if rr.isError():
                raise RuntimeError(f"{label} failed: {rr}")
            if i >= warmup:
                samples.append(dt)
        return Stats(label, samples)

    try:
        g = await timed(
            "(a) raw pymodbus GET", lambda _: client.read_holding_registers(REGISTER, count=1, device_id=UNIT_ID)
        )
        p = await timed(
            "(a) raw pymodbus PUT", lambda i: client.write_register(REGISTER, setpoint(i), device_id=UNIT_ID)
        )
    finally:
        client.close()
    return g, p


async def read_register(port: int) -> int:
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=5, retries=0)
    await client.connect()
    try:
        rr = await client.read_holding_registers(REGISTER, count=1, device_id=UNIT_ID)
        return int(rr.registers[0])
    finally:
        client.close()


# ----------------------------------------------------------------------------------------------------- main


def devices_file(sim_port: int, autoevents: bool) -> list[dict[str, object]]:
    device: dict[str, object] = {
        "name": DEVICE,
        "profileName": "Edgeplane-Demo-PLC",
        "serviceName": SERVICE,
        "protocols": {
            "modbus-tcp": {
                "Address": "127.0.0.1",
                "Port": str(sim_port),
                "UnitID": str(UNIT_ID),
                "Timeout": "5",
                "IdleTimeout": "0",
            }
        },
    }
    if autoevents:
        device["autoEvents"] = [
            {"interval": "1s", "sourceName": "PowerReadings"},
            {"interval": "1s", "sourceName": "TankTemperature"},
        ]
    return [device]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=500, help="measured requests per operation (default 500)")
    ap.add_argument("--warmup", type=int, default=50, help="requests ignored before measuring (default 50)")
    ap.add_argument("--autoevents", action="store_true", help="poll the PLC in the background (2 sources, 1s)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (service logs)")
    args = ap.parse_args(argv)
    with workdir("command", args.keep) as tmp:
        procs = Procs(tmp)
        try:
            return run(args, tmp, procs)
        finally:
            procs.stop_all()


def run(args: argparse.Namespace, tmp: Path, procs: Procs) -> int:
    print("starting nats-server, Redis, core-metadata, simulator, device-modbus, core-command x2 ...", flush=True)
    with demo_plc_stack(procs, tmp, lambda sim_port: devices_file(sim_port, args.autoevents)) as stack:
        sim_port, ds_port = stack.sim_port, urlsplit(stack.device_url).port
        assert ds_port is not None
        cc_port, cc_nocache_port = free_port(), free_port()
        for name, port, cache in (
            ("core-command", cc_port, "true"),
            ("core-command-nocache", cc_nocache_port, "false"),
        ):
            proc = procs.spawn(
                name,
                ["-m", "core_command"],
                {
                    **stack.shared,
                    "CORE_COMMAND_HTTP__HOST": "127.0.0.1",
                    "CORE_COMMAND_HTTP__PORT": str(port),
                    "CORE_COMMAND_CACHE__ENABLED": cache,
                },
            )
            wait_http(proc, f"http://127.0.0.1:{port}/api/v3/ping")
        # The device is provisioned by device-modbus at start; wait until core-command can read it.
        deadline = time.monotonic() + 30
        while True:
            r = httpx.get(f"http://127.0.0.1:{cc_port}/api/v3/device/name/{DEVICE}/{RESOURCE}", timeout=5)
            if r.status_code == 200:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"core-command cannot read {DEVICE}: {r.status_code} {r.text}")
            time.sleep(0.2)

        n, w = args.requests, args.warmup
        print(f"measuring {w} + {n} sequential requests per operation ...", flush=True)
        raw_g, raw_p = asyncio.run(raw_pair(sim_port, w, n))
        ds_g, ds_p, _ = http_pair(ds_port, w, n, "(b) device-modbus REST")
        cc_g, cc_p, last = http_pair(cc_port, w, n, "(c) core-command (cache on)")
        on_sim = asyncio.run(read_register(sim_port))
        nc_g, nc_p, _ = http_pair(cc_nocache_port, w, n, "(d) core-command (cache off)")

    report(args, [raw_g, ds_g, cc_g, nc_g], [raw_p, ds_p, cc_p, nc_p], last, on_sim)
    return 0


def report(args: argparse.Namespace, gets: list[Stats], puts: list[Stats], last: int, on_sim: int) -> None:
    w = 34
    line = "=" * (w + 50)
    print()
    print(line)
    print(f"core-command round trip: {RESOURCE} (holding register {REGISTER}) of the simulated demo PLC")
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}")
    print(
        f"{args.warmup} warm-up + {args.requests} measured sequential requests per row, one keep-alive connection;"
        f" background polling {'on' if args.autoevents else 'off'}; all services as separate processes"
    )
    print("-" * (w + 50))
    print(f"{'path':<{w}}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'max ms':>10}{'mean ms':>10}")
    for rows in (gets, puts):
        for s in rows:
            print(
                f"{s.label:<{w}}{s.pct(50):>10.2f}{s.pct(90):>10.2f}{s.pct(99):>10.2f}"
                f"{max(s.samples_ms):>10.2f}{s.mean:>10.2f}"
            )
        print("-" * (w + 50))
    cc_get, cc_put = gets[2], puts[2]
    print(f"core-command over raw pymodbus, p50: GET +{cc_get.pct(50) - gets[0].pct(50):.2f} ms, "
          f"PUT +{cc_put.pct(50) - puts[0].pct(50):.2f} ms")  # fmt: skip
    print(f"core-command over device-modbus REST, p50: GET +{cc_get.pct(50) - gets[1].pct(50):.2f} ms, "
          f"PUT +{cc_put.pct(50) - puts[1].pct(50):.2f} ms")  # fmt: skip
    print(f"cache on vs off, p50: GET {gets[3].pct(50) / cc_get.pct(50):.2f}x, "
          f"PUT {puts[3].pct(50) / cc_put.pct(50):.2f}x faster with the cache")  # fmt: skip
    ok = cc_get.pct(99) <= 10 and cc_put.pct(99) <= 10
    print(f"target p99 <= 10 ms through core-command: {'MET' if ok else 'NOT met'} "
          f"(GET {cc_get.pct(99):.2f} ms, PUT {cc_put.pct(99):.2f} ms)")  # fmt: skip
    print(f"last value written through core-command: {last}; on the simulator: {on_sim} "
          f"({'match' if last == on_sim else 'MISMATCH'})")  # fmt: skip
    print(line)


if __name__ == "__main__":
    sys.exit(main())
