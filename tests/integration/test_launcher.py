"""`python -m edgeplane up` end to end: real embedded NATS and Redis, real services, real signals.

Ports: NATS and Redis get free ports through --nats-port/--redis-port; the services' REST ports are moved
with --port-offset so a stack already running on the default ports (make run) does not collide.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from edgeplane.services import SERVICES, by_name
from edgeplane.supervisor import pid_alive, read_state, tcp_reachable
from edgeplane_common.embedded import free_port
from tests.support.native import NativeStack, edgeplane_up, free_offset

FIRST = SERVICES[0]


def _edgeplane(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgeplane", *args]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("EDGEPLANE_NATS__URL", "EDGEPLANE_REDIS__URL", "EDGEPLANE_PORT_OFFSET"):
        env.pop(name, None)
    return env


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_up_serves_ping_then_sigterm_stops_everything(tmp_path: Path) -> None:
    data = tmp_path / "data"
    offset = free_offset()
    output = tmp_path / "up.out"
    with output.open("wb") as out:
        proc = subprocess.Popen(
            _edgeplane(
                "up", "--data-dir", str(data), "--nats-port", str(free_port()),
                "--redis-port", str(free_port()), f"--port-offset={offset}",
            ),
            stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path, env=_env(),
        )  # fmt: skip
    try:
        ping = FIRST.ping_url(offset)
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"edgeplane up exited early:\n{output.read_text()}"
            try:
                if httpx.get(ping, timeout=1, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"no ping answer from {ping}:\n{output.read_text()}"
            time.sleep(0.2)

        state = read_state(data)
        assert state is not None
        pids = [e["pid"] for e in state["servers"] + state["services"]]
        assert {e["name"] for e in state["servers"]} == {"nats", "redis"}
        assert len(pids) == 2 + len(SERVICES)
        assert all(pid_alive(p) for p in pids)

        deadline = time.monotonic() + 30  # the table is printed once every service is healthy
        while "ready in" not in output.read_text():
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(0.1)
        # `up` waits for liveness (ping); status asks readiness, which may follow a moment later.
        deadline = time.monotonic() + 30
        while True:
            status = subprocess.run(
                _edgeplane("status", "--data-dir", str(data)),
                capture_output=True,
                text=True,
                env=_env(),
                timeout=30,
            )
            if status.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert status.returncode == 0, status.stdout + status.stderr
        assert FIRST.name in status.stdout

        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = output.read_text()
    assert code == 0, text
    assert "Traceback" not in text
    assert "stopped" in text
    deadline = time.monotonic() + 5  # reparented zombies are reaped by init shortly after
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for p in pids if pid_alive(p)] == []
    assert read_state(data) is None


def test_busy_service_port_is_reported_by_name(tmp_path: Path, listener: int) -> None:
    offset = listener - FIRST.port
    result = subprocess.run(
        _edgeplane(
            "up", "--data-dir", str(tmp_path / "data"), "--nats-port", str(free_port()),
            "--redis-port", str(free_port()), f"--port-offset={offset}",
        ),
        capture_output=True, text=True, cwd=tmp_path, env=_env(), timeout=60,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert f"port {listener} ({FIRST.name}) is already in use" in output
    assert "Traceback" not in output
    assert not (tmp_path / "data" / "nats").exists(), "nothing may start when a port is busy"


def test_busy_nats_port_is_reported_by_name(tmp_path: Path, listener: int) -> None:
    result = subprocess.run(
        _edgeplane(
            "up", "--data-dir", str(tmp_path / "data"), "--nats-port", str(listener),
            "--redis-port", str(free_port()), f"--port-offset={free_offset()}",
        ),
        capture_output=True, text=True, cwd=tmp_path, env=_env(), timeout=60,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert f"port {listener} (NATS) is already in use" in output
    assert "--nats-url" in output
    assert "Traceback" not in output


def test_unknown_service_is_a_usage_error(tmp_path: Path) -> None:
    result = subprocess.run(
        _edgeplane("up", "--data-dir", str(tmp_path), "--only", "no-such-service"),
        capture_output=True, text=True, env=_env(), timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "unknown service 'no-such-service'" in result.stderr
    assert FIRST.name in result.stderr


# ------------------------------------------------------------------ supervision


def _wait(what: str, check: Callable[[], bool], stack: NativeStack, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert stack.proc.poll() is None, f"edgeplane up exited while waiting for {what}:\n{stack.log()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{stack.log()}"
        time.sleep(0.2)


def _pinging(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def test_killed_service_and_servers_are_restarted_while_the_rest_keeps_running(tmp_path: Path) -> None:
    with edgeplane_up(tmp_path, "--only", "core-metadata", "--only", "core-data") as stack:
        stack.wait_ready()
        before = stack.pids()
        assert set(before) == {"nats", "redis", "core-metadata", "core-data"}
        metadata_ping = by_name("core-metadata").ping_url(stack.offset)
        data_ping = by_name("core-data").ping_url(stack.offset)

        # A service: reaped, restarted with a new pid, answers ping again; nobody else was touched.
        os.kill(before["core-data"], signal.SIGKILL)
        _wait("core-data restarted", lambda: stack.pids()["core-data"] != before["core-data"], stack)
        _wait("core-data ping", lambda: _pinging(data_ping), stack)
        assert not pid_alive(before["core-data"]), "no zombie"
        after = stack.pids()
        assert {k: v for k, v in after.items() if k != "core-data"} == {
            k: v for k, v in before.items() if k != "core-data"
        }

        # nats-server: reaped, restarted on its port; the services kept running (same pids).
        for server in ("nats", "redis"):
            pids = stack.pids()
            os.kill(pids[server], signal.SIGKILL)
            _wait(f"{server} restarted", lambda s=server, p=pids: stack.pids()[s] != p[s], stack)
            url = next(e["url"] for e in stack.state()["servers"] if e["name"] == server)
            _wait(f"{server} accepting connections", lambda u=url: tcp_reachable(u), stack)
            assert not pid_alive(pids[server]), "no zombie"
            assert {k: v for k, v in stack.pids().items() if k != server} == {
                k: v for k, v in pids.items() if k != server
            }
        assert _pinging(metadata_ping)
        _wait("core-data ping after the server restarts", lambda: _pinging(data_ping), stack)
        # Ready again, not only alive: both reconnected to the restarted NATS and Redis.
        for ping in (metadata_ping, data_ping):
            health = ping.replace("/api/v3/ping", "/api/v3/health")
            _wait(f"{health} ready after the server restarts", lambda u=health: _pinging(u), stack)

        status = subprocess.run(
            _edgeplane("status", "--data-dir", str(stack.data), "--only", "core-metadata", "--only", "core-data"),
            capture_output=True, text=True, env=_env(), timeout=30,
        )  # fmt: skip
        assert status.returncode == 0, status.stdout + status.stderr
        assert "restarted 1x" in status.stdout
        assert "SIGKILL" in status.stdout

        output = stack.output.read_text()
        for name in ("core-data", "NATS", "Redis"):
            assert f"{name} was killed by SIGKILL; restarting in 0.5 s" in output
            assert f"{name} restarted (pid" in output
        stack.stop()  # still exits 0 and leaves nothing behind

    # The log of the killed run is still there, the restarted run appended after a marker.
    log = (stack.data / "logs" / "core-data.log").read_text()
    assert log.count("edgeplane up: starting core-data") == 2
    assert "restart 1, after it killed by SIGKILL" in log
    assert (stack.data / "nats" / "nats.log").read_text().count("starting NATS on") == 2
