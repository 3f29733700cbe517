"""The `edgeplane` CLI surface, in process (the end-to-end runs are in tests/integration/test_launcher.py)."""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeplane import cli
from edgeplane.cli import app
from edgeplane.services import SERVICES, Service
from edgeplane.supervisor import Readiness, readiness
from edgeplane_common.embedded import free_port

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_stack_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("EDGEPLANE_NATS__URL", "EDGEPLANE_REDIS__URL", "EDGEPLANE_PORT_OFFSET"):
        monkeypatch.delenv(name, raising=False)


def test_version() -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0
    assert result.output.startswith("edgeplane 0.")


def test_unknown_service_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["up", "--data-dir", str(tmp_path), "--only", "nope"])
    assert result.exit_code == 2
    assert "unknown service 'nope'" in result.output


def test_busy_port_exits_2_before_starting_anything(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        busy = sock.getsockname()[1]
        result = runner.invoke(
            app,
            ["up", "--data-dir", str(tmp_path), "--nats-port", str(busy), "--redis-port", str(free_port()),
             f"--port-offset={free_port() - SERVICES[0].port}"],
        )  # fmt: skip
    assert result.exit_code == 2
    assert f"port {busy} (NATS) is already in use" in result.output
    assert "nothing was started" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert list(tmp_path.iterdir()) == []


def test_status_reports_down_services_with_exit_1(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["status", "--data-dir", str(tmp_path), f"--port-offset={free_port() - SERVICES[0].port}",
         "--nats-url", f"nats://127.0.0.1:{free_port()}", "--redis-url", f"redis://127.0.0.1:{free_port()}/0"],
    )  # fmt: skip
    assert result.exit_code == 1
    for name in ["nats", "redis", *(s.name for s in SERVICES)]:
        assert name in result.output
    assert "down" in result.output


DOWN_BODY = {
    "apiVersion": "v3",
    "serviceName": "core-data",
    "status": "down",
    "checks": {
        "start-up": {"status": "up", "message": "up"},
        "Redis at redis:6379/0": {"status": "down", "message": "ConnectionError: connection refused"},
        "NATS": {"status": "up", "message": "up"},
    },
}


@contextmanager
def fake_service(routes: dict[str, tuple[int, object]]) -> Iterator[Service]:
    """A service on a free loopback port answering GET `path` with (status, JSON body); anything else 404."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = routes.get(self.path, (404, {"message": "no route"}))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield dataclasses.replace(SERVICES[0], port=server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def test_readiness_is_health_and_names_what_is_down() -> None:
    with fake_service({"/api/v3/health": (200, {"status": "up"}), "/api/v3/ping": (200, {})}) as service:
        assert readiness(service) == Readiness(True, "healthy")
    # Alive (ping answers) but not ready: each check that is down, with its message.
    with fake_service({"/api/v3/health": (503, DOWN_BODY), "/api/v3/ping": (200, {})}) as service:
        assert readiness(service) == Readiness(
            False, "down (Redis at redis:6379/0: ConnectionError: connection refused)"
        )
    with fake_service({"/api/v3/health": (500, "oops")}) as service:
        assert readiness(service) == Readiness(False, "down (/api/v3/health answered HTTP 500)")


def test_readiness_falls_back_to_ping_without_a_health_route() -> None:
    with fake_service({"/api/v3/ping": (200, {"apiVersion": "v3"})}) as service:
        assert readiness(service) == Readiness(True, "alive (ping; no /api/v3/health)")
    with fake_service({}) as service:
        assert readiness(service) == Readiness(False, "down (ping fails)")
    unreachable = dataclasses.replace(SERVICES[0], port=free_port())
    assert readiness(unreachable) == Readiness(False, "down (not answering: ConnectError)")
    sim = next(s for s in SERVICES if s.health == "tcp")
    assert readiness(dataclasses.replace(sim, port=free_port())) == Readiness(False, "down (no connection)")


def test_status_shows_the_checks_that_are_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.out, "width", 300)  # one line per row, whatever the terminal
    with fake_service({"/api/v3/health": (503, DOWN_BODY), "/api/v3/ping": (200, {})}) as service:
        result = runner.invoke(
            app,
            ["status", "--data-dir", str(tmp_path), "--only", service.name,
             f"--port-offset={service.port - SERVICES[0].port}",
             "--nats-url", f"nats://127.0.0.1:{free_port()}", "--redis-url", f"redis://127.0.0.1:{free_port()}/0"],
        )  # fmt: skip
    assert result.exit_code == 1
    assert "down (Redis at redis:6379/0: ConnectionError: connection refused)" in result.output
