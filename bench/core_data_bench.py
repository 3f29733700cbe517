"""core-data persistence benchmark (issue 4): `python bench/core_data_bench.py` or `make bench`.

In one run, against one nats-server (JetStream, file storage) and one Redis-compatible server started here:

  (a) raw Redis: the same events, already validated and encoded, written by core-data's own Redis adapter
      (RedisEventStore.add: existence check + one MULTI per batch of 512, the keys and encoding core-data
      uses) straight from this process: no NATS, no service. The ceiling for that layout on this machine.
  (b) the same layout through redis-py's generic pipeline (MULTI; HSET/ZADD/SADD grouped per key), for
      reference: what the hand-packed RESP of (a) saves.
  (c) core-data end to end: `python -m core_data` as a subprocess consuming a backlog of events from the
      JetStream stream (published before it starts, so the publisher does not share the CPU) and storing
      them in Redis. Sustained rate = events stored between the first and the last one seen, over that time
      (polled in Redis). Nothing lost: events and readings stored are counted against what was published,
      and the durable consumer must have nothing pending or unacknowledged.

Each for events of 1 and of 10 readings. Figures and ratios are printed; nothing is asserted about time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import nats
import psutil
import redis.asyncio as aioredis

from core_data.infrastructure.redis_store import (
    EV,
    EV_ALL,
    PAIRS,
    RD_ALL,
    SEP,
    SOURCES,
    VSEP,
    RedisEventStore,
    ev_src,
    o8,
    rd_dr,
    reading_member,
)
from edgeplane_common.bus import MessageEnvelope, Topics
from edgeplane_common.bus.nats import NatsMessageBus
from edgeplane_common.edgex.events import EventRecord, validate_event
from edgeplane_common.embedded import EmbeddedNats, EmbeddedRedis, free_port
from edgeplane_common.settings import NatsSettings

ROOT = Path(__file__).resolve().parents[1]
BATCH = 512
DEVICES = 20
SERVICE = "bench-svc"


def make_events(count: int, readings: int, base: int) -> list[dict[str, object]]:
    """Events as device-modbus publishes them: Float32 readings, DEVICES devices round robin."""
    out: list[dict[str, object]] = []
    for i in range(count):
        device = f"plc-{i % DEVICES:02d}"
        origin = base + i * 1000
        out.append(
            {
                "apiVersion": "v3",
                "id": str(uuid.uuid4()),
                "deviceName": device,
                "profileName": "Bench-PLC",
                "sourceName": "Registers" if readings > 1 else "Temperature",
                "origin": origin,
                "readings": [
                    {
                        "id": str(uuid.uuid4()),
                        "origin": origin,
                        "deviceName": device,
                        "resourceName": f"HR{r:03d}" if readings > 1 else "Temperature",
                        "profileName": "Bench-PLC",
                        "valueType": "Float32",
                        "value": f"{20 + (i * 7 + r) % 1000 / 10:e}",
                        "units": "degC",
                    }
                    for r in range(readings)
                ],
            }
        )
    return out


# ------------------------------------------------------------------------------------------------ raw Redis


async def raw_store(url: str, records: list[EventRecord]) -> float:
    """Seconds for RedisEventStore.add over all records, in batches."""
    client = aioredis.from_url(url)
    await client.flushdb()
    store = RedisEventStore(client)
    start = time.perf_counter()
    for i in range(0, len(records), BATCH):
        await store.add(records[i : i + BATCH])
    elapsed = time.perf_counter() - start
    assert await client.zcard(EV_ALL) == len(records)
    await store.close()
    return elapsed


async def raw_redis_py(url: str, records: list[EventRecord]) -> float:
    """Seconds for the same keys and members through redis-py's pipeline (MULTI/EXEC, grouped per key)."""
    client = aioredis.from_url(url)
    await client.flushdb()
    start = time.perf_counter()
    for i in range(0, len(records), BATCH):
        batch = records[i : i + BATCH]
        await client.hmget(EV, [r.id for r in batch])  # as the adapter's existence check: one round trip
        zadd: dict[bytes, dict[bytes, int]] = {}
        hset: dict[bytes, bytes] = {}
        sources: set[bytes] = set()
        pairs: set[bytes] = set()
        for r in batch:
            eid, dev = r.id.encode(), r.device.encode()
            hset[eid] = r.blob
            em = o8(r.origin) + eid
            src = dev + SEP + r.source.encode()
            sources.add(src)
            for key in (EV_ALL, ev_src(dev, r.source.encode())):
                zadd.setdefault(key, {})[em] = 0
            for index, reading in enumerate(r.readings):
                rm = reading_member(reading.origin, index, eid)
                res = reading.resource.encode()
                zadd.setdefault(RD_ALL, {})[rm] = 0
                detail = VSEP + reading.value_type.encode() + VSEP + (reading.value or "").encode() + VSEP
                pairs.add(dev + SEP + res)
                zadd.setdefault(rd_dr(dev + SEP + res), {})[rm + detail + reading.profile.encode()] = 0
        async with client.pipeline(transaction=True) as p:
            p.hset(EV, mapping=hset)  # type: ignore[arg-type]
            for key, members in zadd.items():
                p.zadd(key, members)
            p.sadd(SOURCES, *sources)
            p.sadd(PAIRS, *pairs)
            await p.execute()
    elapsed = time.perf_counter() - start
    assert await client.zcard(EV_ALL) == len(records)
    await client.aclose()
    return elapsed


