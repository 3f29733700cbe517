"""The console under live load: a device page with N live charts while each charted resource gets R new
values per second, in Debian's Chromium (Playwright). Prints, per chart, the points drawn per second and the
lag of the newest drawn point behind the clock, and the console's RSS before and during the load.

Without arguments (as `make bench` runs it) it starts its own stack (`edgeplane up` on free ports, in a
temporary folder) and stops it at the end; `--secure` starts it in secure mode (`edgeplane up --secure`: TLS,
NATS users, tokens), logs in as its first admin and publishes as device-modbus with that service's NATS user.
Against a running one:

    python bench/console_bench.py --console http://127.0.0.1:4000 --nats nats://127.0.0.1:4222 [--pid PID]
        [--username U --password P] [--nats-user U --nats-password P] [--ca-file CA]

Events are published for the demo device (demo-plc) on its events subject, as device-modbus publishes them;
nothing is asserted, figures are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import shlex
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nats
import orjson
import psutil
from playwright.async_api import Page, async_playwright

from edgeplane_common.bus.topics import Topics
from edgeplane_common.embedded import free_port, port_in_use

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
RESOURCES = ["TankLevel", "LinePressure", "ActivePower", "Voltage", "Current", "TankVolume", "Gain"]
DEVICE, PROFILE, SERVICE = "demo-plc", "Edgeplane-Demo-PLC", "device-modbus"


def event(resource: str, value: float) -> bytes:
    now = time.time_ns()
    reading = {"id": str(uuid.uuid4()), "origin": now, "deviceName": DEVICE, "resourceName": resource,
               "profileName": PROFILE, "valueType": "Float64", "value": f"{value:e}"}  # fmt: skip
    doc = {"apiVersion": "v3", "id": str(uuid.uuid4()), "deviceName": DEVICE, "profileName": PROFILE,
           "sourceName": "Bench", "origin": now, "readings": [reading]}  # fmt: skip
    return orjson.dumps({"apiVersion": "v3", "correlationID": str(uuid.uuid4()), "contentType": "application/json",
                         "payload": doc})  # fmt: skip


def rss_bytes(pid: int | None) -> int:
    if not pid:
        return 0
    p = psutil.Process(pid)
    return sum(x.memory_info().rss for x in [p, *p.children(recursive=True)])


def size(total: int) -> str:
    """In MiB and in MB (the target is stated in decimal MB)."""
    return f"{total / 2**20:.1f} MiB = {total / 1e6:.1f} MB" if total else "-"


def rss(pid: int | None) -> str:
    """The console's RSS (with any children)."""
    return size(rss_bytes(pid))


def load() -> str:
    return f"1-min load average {os.getloadavg()[0]:.2f}"


async def log_in_if_asked(page: Page, args: argparse.Namespace) -> None:
    """Secure mode: the console sends the page to its login first."""
    if "/login" not in page.url:
        return
    if not args.username:
        raise SystemExit("the console asks for a login: give --username and --password")
    await page.fill('input[data-testid="login-username"], [data-testid="login-username"] input', args.username)
    await page.fill('input[data-testid="login-password"], [data-testid="login-password"] input', args.password)
    await page.click('[data-testid="login-submit"]')


