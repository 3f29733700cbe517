"""`edgeplane up` as a user runs it (a subprocess on free ports), and the checks a user makes next.

Shared by tests/e2e/test_native_stack.py (make run end to end) and tests/e2e/test_start_order.py (the
services started before NATS and Redis exist, as podman-compose does it). The same checks against the
compose stack are in scripts/compose_smoke.py.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nats
import psutil
import pytest
from pymodbus.client import ModbusTcpClient

from edgeplane.services import SERVICES, by_name
from edgeplane.supervisor import pid_alive, read_state
from edgeplane_common.bus.topics import Topics
from edgeplane_common.embedded import free_port, port_in_use

DEVICE = "demo-plc"
UNIT_ID = 1
WRITABLE = "SpeedSetpoint"  # Uint16 in holding register 1 of unit 1, 0..3000 (the demo profile)
WRITABLE_REGISTER = 1
READY_TIMEOUT_S = 90.0  # generous: the 2-core machine may be busy with other tests
DATA_TIMEOUT_S = 30.0  # issue 5: within 30 s of start, readings are in core-data
NAMES = {s.name for s in SERVICES}


def needs(name: str) -> None:
    """Skip the calling test while the launcher does not run `name`."""
    if name not in NAMES:
        pytest.skip(f"{name} is not in the launcher's SERVICES (launcher/edgeplane/services.py) yet")


def _ephemeral_ports() -> range:
    """The ports the kernel gives outgoing connections: any client socket on the machine may take one."""
    try:
        low, high = (int(v) for v in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999  # Linux's default
    return range(low, high + 1)


def free_offset() -> int:
    """A --port-offset that puts every service (the simulators included) on a port free right now and, where
    possible, outside the ephemeral range: there an outgoing connection of any process could take a port
    between this check and the service's bind (seen as `address already in use` at start)."""
    ephemeral = _ephemeral_ports()
    candidates = [random.randint(1000, 5500) for _ in range(200)]
    for outside in (True, False):
        for offset in candidates:
            ports = [s.port + offset for s in SERVICES]
            if all(
                1024 < p < 65536 and not (outside and p in ephemeral) and not port_in_use("0.0.0.0", p) for p in ports
            ):
                return offset
    raise AssertionError("no free set of service ports found")


def launcher_env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("EDGEPLANE_NATS__URL", "EDGEPLANE_REDIS__URL", "EDGEPLANE_PORT_OFFSET"):
        env.pop(name, None)
    return env


@dataclass
class NativeStack:
    proc: subprocess.Popen[bytes]
    output: Path
    data: Path
    offset: int
    started: float
    """time.monotonic() when `edgeplane up` was started."""
    ready_s: float = 0.0
    """The launcher's own figure, seconds from start to all healthy (set by `wait_ready`)."""

    def url(self, name: str) -> str:
        return by_name(name).url(self.offset)

    def state(self) -> dict[str, Any]:
        state = read_state(self.data)
        assert state is not None, f"no run.json in {self.data}\n{self.log()}"
        return state

    def nats_url(self) -> str:
        state = self.state()
        return str(next(s["url"] for s in state["servers"] if s["name"] == "nats"))

    def pids(self) -> dict[str, int]:
        state = self.state()
        return {e["name"]: e["pid"] for e in state["servers"] + state["services"]}

    def log(self) -> str:
        text = self.output.read_text()
        logs = self.data / "logs"
        for path in sorted(logs.glob("*.log")) if logs.is_dir() else []:
            text += f"\n--- {path.name} (last lines) ---\n" + "\n".join(path.read_text().splitlines()[-15:])
        return text

    def wait_ready(self, timeout: float = READY_TIMEOUT_S + 10) -> float:
        """Wait for the launcher's table; return its own figure, seconds from start to all healthy."""
        deadline = time.monotonic() + timeout
        while not (match := re.search(r"ready in ([\d.]+) s", self.output.read_text())):
            assert self.proc.poll() is None, f"edgeplane up exited during start:\n{self.log()}"
            assert time.monotonic() < deadline, f"edgeplane up not ready:\n{self.log()}"
            time.sleep(0.1)
        self.ready_s = float(match.group(1))
        return self.ready_s

    def stop(self) -> None:
        """SIGTERM; the launcher must exit 0 and leave no process behind."""
        pids = list(self.pids().values()) if read_state(self.data) else []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        assert self.proc.returncode == 0, self.log()
        assert "Traceback" not in self.output.read_text()
        deadline = time.monotonic() + 5  # reparented zombies are reaped by init shortly after
        while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [p for p in pids if pid_alive(p)] == []
        assert read_state(self.data) is None


@contextmanager
def edgeplane_up(
    root: Path, *args: str, offset: int | None = None, env: dict[str, str] | None = None
) -> Iterator[NativeStack]:
    """`python -m edgeplane up` on free ports (or `offset`, from `free_offset()`) with its data under `root`
    and `env` added to the environment; killed at the end if still running (call `stack.stop()` to check a
    clean stop)."""
    data, output = root / "data", root / "up.out"
    offset = free_offset() if offset is None else offset
    argv = [
        sys.executable, "-m", "edgeplane", "up", "--data-dir", str(data), f"--port-offset={offset}",
        "--health-timeout", str(READY_TIMEOUT_S), *args,
    ]  # fmt: skip
    if "--nats-url" not in args:
        argv += ["--nats-port", str(free_port())]
    if "--redis-url" not in args:
        argv += ["--redis-port", str(free_port())]
    with output.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=root, env=launcher_env() | (env or {}))
    stack = NativeStack(proc, output, data, offset, time.monotonic())
    try:
        yield stack
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# ---------------------------------------------------------------- the checks


