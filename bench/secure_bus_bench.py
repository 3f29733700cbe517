"""The cost of secure mode on the message bus (issue 15 items 3-4): `python bench/secure_bus_bench.py`.

Events/s through NATS as they flow in production: a device service publishing into the events stream
(JetStream, file storage; `publish_durable_pipelined`, as autoevents do) while core-data's durable batch
consumer (`consume_batch`, as its ingestion does) takes them out and acknowledges them. Measured from the
first publish until the consumer has every event, in two setups within one run:

  open:    nats-server without users, plain TCP, clients without credentials (the default `make run`);
  secure:  nats-server with the generated `nats/nats.conf` (part busauth: a user per service with its subject
           permissions) and TLS (a `tls {}` block; clients connect to tls:// and verify the CA), the publisher
           as device-virtual and the consumer as core-data, each with its own credentials.

Each round starts a fresh nats-server per setup, alternating which setup goes first; the median round of each
is printed, with the loss ratio (1 - secure / open). Events are counted: nothing may be lost. Nothing is
asserted about time. Target (issue 15): <= 15% throughput loss.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
from pydantic import SecretStr

from edgeplane.secure import busauth
from edgeplane.secure.tls import ensure as ensure_certs
from edgeplane.services import SERVICES, by_name
from edgeplane_common.bus import MessageEnvelope, Topics
from edgeplane_common.bus.nats import NatsMessageBus
from edgeplane_common.embedded import EmbeddedNats
from edgeplane_common.settings import NatsSettings, TlsSettings

sys.path.insert(0, str(Path(__file__).resolve().parent))

PUBLISHER = "device-virtual"
CONSUMER = "core-data"


@dataclass
class Setup:
    name: str
    publisher: NatsSettings
    consumer: NatsSettings
    tls: TlsSettings | None
    config: Path | None


@dataclass
class Round:
    published_s: float
    consumed_s: float
    events: int
    cpu_s: float
    """CPU seconds of this process and nats-server together, from the first publish to the last event consumed."""
    server_cpu_s: float
    """nats-server's share of `cpu_s`."""


def cpu_seconds(*procs: psutil.Process) -> float:
    total = 0.0
    for proc in procs:
        t = proc.cpu_times()
        total += t.user + t.system
    return total


def event(i: int) -> dict[str, object]:
    """A typical event of one reading (about 400 bytes encoded), as device-virtual sends them."""
    now = time.time_ns()
    return {
        "apiVersion": "v3",
        "id": str(uuid.uuid4()),
        "deviceName": f"Virtual-Float-Device-{i % 20}",
        "profileName": "Virtual-Float",
        "sourceName": "Float64",
        "origin": now,
        "readings": [
            {
                "id": str(uuid.uuid4()),
                "origin": now,
                "deviceName": f"Virtual-Float-Device-{i % 20}",
                "resourceName": "Float64",
                "profileName": "Virtual-Float",
                "valueType": "Float64",
                "value": f"{i * 0.001:.6e}",
            }
        ],
    }


def creds(env: dict[str, dict[str, str]], service: str, url: str) -> NatsSettings:
    prefix = by_name(service).env_prefix
    return NatsSettings(
        url=url,
        user=env[service][f"{prefix}NATS__USER"],
        password=SecretStr(env[service][f"{prefix}NATS__PASSWORD"]),
    )


@asynccontextmanager
async def server(setup_dir: Path | None, data: Path) -> AsyncIterator[EmbeddedNats]:
    config = setup_dir / busauth.NATS_CONF if setup_dir is not None else None
    srv = EmbeddedNats(data_dir=data, config_file=config)
    await asyncio.to_thread(srv.start)
    try:
        yield srv
    finally:
        await asyncio.to_thread(srv.stop)