async def main(args: argparse.Namespace) -> None:
    charts = RESOURCES[: args.charts]
    tls = ssl.create_default_context(cafile=args.ca_file) if args.ca_file else None
    nc = await nats.connect(args.nats, user=args.nats_user, password=args.nats_password, tls=tls)
    print(f"console {args.console}; {load()}")
    print(f"console RSS idle: {rss(args.pid)}")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
        # The console's certificate is from the stack's own CA, which Chromium does not know.
        context = await browser.new_context(viewport={"width": 1400, "height": 1000}, ignore_https_errors=True)
        page = await context.new_page()
        await page.goto(f"{args.console}/devices/{DEVICE}?charts={','.join(charts)}")
        await log_in_if_asked(page, args)
        await page.wait_for_selector(f'[data-testid="chart-{charts[0]}"]')
        subject = Topics.events(SERVICE, PROFILE, DEVICE, "Bench")
        sent = 0
        start = time.monotonic()
        samples: dict[str, list[tuple[float, int, int]]] = {c: [] for c in charts}
        rss_seen: list[int] = []
        next_sample = start + 1
        while time.monotonic() - start < args.seconds:
            for resource in charts:
                await nc.publish(subject, event(resource, sent))
            sent += 1
            if time.monotonic() >= next_sample:
                next_sample += 1
                rss_seen.append(rss_bytes(args.pid))
                now_ms = int(time.time() * 1000)
                for resource in charts:
                    el = page.locator(f'[data-testid="chart-{resource}"]')
                    points = int(await el.get_attribute("data-points") or 0)
                    last = int(await el.get_attribute("data-last") or 0)
                    samples[resource].append((time.monotonic() - start, points, now_ms - last if last else -1))
            await asyncio.sleep(max(0.0, start + sent / args.rate - time.monotonic()))
        elapsed = time.monotonic() - start
        print(
            f"published {sent} values per chart in {elapsed:.1f} s ({sent / elapsed:.1f}/s each, {len(charts)} charts)"
        )
        print(f"console RSS with the page open under load: {rss(args.pid)}; {load()}")
        steady_rss = sorted(rss_seen[len(rss_seen) // 3 :])
        if steady_rss:
            print(f"  sampled each second after the first third: median {size(steady_rss[len(steady_rss) // 2])}, "
                  f"max {size(steady_rss[-1])}")  # fmt: skip
        for resource, rows in samples.items():
            steady = rows[len(rows) // 3 :]
            if len(steady) < 2:
                continue
            (t0, p0, _), (t1, p1, _) = steady[0], steady[-1]
            lags = sorted(lag for _, _, lag in steady if lag >= 0)
            grow = (p1 - p0) / (t1 - t0) if t1 > t0 and p1 < 600 else float("nan")
            print(f"  {resource:<13} drawn {grow:5.1f} points/s (until the 600-point window is full); "
                  f"lag of newest drawn point p50 {lags[len(lags) // 2]} ms, max {lags[-1]} ms")  # fmt: skip
        await browser.close()
    await nc.close()


def env_file(path: Path) -> dict[str, str]:
    """A service's dotenv file as `edgeplane secure init` writes it (KEY='value' lines)."""
    pairs = (shlex.split(line)[0].partition("=") for line in path.read_text().splitlines() if line.strip())
    return {key: value for key, _, value in pairs}


@contextmanager
def own_stack(secure: bool) -> Iterator[argparse.Namespace]:
    """`edgeplane up` (`--secure`) on free ports; the console's URL, pid and login, and NATS as device-modbus."""
    with tempfile.TemporaryDirectory(prefix="console-bench-") as tmp:
        offset = next(
            o for o in (random.randint(1000, 5000) for _ in range(200))
            if not any(port_in_use("0.0.0.0", p + o) for p in (4000, 5020, 59720, 59880, 59881, 59882, 59901))
        )  # fmt: skip
        data, out = Path(tmp) / "data", Path(tmp) / "up.out"
        argv = [sys.executable, "-m", "edgeplane", "up", "--data-dir", str(data), f"--port-offset={offset}",
                "--nats-port", str(free_port()), "--redis-port", str(free_port())]  # fmt: skip
        password = secrets.token_urlsafe(12)
        env = {**os.environ, "EDGEPLANE_ADMIN_PASSWORD": password}
        with out.open("wb") as log:
            proc = subprocess.Popen(
                [*argv, "--secure"] if secure else argv, stdout=log, stderr=subprocess.STDOUT, cwd=tmp, env=env
            )
        try:
            deadline = time.monotonic() + 120
            while not re.search(r"ready in", out.read_text()):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"edgeplane up did not start:\n{out.read_text()}")
                time.sleep(0.2)
            state = json.loads((data / "run.json").read_text())
            nats_url = next(s["url"] for s in state["servers"] if s["name"] == "nats")
            console = next(s for s in state["services"] if s["name"] == "console")
            found = argparse.Namespace(console=console["url"], nats=nats_url, pid=console["pid"])
            if secure:
                publisher = env_file(data / "secure" / "env" / f"{SERVICE}.env")
                found.nats_user = publisher["DEVICE_MODBUS_NATS__USER"]
                found.nats_password = publisher["DEVICE_MODBUS_NATS__PASSWORD"]
                found.ca_file, found.username, found.password = state["caFile"], "admin", password
            time.sleep(5)  # the demo device comes UP and publishes
            yield found
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--console", help="a running console (default: start a stack)")
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    parser.add_argument("--pid", type=int, default=None, help="the console's process id, for its RSS")
    parser.add_argument("--charts", type=int, default=5)
    parser.add_argument("--rate", type=float, default=10.0, help="values per second per chart")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--secure", action="store_true", help="start the stack in secure mode (edgeplane up --secure)")
    parser.add_argument("--username", help="a running secure console: who logs in")
    parser.add_argument("--password")
    parser.add_argument("--nats-user", help="a secure NATS: a user that may publish device-modbus's events")
    parser.add_argument("--nats-password")
    parser.add_argument("--ca-file", help="a secure NATS: the CA its certificate is signed by")
    args = parser.parse_args()
    if args.console:
        asyncio.run(main(args))
    else:
        with own_stack(args.secure) as stack:
            asyncio.run(main(argparse.Namespace(**{**vars(args), **vars(stack)})))