def check_pings(stack: NativeStack) -> None:
    for service in SERVICES:
        url = service.ping_url(stack.offset)
        if service.health == "tcp":
            port = int(url.rsplit(":", 1)[1])
            assert port_in_use("127.0.0.1", port), f"{service.name} does not listen on {url}"
            continue
        response = httpx.get(url, timeout=5, trust_env=False)
        assert response.status_code == 200, f"{service.name}: {response.status_code}\n{stack.log()}"
        assert response.json()["serviceName"] == service.name


def wait_for_device_up(stack: NativeStack, headers: dict[str, str] | None = None, timeout: float = 45.0) -> None:
    """The demo device is provisioned and UP (`headers`: a token, in secure mode)."""
    url = f"{stack.url('core-metadata')}/api/v3/device/name/{DEVICE}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(url, timeout=5, trust_env=False, headers=headers or {})
        if r.status_code == 200 and r.json()["device"]["operatingState"] == "UP":
            return
        time.sleep(0.3)
    raise AssertionError(f"{DEVICE} is not UP\n{stack.log()}")


def check_device_up(stack: NativeStack) -> None:
    url = f"{stack.url('core-metadata')}/api/v3/device/name/{DEVICE}"
    deadline = time.monotonic() + DATA_TIMEOUT_S
    while True:
        response = httpx.get(url, timeout=5, trust_env=False)
        if response.status_code == 200 and response.json()["device"]["operatingState"] == "UP":
            break
        assert time.monotonic() < deadline, f"{url}: {response.status_code} {response.text}\n{stack.log()}"
        time.sleep(0.2)
    device = response.json()["device"]
    assert device["serviceName"] == "device-modbus"
    assert device["adminState"] == "UNLOCKED"


async def check_events_on_nats(stack: NativeStack) -> str:
    """The demo device's autoEvents are published; returns the subject of one."""
    nc = await nats.connect(stack.nats_url(), connect_timeout=5, max_reconnect_attempts=0)
    try:
        subscription = await nc.subscribe(Topics.EVENTS_ALL)
        deadline = time.monotonic() + DATA_TIMEOUT_S
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no event of {DEVICE} on {Topics.EVENTS_ALL}\n{stack.log()}"
            message = await subscription.next_msg(timeout=remaining)
            if f".{DEVICE}." in message.subject:
                break
        assert message.subject.startswith("edgex.events.device.device-modbus.")
        assert message.data
        return str(message.subject)
    finally:
        await nc.close()


def check_readings_in_core_data(stack: NativeStack) -> float:
    """Readings of the demo device are queryable; returns seconds since `edgeplane up` started."""
    base = stack.url("core-data")
    deadline = time.monotonic() + DATA_TIMEOUT_S
    while True:
        try:
            response = httpx.get(f"{base}/api/v3/reading/count/device/name/{DEVICE}", timeout=5, trust_env=False)
            if response.status_code == 200 and response.json()["count"] > 0:
                break
            last = response.text
        except httpx.HTTPError as err:
            last = repr(err)
        assert time.monotonic() < deadline, f"no readings of {DEVICE} in core-data: {last}\n{stack.log()}"
        time.sleep(0.5)
    after = time.monotonic() - stack.started
    events = httpx.get(f"{base}/api/v3/event/device/name/{DEVICE}", params={"limit": 5}, timeout=5, trust_env=False)
    assert events.status_code == 200
    event = events.json()["events"][0]
    assert event["deviceName"] == DEVICE
    assert event["readings"]
    assert all(r["deviceName"] == DEVICE for r in event["readings"])
    return after


def holding_register(port: int, address: int, unit: int = UNIT_ID) -> int:
    client = ModbusTcpClient("127.0.0.1", port=port, timeout=5, retries=1)
    try:
        assert client.connect(), f"cannot connect to the simulator on port {port}"
        response = client.read_holding_registers(address, count=1, device_id=unit)
        assert not response.isError(), response
        value: int = response.registers[0]
        return value
    finally:
        client.close()


def check_command_write(stack: NativeStack) -> None:
    """GET and PUT through core-command; the PUT changes the simulator's holding register."""
    sim_port = by_name("modbus-sim").http_port(stack.offset)
    url = f"{stack.url('core-command')}/api/v3/device/name/{DEVICE}/{WRITABLE}"

    read = httpx.get(url, timeout=10, trust_env=False)
    assert read.status_code == 200, f"{read.status_code} {read.text}\n{stack.log()}"
    before = int(read.json()["event"]["readings"][0]["value"])
    assert before == holding_register(sim_port, WRITABLE_REGISTER)

    target = (before + 111) % 3000
    write = httpx.put(url, json={WRITABLE: str(target)}, timeout=10, trust_env=False)
    assert write.status_code == 200, f"{write.status_code} {write.text}\n{stack.log()}"
    assert holding_register(sim_port, WRITABLE_REGISTER) == target
    again = httpx.get(url, timeout=10, trust_env=False).json()
    assert int(again["event"]["readings"][0]["value"]) == target


def rss_by_process(stack: NativeStack) -> dict[str, int]:
    """Resident memory of each server and service (with its children), in bytes."""
    rss: dict[str, int] = {}
    for name, pid in stack.pids().items():
        assert pid_alive(pid), f"{name} (pid {pid}) is not running"
        process = psutil.Process(pid)
        rss[name] = sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])
    return rss
