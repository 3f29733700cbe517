"""Process supervision of the launcher with throwaway child processes (no NATS, Redis or real service)."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edgeplane.services import NATS, REDIS, Infra, Service
from edgeplane.supervisor import (
    Backoff,
    Child,
    ChildExitedError,
    HealthTimeoutError,
    PortClaim,
    PortsBusyError,
    Restarts,
    Stack,
    StackConfig,
    StopRequestedError,
    check_ports,
    describe_exit,
    pid_alive,
    read_state,
    stop_children,
    tail,
    tcp_reachable,
    wait_healthy,
)
from edgeplane_common.embedded import free_port

PY = sys.executable


@pytest.fixture
def listener() -> Iterator[int]:
    """A port some other program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _child(tmp_path: Path, name: str, code: str, health_url: str = "http://127.0.0.1:9/none") -> Child:
    return Child(
        name=name,
        argv=[PY, "-c", textwrap.dedent(code)],
        env={"PYTHONUNBUFFERED": "1"},
        log_path=tmp_path / f"{name}.log",
        health_url=health_url,
    )


def _wait_for_log(child: Child, text: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while text not in child.log_tail():
        assert time.monotonic() < deadline, f"{child.name} never logged {text!r}: {child.log_tail()}"
        time.sleep(0.02)


# ------------------------------------------------------------------ ports


def test_check_ports_names_the_owner_of_a_busy_port(listener: int) -> None:
    free = free_port()
    problems = check_ports([PortClaim(free, "NATS"), PortClaim(listener, "core-metadata", "0.0.0.0")])
    assert [str(p) for p in problems] == [f"port {listener} (core-metadata) is already in use"]


def test_check_ports_rejects_duplicates_and_invalid_ports() -> None:
    port = free_port()
    problems = [str(p) for p in check_ports([PortClaim(port, "NATS"), PortClaim(port, "x"), PortClaim(0, "y")])]
    assert problems == [f"port {port} (x) is also requested for NATS", "port 0 (y) is not a valid TCP port (1-65535)"]


def test_tcp_reachable(listener: int) -> None:
    assert tcp_reachable(f"nats://127.0.0.1:{listener}")
    assert tcp_reachable(f"redis://user:secret@127.0.0.1:{listener}/0")
    assert not tcp_reachable(f"nats://127.0.0.1:{free_port()}")
    assert not tcp_reachable("not a url")


# ------------------------------------------------------------------ children


def test_wait_healthy_until_ping_answers(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "api" / "v3").mkdir(parents=True)
    (site / "api" / "v3" / "ping").write_text("pong")
    port = free_port()
    child = Child(
        name="web",
        argv=[PY, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(site)],
        env={},
        log_path=tmp_path / "logs" / "web.log",
        health_url=f"http://127.0.0.1:{port}/api/v3/ping",
    )
    child.start()
    try:
        wait_healthy([child], timeout=20)
        assert child.healthy_after is not None
        assert child.running
    finally:
        codes = stop_children([child], grace=5)
    assert codes["web"] is not None
    assert not pid_alive(child.pid)


def test_child_exiting_during_start_is_reported_with_its_log(tmp_path: Path) -> None:
    child = _child(tmp_path, "crasher", "print('config broken: no such thing'); raise SystemExit(3)")
    child.start()
    with pytest.raises(ChildExitedError) as info:
        wait_healthy([child], timeout=20)
    assert info.value.code == 3
    assert "config broken" in child.log_tail()


def test_health_timeout(tmp_path: Path) -> None:
    child = _child(tmp_path, "sleeper", "import time; time.sleep(60)")
    child.start()
    try:
        with pytest.raises(HealthTimeoutError, match=r"sleeper did not answer ping within 0\.3 s"):
            wait_healthy([child], timeout=0.3, ping=lambda url: False)
    finally:
        stop_children([child], grace=5)


def test_stop_request_interrupts_the_wait(tmp_path: Path) -> None:
    child = _child(tmp_path, "sleeper", "import time; time.sleep(60)")
    child.start()
    try:
        with pytest.raises(StopRequestedError):
            wait_healthy([child], timeout=30, stop_requested=lambda: True, ping=lambda url: False)
    finally:
        stop_children([child], grace=5)


def test_sigterm_then_sigkill_after_the_grace_period(tmp_path: Path) -> None:
    stubborn = _child(
        tmp_path,
        "stubborn",
        """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ready", flush=True)
        time.sleep(60)
        """,
    )
    polite = _child(tmp_path, "polite", "import time; print('ready', flush=True); time.sleep(60)")
    stubborn.start()
    polite.start()
    _wait_for_log(stubborn, "ready")
    _wait_for_log(polite, "ready")
    started = time.monotonic()
    codes = stop_children([stubborn, polite], grace=0.5)
    assert codes == {"stubborn": -signal.SIGKILL, "polite": -signal.SIGTERM}
    assert time.monotonic() - started < 5


def test_tail_reads_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert tail(log, 3) == "line 97\nline 98\nline 99"
    assert tail(tmp_path / "missing.log") == ""


# ------------------------------------------------------------------ the stack

FAKE_SERVICE = '''
"""A stand-in service: records its environment, answers GET /api/v3/ping on FAKE_SVC_HTTP__PORT."""
import http.server, json, os, pathlib
pathlib.Path(os.environ["FAKE_ENV_DUMP"]).write_text(json.dumps(dict(os.environ)))

class Ping(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/api/v3/ping" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass

http.server.HTTPServer(("127.0.0.1", int(os.environ["FAKE_SVC_HTTP__PORT"])), Ping).serve_forever()
'''


class FakeServer:
    def __init__(self, infra: Infra, port: int, calls: list[str]) -> None:
        self.infra, self.port, self.calls = infra, port, calls

    @property
    def url(self) -> str:
        return f"{self.infra.name}://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return 4242

    def poll(self) -> int | None:
        return None

    def start(self) -> None:
        self.calls.append(f"start {self.infra.name}")

    def stop(self) -> None:
        self.calls.append(f"stop {self.infra.name}")


def test_stack_wires_env_starts_in_order_and_stops_services_before_servers(tmp_path: Path) -> None:
    pkg = tmp_path / "pkgs" / "fake_svc"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(FAKE_SERVICE)
    port = free_port()
    service = Service(
        name="fake-svc",
        module="fake_svc",
        project="fake-svc",
        port=port - 7,
        settings=None,
        description="test stand-in",
        needs_redis=False,
    )
    calls: list[str] = []
    config = StackConfig(
        services=[service],
        data_dir=tmp_path / "data",
        nats_port=free_port(),
        port_offset=7,
        log_json=False,
        health_timeout=20,
        stop_grace=5,
        base_env={"PYTHONPATH": str(tmp_path / "pkgs"), "FAKE_ENV_DUMP": str(tmp_path / "env.json")},
    )
    stack = Stack(config, server_factory=lambda infra, host, p, d: FakeServer(infra, p, calls))

    assert [c.owner for c in stack.port_claims()] == ["NATS", "fake-svc"]  # no Redis: nobody needs it
    stack.check_ports()
    stack.start_servers()
    stack.start_services()
    try:
        stack.wait_healthy()
        state = read_state(config.data_dir)
        assert state is not None
        assert state["services"][0]["pid"] == stack.children[0].pid
        rows = {r.name: r for r in stack.rows()}
        assert rows["nats"].status == "embedded"
        assert rows["fake-svc"].url == f"http://127.0.0.1:{port}"
        assert rows["fake-svc"].status.startswith("healthy")
    finally:
        stack.stop(on_step=calls.append)

    env = json.loads((tmp_path / "env.json").read_text())
    assert env["EDGEPLANE_NATS__URL"] == f"nats://127.0.0.1:{config.nats_port}"
    assert "EDGEPLANE_REDIS__URL" not in env
    assert env["FAKE_SVC_HTTP__PORT"] == str(port)
    assert env["EDGEPLANE_LOG_JSON"] == "false"
    assert calls == ["start nats", "stopping fake-svc", "stopping NATS", "stop nats"]
    assert not stack.children[0].running
    assert read_state(config.data_dir) is None


def test_stack_with_external_urls_starts_no_server(tmp_path: Path) -> None:
    service = Service("svc", "svc", "svc", 50000, "SVC_", None, "x")
    config = StackConfig(
        services=[service], data_dir=tmp_path, nats_url="nats://nats.example:4222", redis_url="redis://r:6379"
    )
    stack = Stack(config, server_factory=lambda *a: pytest.fail("no server may be started"))
    assert config.embedded() == []
    stack.start_servers()
    env = stack.service_env(service)
    assert env[NATS.url_env] == "nats://nats.example:4222"
    assert env[REDIS.url_env] == "redis://r:6379"
    assert [r.status for r in stack.rows()] == ["external", "external"]


def test_stack_reports_every_busy_port_before_starting(tmp_path: Path, listener: int) -> None:
    service = Service("svc", "svc", "svc", listener, "SVC_", None, "x")
    config = StackConfig(services=[service], data_dir=tmp_path, nats_port=listener, redis_port=free_port())
    stack = Stack(config, server_factory=lambda *a: pytest.fail("no server may be started"))
    with pytest.raises(PortsBusyError) as info:
        stack.check_ports()
    assert [str(p) for p in info.value.problems] == [
        f"port {listener} (NATS) is already in use",
        f"port {listener} (svc) is also requested for NATS",
    ]


# ------------------------------------------------------------------ restarts


def test_backoff_doubles_from_half_a_second_to_the_cap() -> None:
    policy = Backoff()
    assert [policy.delay(n) for n in range(1, 10)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    assert policy.delay(10_000) == 30  # a crash loop of days: still the cap, no overflow


def test_restarts_reset_the_series_after_the_process_stayed_up() -> None:
    restarts = Restarts(Backoff(initial=1, factor=2, cap=8, stable_after=60))
    delays = [restarts.exited(3, uptime=0.5, now=100.0) for _ in range(5)]
    assert delays == [1, 2, 4, 8, 8]
    assert (restarts.failures, restarts.last_exit, restarts.due) == (5, 3, 108.0)
    restarts.restarting()
    assert (restarts.count, restarts.due) == (1, None)
    assert restarts.exited(-9, uptime=61, now=200.0) == 1, "up for a while: a new series"
    assert restarts.state() | {"nextStartAt": None} == {
        "restarts": 1,
        "lastExit": -9,
        "failuresInARow": 1,
        "nextStartAt": None,
    }


def test_describe_exit() -> None:
    assert describe_exit(3) == "exited with code 3"
    assert describe_exit(-signal.SIGKILL) == "was killed by SIGKILL"
    assert describe_exit(None) == "could not be started"


def _supervise_until(stack: Stack, done: Callable[[], bool], timeout: float = 20) -> list[str]:
    """Run supervision passes until `done()` is true; the messages of the events seen."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while not done():
        seen += [e.message for e in stack.supervise_once(ping=lambda url: True)]
        assert time.monotonic() < deadline, seen
        time.sleep(0.02)
    return seen


def _stack_of(tmp_path: Path, *children: Child, servers: list[tuple[Infra, DyingServer]] | None = None) -> Stack:
    stack = Stack(StackConfig(services=[], data_dir=tmp_path / "data", backoff=Backoff(initial=0.05, cap=0.2)))
    for child in children:
        child.restarts = Restarts(stack.config.backoff)
        stack.children.append(child)
    for infra, server in servers or []:
        stack.servers.append((infra, server))
        stack.server_restarts[infra.name] = Restarts(stack.config.backoff)
        stack.server_started[infra.name] = time.monotonic()
        stack.urls[infra.name] = "nats://127.0.0.1:1"
    return stack


def test_a_killed_service_is_restarted_and_the_others_keep_running(tmp_path: Path) -> None:
    code = "import time; print('up', flush=True); time.sleep(60)"
    victim, bystander = _child(tmp_path, "victim", code), _child(tmp_path, "bystander", code)
    stack = _stack_of(tmp_path, victim, bystander)
    for child in stack.children:
        child.start()
        _wait_for_log(child, "up")
    first, other = victim.pid, bystander.pid
    assert first is not None
    try:
        os.kill(first, signal.SIGKILL)
        seen = _supervise_until(stack, lambda: victim.restarts.count == 1 and victim.healthy_after is not None)
        assert seen == [
            "victim was killed by SIGKILL; restarting in 0.05 s",
            f"victim restarted (pid {victim.pid}, restart 1)",
            seen[-1],
        ]
        assert seen[-1].startswith("victim answers again")
        assert not pid_alive(first), "reaped"
        assert victim.running
        assert victim.pid != first
        assert (bystander.pid, bystander.running, bystander.restarts.count) == (other, True, 0)
        state = read_state(stack.config.data_dir)
        assert state is not None
        entry = next(e for e in state["services"] if e["name"] == "victim")
        assert (entry["pid"], entry["restarts"], entry["lastExit"]) == (victim.pid, 1, -signal.SIGKILL)
        _wait_for_log(victim, "up")
        log = victim.log_path.read_text()
        assert log.count("edgeplane up: starting victim") == 2, "appended, not truncated"
        assert "restart 1, after it killed by SIGKILL" in log
    finally:
        stop_children(stack.children, grace=5)


def test_a_crash_loop_is_retried_at_the_cap_with_its_log_shown_once(tmp_path: Path) -> None:
    crasher = _child(tmp_path, "crasher", "print('config broken', flush=True); raise SystemExit(3)")
    stack = _stack_of(tmp_path, crasher)
    crasher.start()
    events = []
    deadline = time.monotonic() + 30
    while crasher.restarts.count < 4:
        events += stack.supervise_once(ping=lambda url: True)
        assert time.monotonic() < deadline, events
        time.sleep(0.02)
    failures = [e for e in events if not e.ok]
    assert [e.message for e in failures[:4]] == [
        "crasher exited with code 3; restarting in 0.05 s",
        "crasher exited with code 3 (2 in a row); restarting in 0.1 s",
        "crasher exited with code 3 (3 in a row); restarting in 0.2 s",
        "crasher exited with code 3 (4 in a row); restarting in 0.2 s",
    ]
    assert "config broken" in failures[0].log
    assert all(e.log == "" for e in failures[1:])
    assert crasher.log_path.read_text().count("config broken") >= 4


class DyingServer:
    """A server stand-in that can die, and refuse to start a number of times."""

    def __init__(self) -> None:
        self.exit: int | None = None
        self.refusals = 0
        self.starts = 0

    @property
    def url(self) -> str:
        return "nats://127.0.0.1:1"

    @property
    def pid(self) -> int | None:
        return 1000 + self.starts

    def poll(self) -> int | None:
        return self.exit

    def start(self) -> None:
        if self.refusals:
            self.refusals -= 1
            raise OSError("port taken")
        self.starts += 1
        self.exit = None

    def stop(self) -> None:
        pass


def test_a_dead_server_is_restarted_with_backoff_while_services_keep_running(tmp_path: Path) -> None:
    server = DyingServer()
    service = _child(tmp_path, "svc", "import time; print('up', flush=True); time.sleep(60)")
    stack = _stack_of(tmp_path, service, servers=[(NATS, server)])
    service.start()
    pid = service.pid
    try:
        server.exit, server.refusals = -signal.SIGKILL, 1
        seen = _supervise_until(stack, lambda: server.starts == 1)
        assert seen == [
            "NATS was killed by SIGKILL; restarting in 0.05 s",
            "NATS could not be started (port taken); next try in 0.1 s",
            "NATS restarted (pid 1001, restart 2)",
        ]
        assert (service.pid, service.running) == (pid, True)
        assert [(r.name, r.status) for r in stack.rows()] == [("nats", "embedded"), ("svc", "starting")]
    finally:
        stop_children(stack.children, grace=5)
