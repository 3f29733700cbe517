"""OPC UA acquisition benchmark (issue 11): `python bench/opcua_bench.py` or `make bench`.

In one run, against the same simulator process (`python -m device_opcua.sim` with a generated file of N Double
variables that all change every tick), it measures:

  (a) raw asyncua: one client subscribed to the N nodes (sampling = the tick), data-change notifications/s;
  (b) raw asyncua: one Read service call of the N nodes, back to back, values/s;
  (c) device-opcua end to end (nats-server + Redis + core-metadata + device-opcua as subprocesses), one device
      of N resources whose autoEvent is served by a subscription: readings/s published on NATS, and
      device-opcua's RSS with N monitored items;
  (d) the same device polled (DEVICE_OPCUA_SUBSCRIPTIONS=false, autoEvent every 10 ms): readings/s published,
      the like-for-like of (b).

Targets (issue 11): (c) >= 80% of (a), (d) >= 80% of (b), RSS of device-opcua <= 90 MB with 1,000 monitored
items. Timings are printed, never asserted.

The processes run as `edgeplane up` and the images run them (python -OO) and load their modules from bytecode, as
the images do (compiled at build) and as any venv does after its first run: everything on each interpreter's path
is compiled first into a cache under the bench's temporary folder. `--no-bytecode` runs them
as the environment says (with PYTHONDONTWRITEBYTECODE and no __pycache__, every start compiles asyncua's 3 MB of
generated source, which costs time and, until the SDK hands the freed heap back, memory).

`--rss-only` runs (c) alone. `--python PATH` runs device-opcua with another interpreter, e.g. of a venv holding only
what its image installs (the development venv also holds the console's and the test tools' packages, which
device-opcua's libraries import when present: aiohttp by nats-py, rich and pygments by httpx), made as the
Dockerfile makes it:

    python -m venv /tmp/opcua-venv
    /tmp/opcua-venv/bin/pip install -r <(python scripts/workspace.py requirements common device-services/sdk \
        device-services/opcua)
    /tmp/opcua-venv/bin/pip install --no-deps -e common -e device-services/sdk -e device-services/opcua
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nats
import orjson
import psutil
import yaml
from _procs import Procs, wait_http, wait_tcp
from asyncua import Client, ua
from asyncua.common.subscription import DataChangeEvent

from edgeplane.supervisor import SERVICE_PYTHON_FLAGS
from edgeplane_common.embedded import EmbeddedNats, EmbeddedRedis, free_port

QUIET = {"EDGEPLANE_LOG_LEVEL": "WARNING", "EDGEPLANE_LOG_JSON": "true"}
WARM_BYTECODE = (
    "import compileall, os, re, sys\n"
    "for path in sys.path:\n"
    "    if os.path.isdir(path):\n"
    "        compileall.compile_dir(path, quiet=2, workers=0, rx=re.compile(r'/tests?/'))\n"
)


def sim_config(n: int, tick: float) -> dict[str, object]:
    return {
        "name": "bench",
        "path": "/bench",
        "tick_interval": tick,
        "namespaces": ["urn:edgeplane:bench"],
        "objects": [
            {
                "name": "B",
                "variables": [
                    {"name": f"V{i}", "type": "Double", "random": {"min": 0, "max": 1000, "seed": i}} for i in range(n)
                ],
            }
        ],
    }


def profile(n: int) -> dict[str, object]:
    names = [f"V{i}" for i in range(n)]
    return {
        "name": "Bench-OPCUA",
        "deviceResources": [
            {
                "name": v,
                "attributes": {"nodeId": f"ns=2;s=B.{v}"},
                "properties": {"valueType": "Float64", "readWrite": "R"},
            }
            for v in names
        ],
        "deviceCommands": [
            {"name": "All", "readWrite": "R", "resourceOperations": [{"deviceResource": v} for v in names]}
        ],
    }


def size(n_bytes: float) -> str:
    """Both units, since they differ by 5%: MiB (2**20 bytes, what ps and /proc count in) and MB (10**6)."""
    return f"{n_bytes / 2**20:.1f} MiB ({n_bytes / 1e6:.1f} MB)"


async def raw_subscription(url: str, n: int, tick: float, seconds: float) -> float:
    async with Client(url) as client:
        sub = await client.create_subscription(tick * 1000, handler=None, queue_maxsize=1_000_000)
        await sub.subscribe_data_change(
            [client.get_node(f"ns=2;s=B.V{i}") for i in range(n)], sampling_interval=tick * 1000
        )
        count = 0
        deadline = None
        loop = asyncio.get_running_loop()
        warm = loop.time() + 2
        async for event in sub:
            now = loop.time()
            if now < warm:
                continue
            if deadline is None:
                deadline = now + seconds
            if now >= deadline:
                break
            if isinstance(event, DataChangeEvent):
                count += 1
        await sub.delete()
        return count / seconds


async def raw_reads(url: str, n: int, seconds: float) -> float:
    async with Client(url) as client:
        params = ua.ReadParameters()
        params.NodesToRead = [
            ua.ReadValueId(NodeId=ua.NodeId(f"B.V{i}", 2), AttributeId=ua.AttributeIds.Value) for i in range(n)
        ]
        await client.uaclient.read(params)
        values, start = 0, time.monotonic()
        while time.monotonic() - start < seconds:
            values += len(await client.uaclient.read(params))
        return values / (time.monotonic() - start)


async def published(nats_url: str, warmup: float, window: float) -> float:
    nc = await nats.connect(nats_url)
    count = 0
    counting = False

    async def on_msg(msg: nats.aio.msg.Msg) -> None:
        nonlocal count
        if counting:
            env = orjson.loads(msg.data)
            payload = env.get("payload")
            if isinstance(payload, str):
                import base64

                payload = orjson.loads(base64.b64decode(payload))
            count += len(payload["readings"])

    await nc.subscribe("edgex.events.device.device-opcua.>", cb=on_msg)
    await asyncio.sleep(warmup)
    counting = True
    await asyncio.sleep(window)
    counting = False
    await nc.close()
    return count / window


async def service_run(
    procs: Procs,
    tmp: Path,
    sim_url: str,
    n: int,
    interval: str,
    subscriptions: bool,
    warmup: float,
    window: float,
    python: str | None = None,
) -> tuple[float, float, float]:
    """Readings/s published, and device-opcua's RSS and the part of it that is shared library pages (bytes)."""
    nats_srv = EmbeddedNats(data_dir=tmp / f"nats-{subscriptions}").start()
    redis_srv = EmbeddedRedis(data_dir=tmp / f"redis-{subscriptions}").start()
    try:
        res = tmp / f"res-{subscriptions}"
        (res / "profiles").mkdir(parents=True)
        (res / "devices").mkdir()
        (res / "profiles" / "bench.yaml").write_text(yaml.safe_dump(profile(n), sort_keys=False))
        device = {
            "name": "bench",
            "profileName": "Bench-OPCUA",
            "serviceName": "device-opcua",
            "protocols": {"opcua": {"Endpoint": sim_url}},
            "autoEvents": [{"interval": interval, "sourceName": "All"}],
        }
        (res / "devices" / "bench.yaml").write_text(yaml.safe_dump({"deviceList": [device]}))
        shared = {**QUIET, "EDGEPLANE_NATS__URL": nats_srv.url, "EDGEPLANE_REDIS__URL": redis_srv.url}
        md_port, ds_port = free_port(), free_port()
        metadata = procs.spawn(
            f"core-metadata-{subscriptions}",
            ["-m", "core_metadata"],
            {**shared, "CORE_METADATA_HTTP__PORT": str(md_port)},
        )
        wait_http(metadata, f"http://127.0.0.1:{md_port}/api/v3/ping")
        service = procs.spawn(
            f"device-opcua-{subscriptions}",
            ["-m", "device_opcua"],
            {
                **shared,
                "DEVICE_OPCUA_HTTP__PORT": str(ds_port),
                "DEVICE_OPCUA_METADATA_URL": f"http://127.0.0.1:{md_port}",
                "DEVICE_OPCUA_RES_DIR": str(res),
                "DEVICE_OPCUA_SUBSCRIPTIONS": "true" if subscriptions else "false",
                "DEVICE_OPCUA_DEVICE__MAX_CMD_OPS": str(n),
            },
            python=python,
        )
        wait_http(service, f"http://127.0.0.1:{ds_port}/api/v3/ping")
        rate = await published(nats_srv.url, warmup, window)
        mem = service.ps.memory_info()
        return rate, mem.rss, mem.shared
    finally:
        procs.stop_all()
        nats_srv.stop()
        redis_srv.stop()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--tick", type=float, default=0.5, help="simulator tick and sampling interval (s)")
    parser.add_argument("--seconds", type=float, default=8.0, help="measuring window of each figure")
    parser.add_argument("--warmup", type=float, default=6.0)
    parser.add_argument("--no-bytecode", action="store_true", help="do not warm a bytecode cache (see above)")
    parser.add_argument("--rss-only", action="store_true", help="run (c) alone: device-opcua's rate and RSS")
    parser.add_argument("--python", help="the interpreter device-opcua runs with (default: this one; see above)")
    args = parser.parse_args()
    n = args.nodes
    with tempfile.TemporaryDirectory(prefix="opcua-bench-") as tmp_name:
        tmp = Path(tmp_name)
        if not args.no_bytecode:
            os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # the children inherit the environment
            os.environ["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
            # Everything each interpreter can import, at the services' optimization level, as the image compiles
            # at build: a module compiled while the service runs (httpcore, h11, uvicorn's protocols are imported
            # only then) would add the compiler's memory to the figure, which the image does not have.
            flags = list(SERVICE_PYTHON_FLAGS)
            for python in {sys.executable, args.python or sys.executable}:
                warm = [python, *flags, "-c", WARM_BYTECODE]
                await asyncio.to_thread(subprocess.run, warm, check=True)
        (tmp / "sim.yaml").write_text(yaml.safe_dump(sim_config(n, args.tick)))
        sim_procs = Procs(tmp)
        port = free_port()
        sim = sim_procs.spawn(
            "opcua-sim", ["-m", "device_opcua.sim", "--config", str(tmp / "sim.yaml"), "--port", str(port)], QUIET
        )
        try:
            wait_tcp(sim, port, timeout=60)
            url = f"opc.tcp://127.0.0.1:{port}/bench"
            print(
                f"simulator: {n} Double variables changing every {args.tick} s ({n / args.tick:.0f} changes/s)",
                flush=True,
            )
            raw_sub = raw_read = poll_rate = poll_rss = None
            if not args.rss_only:
                print("(a) raw asyncua subscription ...", flush=True)
                raw_sub = await raw_subscription(url, n, args.tick, args.seconds)
                print("(b) raw asyncua batched reads ...", flush=True)
                raw_read = await raw_reads(url, n, args.seconds)
            procs = Procs(tmp)
            print("(c) device-opcua, subscription ...", flush=True)
            ms = f"{int(args.tick * 1000)}ms"
            sub_rate, sub_rss, sub_shared = await service_run(
                procs, tmp, url, n, ms, True, args.warmup, args.seconds, args.python
            )
            if not args.rss_only:
                print("(d) device-opcua, polled ...", flush=True)
                poll_rate, poll_rss, _ = await service_run(
                    procs, tmp, url, n, "10ms", False, args.warmup, args.seconds, args.python
                )
        finally:
            sim_procs.stop_all()
    print()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} CPUs, load {load} (1/5/15 min), Python {sys.version.split()[0]}", end="")
    print(", modules from source" if args.no_bytecode else ", modules from bytecode")
    print(f"device-opcua ran with {args.python or sys.executable}")
    if raw_sub is not None:
        print(f"(a) raw asyncua subscription      {raw_sub:10.0f} notifications/s")
    print(f"(c) device-opcua subscription     {sub_rate:10.0f} readings/s published", end="")
    print(f"  ({sub_rate / raw_sub:.0%} of (a); target >= 80%)" if raw_sub else "")
    if raw_read is not None and poll_rate is not None:
        print(f"(b) raw asyncua batched reads     {raw_read:10.0f} values/s")
        print(f"(d) device-opcua polled reads     {poll_rate:10.0f} readings/s published", end="")
        print(f"  ({poll_rate / raw_read:.0%} of (b); target >= 80%)")
    print(f"RSS of device-opcua with {n} monitored items: {size(sub_rss)} (target <= 90 MB)", end="")
    print(f", of which {size(sub_shared)} shared library pages", end="")
    print(f"; polled run: {size(poll_rss)}" if poll_rss is not None else "")
    print(f"(psutil {psutil.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