# --------------------------------------------------------------------------------------------- the service


@dataclass
class ServiceResult:
    instances: int
    events: int
    readings: int
    seconds: float
    cpu_percent: float
    """core-data's CPU (all instances) over the measured interval; 100% = one core."""
    rss_mb: float
    pending: int
    ack_pending: int


async def publish_backlog(nats_url: str, topic: str, events: list[dict[str, object]]) -> float:
    """Publish every event durably (pipelined, acks awaited in a window); seconds taken."""
    payloads = [MessageEnvelope(payload=e).encode() for e in events]
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    window = asyncio.Semaphore(512)
    start = time.perf_counter()

    async def one(data: bytes) -> None:
        try:
            await js.publish(topic, data, headers={"Edgeplane-Durable": "1"})
        finally:
            window.release()

    tasks = []
    for data in payloads:
        await window.acquire()
        tasks.append(asyncio.create_task(one(data)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    await nc.close()
    return elapsed


def spawn(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "core_data"], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
        )


def cpu_seconds(processes: list[psutil.Process]) -> float:
    return float(sum(p.cpu_times().user + p.cpu_times().system for p in processes))


async def run_service(
    nats_url: str, redis_url: str, events: list[dict[str, object]], logs: Path, tag: str, instances: int
) -> ServiceResult:
    client = aioredis.from_url(redis_url)
    await client.flushdb()
    service = f"{SERVICE}-{tag}"
    topic = Topics.events(service, "Bench-PLC", "plc", "src")
    durable = f"core-data-bench-{tag}"
    await publish_backlog(nats_url, topic, events)

    base_env = {
        **os.environ,
        "CORE_DATA_NATS__URL": nats_url,
        "CORE_DATA_REDIS__URL": redis_url,
        "CORE_DATA_HTTP__HOST": "127.0.0.1",
        "CORE_DATA_INGEST__DURABLE": durable,
        "CORE_DATA_INGEST__TOPIC": Topics.events_of(service),
        "CORE_DATA_RETENTION__ENABLED": "false",
        "CORE_DATA_LOG_JSON": "false",
        "CORE_DATA_LOG_LEVEL": "WARNING",
    }
    procs = [
        await asyncio.to_thread(
            spawn, {**base_env, "CORE_DATA_HTTP__PORT": str(free_port())}, logs / f"core-data-{tag}-{i}.log"
        )
        for i in range(instances)
    ]
    ps = [psutil.Process(p.pid) for p in procs]
    total = len(events)
    try:
        first_seen: tuple[float, int] | None = None
        last_change = time.perf_counter()
        stored = 0
        cpu_start = 0.0
        deadline = time.perf_counter() + 300
        while stored < total and time.perf_counter() < deadline:
            await asyncio.sleep(0.02)
            now_stored = int(await client.zcard(EV_ALL))
            now = time.perf_counter()
            if now_stored and first_seen is None:
                first_seen = (now, now_stored)
                cpu_start = cpu_seconds(ps)
            if now_stored != stored:
                last_change = now
            stored = now_stored
            for p in procs:
                if p.poll() is not None:
                    raise RuntimeError(f"core-data exited with {p.returncode}; see the logs in {logs}")
        cpu_used = cpu_seconds(ps) - cpu_start
        rss = sum(p.memory_info().rss for p in ps) / 2**20
        assert first_seen is not None, "core-data stored nothing"
        seconds = last_change - first_seen[0]
        measured = stored - first_seen[1]
        stored_readings = int(await client.zcard(RD_ALL))
        # The consumer's view: everything delivered and acknowledged.
        await asyncio.sleep(0.5)
        nc = await nats.connect(nats_url)
        info = await nc.jetstream().consumer_info(Topics.EVENTS_STREAM, durable)
        await nc.close()
        return ServiceResult(
            instances=instances,
            events=stored,
            readings=stored_readings,
            seconds=seconds * total / max(measured, 1),
            cpu_percent=100 * cpu_used / max(seconds, 1e-9),
            rss_mb=rss,
            pending=int(info.num_pending or 0),
            ack_pending=int(info.num_ack_pending or 0),
        )
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                await asyncio.to_thread(p.wait, 10)
            except subprocess.TimeoutExpired:
                p.kill()
        await client.aclose()


async def ensure_stream(nats_url: str) -> None:
    bus = NatsMessageBus(NatsSettings(url=nats_url), name="core-data-bench")
    await bus.connect()
    await bus.ensure_stream(Topics.EVENTS_STREAM, [Topics.EVENTS_ALL])
    await bus.close()


async def main(args: argparse.Namespace) -> None:
    print("core-data benchmark")
    print(
        f"  host: {platform.machine()}, {psutil.cpu_count()} CPU(s), Python {platform.python_version()},"
        f" load average {os.getloadavg()[0]:.1f}; nats-server, Redis, core-data and this process share the CPUs"
    )
    with tempfile.TemporaryDirectory(prefix="core-data-bench-") as tmp:
        data = Path(tmp)
        (data / "nats").mkdir()
        (data / "redis").mkdir()
        with (
            EmbeddedNats(data_dir=data / "nats") as nats_server,
            EmbeddedRedis(data_dir=data / "redis") as redis_server,
        ):
            await ensure_stream(nats_server.url)
            print()
            print(
                f"  {'readings/event':>14} {'events':>7} | {'raw Redis (adapter)':>24} | {'redis-py pipeline':>24} |"
                f" {'core-data from NATS':>24} | {'vs raw':>6} | {'CPU':>5} {'RSS':>6} | stored / published"
            )
            lowest = None
            for readings, count in ((1, args.events_1), (10, args.events_10)):
                events = make_events(count, readings, time.time_ns() - count * 1000)
                records = [validate_event(e) for e in events]
                raw = await raw_store(redis_server.url, records)
                generic = await raw_redis_py(redis_server.url, records)
                total = count * readings
                for instances in args.instances:
                    svc = await run_service(
                        nats_server.url, redis_server.url, events, data, f"r{readings}-i{instances}", instances
                    )
                    raw_rate, svc_rate = total / raw, total / svc.seconds
                    ok = svc.events == count and svc.readings == total and svc.pending == svc.ack_pending == 0
                    print(
                        f"  {readings:>14} {count:>7} |"
                        f" {count / raw:>8.0f} ev/s {raw_rate:>8.0f} rd/s |"
                        f" {count / generic:>8.0f} ev/s {total / generic:>8.0f} rd/s |"
                        f" {count / svc.seconds:>8.0f} ev/s {svc_rate:>8.0f} rd/s |"
                        f" {100 * svc_rate / raw_rate:>5.0f}% | {svc.cpu_percent:>4.0f}% {svc.rss_mb:>4.0f}MB |"
                        f" {svc.events}/{count} events, {svc.readings}/{total} readings"
                        f"{'' if ok else ' LOST'} ({svc.instances} instance{'s' if svc.instances > 1 else ''},"
                        f" consumer pending {svc.pending}, unacked {svc.ack_pending})"
                    )
                    lowest = svc_rate if lowest is None else min(lowest, svc_rate)
            print()
            print(
                "  raw Redis (adapter) = core-data's RedisEventStore.add called directly: the same keys, encoding and"
            )
            print("    batches of 512, no NATS, no service. redis-py pipeline = the same writes through redis-py's")
            print("    generic pipeline. core-data = `python -m core_data` draining a JetStream backlog (first to last")
            print("    event stored); CPU = core-data's own (100% = one core); vs raw = its readings/s / raw Redis'.")
            print("  Targets (issue 4): >= 20,000 readings/s persisted and >= 50% of the raw Redis rate.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events-1", type=int, default=40_000, help="events of 1 reading")
    parser.add_argument("--events-10", type=int, default=8_000, help="events of 10 readings")
    parser.add_argument(
        "--instances", type=int, nargs="+", default=[1, 2], help="core-data processes sharing the durable consumer"
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parser.parse_args()))
