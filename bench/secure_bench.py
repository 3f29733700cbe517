"""Secure mode's cost on the REST APIs (issue 15, benchmark, REST part): `python bench/secure_bench.py` or
`make bench`. The bus part is bench/secure_bus_bench.py.

Real processes on loopback, as `make run` runs them: nats-server, Redis, and core-metadata three times, one per
mode, all running for the whole measurement:

  open        no token, plain HTTP (the default, `make run`);
  secure      signed tokens checked on every request (SECURITY__ENABLED), plain HTTP;
  secure+TLS  tokens and HTTPS, certificates from `edgeplane certs init`'s CA.

Two routes: `GET /api/v3/ping` (open in every mode: TLS is the only difference) and `GET /api/v3/device/all`
(needs a token in secure mode: the token is verified, and core-metadata, the issuer, also checks the user
still exists, one Redis GET). The token is an admin's, from `POST /api/v3/auth/login`.

The client is this process: one httpx.AsyncClient per mode with keep-alive connections (TLS handshakes happen
once per connection, during the warm-up), `--clients` workers each sending requests back to back. Modes are
measured in turns (`--rounds` rounds of `--requests` requests per mode and route) so that a change in the
machine's load spreads over all of them. Printed: requests/s (all requests / time spent), p50 and p99 of the
per-request latency, and the throughput lost against open (negative: faster than open). Target (issue 15):
<= 15 % loss. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from _procs import QUIET, Proc, Procs, wait_tcp, workdir

from edgeplane.secure import tls as certs
from edgeplane.services import by_name
from edgeplane_common.embedded import EmbeddedNats, EmbeddedRedis, free_port
from edgeplane_common.tls import client_verify

ADMIN_PASSWORD = "bench-admin-password"
ROUTES = ("/api/v3/ping", "/api/v3/device/all")
MODES = ("open", "secure", "secure+TLS")


@dataclass
class Mode:
    name: str
    url: str
    client: httpx.AsyncClient
    token: str | None = None
    samples: dict[str, list[float]] = field(default_factory=lambda: {r: [] for r in ROUTES})
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(ROUTES, 0.0))


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


async def burst(mode: Mode, route: str, requests: int, clients: int, record: bool) -> None:
    """`requests` GETs of `route` by `clients` workers; latencies and the elapsed time kept when `record`."""
    headers = {"Authorization": f"Bearer {mode.token}"} if mode.token and route != "/api/v3/ping" else {}
    url = mode.url + route
    latencies: list[float] = []
    left = [requests]

    async def worker() -> None:
        while left[0] > 0:
            left[0] -= 1
            t0 = time.perf_counter()
            r = await mode.client.get(url, headers=headers)
            latencies.append((time.perf_counter() - t0) * 1000)
            if r.status_code != 200:
                raise RuntimeError(f"{mode.name} GET {route} answered {r.status_code}: {r.text[:200]}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    if record:
        mode.seconds[route] += time.perf_counter() - started
        mode.samples[route].extend(latencies)


def pct(samples: list[float], p: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


async def measure(modes: list[Mode], args: argparse.Namespace) -> None:
    for mode in modes:  # connections opened (and TLS handshakes done) here, not in the measurement
        for route in ROUTES:
            await burst(mode, route, args.warmup, args.clients, record=False)
    for _ in range(args.rounds):
        for route in ROUTES:
            for mode in modes:
                await burst(mode, route, args.requests, args.clients, record=True)


def report(modes: list[Mode]) -> None:
    print(f"\n{'route':<22} {'mode':<11} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'loss vs open':>13}")
    for route in ROUTES:
        base = len(modes[0].samples[route]) / modes[0].seconds[route]
        for mode in modes:
            rate = len(mode.samples[route]) / mode.seconds[route]
            loss = "-" if mode is modes[0] else f"{(1 - rate / base) * 100:.1f} %"
            p50, p99 = statistics.median(mode.samples[route]), pct(mode.samples[route], 99)
            label = f"GET {route.removeprefix('/api/v3')}" if mode is modes[0] else ""
            print(f"{label:<22} {mode.name:<11} {rate:>8.0f} {p50:>8.2f} {p99:>8.2f} {loss:>13}")
    print("target (issue 15): secure+TLS loses <= 15 % of open's throughput")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1000, help="measured requests per mode, route and round")
    ap.add_argument("--rounds", type=int, default=3, help="rounds, each measuring every mode in turn (default 3)")
    ap.add_argument("--warmup", type=int, default=200, help="requests per mode and route before measuring")
    ap.add_argument("--clients", type=int, default=4, help="concurrent clients (keep-alive connections)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (service logs)")
    args = ap.parse_args(argv)
    print(f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}; {load()}")
    with workdir("secure", args.keep) as tmp:
        procs = Procs(tmp)
        try:
            asyncio.run(run(args, tmp, procs))
        finally:
            procs.stop_all()
    print(f"after: {load()}")
    return 0


async def run(args: argparse.Namespace, tmp: Path, procs: Procs) -> None:
    print("starting nats-server, Redis and core-metadata x3 (open, secure, secure+TLS) ...", flush=True)
    nats_srv = EmbeddedNats(data_dir=tmp / "nats").start()
    redis_srv = EmbeddedRedis(data_dir=tmp / "redis").start()
    secure_dir = tmp / "secure"
    env = certs.init(secure_dir, [by_name("core-metadata")], hosts=[])
    ca = env["*"]["EDGEPLANE_TLS__CA_FILE"]
    modes: list[Mode] = []
    started: list[tuple[Proc, int]] = []
    try:
        for db, name in enumerate(MODES):
            port = free_port()
            service_env = {
                **QUIET,
                "EDGEPLANE_NATS__URL": nats_srv.url,
                "EDGEPLANE_REDIS__URL": redis_srv.url.removesuffix("/0") + f"/{db}",
                "CORE_METADATA_HTTP__HOST": "127.0.0.1",
                "CORE_METADATA_HTTP__PORT": str(port),
            }
            if name != "open":
                service_env |= {
                    "CORE_METADATA_SECURITY__ENABLED": "true",
                    "CORE_METADATA_SECURITY__SIGNING_KEY_FILE": str(tmp / f"signing-{db}.pem"),
                    "CORE_METADATA_SECURITY__ADMIN_PASSWORD": ADMIN_PASSWORD,
                }
            scheme, verify = "http", client_verify(None)
            if name == "secure+TLS":
                service_env |= env["core-metadata"]
                scheme, verify = "https", client_verify(ca)
            started.append((procs.spawn(f"core-metadata-{name}", ["-m", "core_metadata"], service_env), port))
            limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
            client = httpx.AsyncClient(verify=verify, limits=limits, timeout=30, trust_env=False)
            modes.append(Mode(name, f"{scheme}://127.0.0.1:{port}", client))
        for proc, port in started:  # all three start at once; a loaded machine may take a while
            wait_tcp(proc, port, timeout=180)
        for mode in modes:
            await ready(mode)
            if mode.name != "open":
                login = {"username": "admin", "password": ADMIN_PASSWORD}
                r = await mode.client.post(mode.url + "/api/v3/auth/login", json=login)
                r.raise_for_status()
                mode.token = r.json()["token"]
        total = args.rounds * args.requests
        print(
            f"measuring: {total} requests per mode and route ({args.rounds} rounds of {args.requests}), "
            f"{args.clients} clients; {load()}",
            flush=True,
        )
        await measure(modes, args)
        report(modes)
    finally:
        for mode in modes:
            await mode.client.aclose()
        redis_srv.stop()
        nats_srv.stop()


async def ready(mode: Mode) -> None:
    """core-metadata answers its health once Redis and NATS are connected (and, secure, the admin exists)."""
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if (await mode.client.get(mode.url + "/api/v3/health")).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"core-metadata ({mode.name}) not ready at {mode.url}")
        await asyncio.sleep(0.1)


if __name__ == "__main__":
    raise SystemExit(main())
