"""The `edgeplane` CLI surface, in process (the end-to-end runs are in tests/integration/test_launcher.py)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeplane.cli import app
from edgeplane.services import SERVICES
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