async def one_round(secure_dir: Path | None, data: Path, events: list[bytes]) -> Round:
    async with server(secure_dir, data) as srv:
        if secure_dir is None:
            pub_settings = con_settings = NatsSettings(url=srv.url)
            tls = None
        else:
            env = busauth.init(secure_dir, SERVICES, hosts=[])
            url = f"tls://127.0.0.1:{srv.port}"
            pub_settings, con_settings = creds(env, PUBLISHER, url), creds(env, CONSUMER, url)
            tls = TlsSettings(ca_file=str(secure_dir / "ca.pem"))
        publisher = NatsMessageBus(pub_settings, name=PUBLISHER, tls=tls)
        consumer = NatsMessageBus(con_settings, name=CONSUMER, tls=tls)
        await publisher.connect()
        await consumer.connect()
        try:
            await consumer.ensure_stream(Topics.EVENTS_STREAM, [Topics.EVENTS_ALL])
            got = 0
            done = asyncio.Event()

            async def handle(batch: list[MessageEnvelope]) -> None:
                nonlocal got
                got += len(batch)
                if got >= len(events):
                    done.set()

            member = await consumer.consume_batch(Topics.EVENTS_STREAM, CONSUMER, Topics.EVENTS_ALL, handle)
            devices = [f"Virtual-Float-Device-{i}" for i in range(20)]
            topics = [Topics.events(PUBLISHER, "Virtual-Float", d, "Float64") for d in devices]
            envelopes = [MessageEnvelope.decode(e) for e in events]
            assert srv.pid is not None
            me, nats_server = psutil.Process(), psutil.Process(srv.pid)
            cpu_start, server_start = cpu_seconds(me, nats_server), cpu_seconds(nats_server)
            start = time.perf_counter()
            acks = [await publisher.publish_durable_pipelined(topics[i % 20], env) for i, env in enumerate(envelopes)]
            await asyncio.gather(*acks)
            published = time.perf_counter() - start
            await done.wait()
            consumed = time.perf_counter() - start
            cpu = cpu_seconds(me, nats_server) - cpu_start
            server_cpu = cpu_seconds(nats_server) - server_start
            await member.unsubscribe()
            return Round(published, consumed, got, cpu, server_cpu)
        finally:
            await publisher.close()
            await consumer.close()


async def main(args: argparse.Namespace) -> None:
    print("secure bus benchmark (NATS: permissions + TLS vs open)")
    print(
        f"  host: {platform.machine()}, {psutil.cpu_count()} CPU(s), Python {platform.python_version()},"
        f" load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} (1/5/15 min) at start;"
        " nats-server and this process share the CPUs"
    )
    events = [MessageEnvelope(payload=event(i)).encode() for i in range(args.events)]
    print(f"  {args.events} events of 1 reading ({len(events[0])} bytes each), {args.rounds} rounds per setup")
    results: dict[str, list[Round]] = {"open": [], "secure": []}
    with tempfile.TemporaryDirectory(prefix="secure-bus-bench-") as tmp:
        root = Path(tmp)
        secure_dir = root / "secure"
        ensure_certs(secure_dir, [], hosts=[])  # the CA and the NATS and Redis certificates, as certs init
        busauth.init(secure_dir, SERVICES, hosts=[])  # writes nats.conf with the tls block
        for n in range(args.rounds):
            order = ("open", "secure") if n % 2 == 0 else ("secure", "open")
            for name in order:
                data = root / f"{name}-{n}"
                r = await one_round(secure_dir if name == "secure" else None, data, events)
                results[name].append(r)
                print(
                    f"    round {n + 1} {name:>6}: published {args.events / r.published_s:>8.0f} ev/s,"
                    f" published+consumed {args.events / r.consumed_s:>8.0f} ev/s,"
                    f" CPU {1e6 * r.cpu_s / args.events:>4.0f} us/event ({1e6 * r.server_cpu_s / args.events:.0f} in"
                    f" nats-server), {r.events}/{args.events} received"
                )
    print()
    print(
        f"  {'setup':>8} | {'publish (acked) ev/s':>21} | {'publish + JetStream consume ev/s':>33} |"
        f" {'CPU us/event':>12} | received"
    )
    medians: dict[str, tuple[float, float, float]] = {}
    for name, rounds in results.items():
        pub = statistics.median(args.events / r.published_s for r in rounds)
        end = statistics.median(args.events / r.consumed_s for r in rounds)
        cpu = statistics.median(1e6 * r.cpu_s / args.events for r in rounds)
        medians[name] = (pub, end, cpu)
        lost = sum(args.events - r.events for r in rounds if r.events < args.events)
        print(
            f"  {name:>8} | {pub:>21.0f} | {end:>33.0f} | {cpu:>12.0f} | {sum(r.events for r in rounds)}/"
            f"{args.events * len(rounds)} ({lost} lost)"
        )
    # Paired by round (the two setups ran back to back), which cancels most of the drift of a shared machine.
    paired = statistics.median(
        1 - o.consumed_s / s.consumed_s for o, s in zip(results["open"], results["secure"], strict=True)
    )
    cpu_loss = 1 - medians["open"][2] / medians["secure"][2]
    print()
    print("  loss ratio (1 - secure/open):")
    pub_loss = 1 - medians["secure"][0] / medians["open"][0]
    end_loss = 1 - medians["secure"][1] / medians["open"][1]
    print(f"    publish (acked), medians:                  {100 * pub_loss:5.1f}%")
    print(f"    publish + consume, medians:                {100 * end_loss:5.1f}%")
    print(f"    publish + consume, median of round pairs:  {100 * paired:5.1f}%")
    print(f"    CPU-bound throughput (CPU per event):      {100 * cpu_loss:5.1f}%")
    print("  Target (issue 15): <= 15% throughput loss.")
    print(f"  load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())} (1/5/15 min)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000, help="events per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per setup (median printed)")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parser.parse_args()))
