"""scripts/taf.py (`make taf`): refuses busy ports, prints the runner's summary, always stops the stack."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from edgeplane.services import Service, by_name
from tests.support.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]


taf = load_script("taf", "taf_script")


@pytest.fixture
def runner(tmp_path: Path) -> Path:
    """A stand-in for edgex-taf: prints summary lines among others and fails with 3."""
    path = tmp_path / "edgex-taf"
    path.write_text(
        '#!/bin/sh\necho noise\necho "core-data: passed 1 / total 2 (failed 1, skipped 0) [$*]"\n'
        'echo "overall: passed 1 / total 2"\nexit 3\n'
    )
    path.chmod(0o755)
    return path


@pytest.fixture
def held_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _service_on(port: int) -> Service:
    base = by_name("core-data")
    return Service(**{**base.__dict__, "port": port})


def test_busy_port_exits_2_and_starts_nothing(
    monkeypatch: pytest.MonkeyPatch, runner: Path, held_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(taf, "services_under_test", lambda: [_service_on(held_port)])

    def must_not_start(*_: object) -> None:
        raise AssertionError("the stack was started")

    monkeypatch.setattr(taf, "start_stack", must_not_start)
    assert taf.main(["--taf", str(runner), "core-data"]) == 2
    assert f"port {held_port} (core-data) is busy" in capsys.readouterr().out


def test_usage_errors_exit_2(runner: Path, tmp_path: Path) -> None:
    assert taf.main(["--taf", str(runner), "core-keeper"]) == 2
    assert taf.main(["--taf", str(tmp_path / "missing")]) == 2


def test_summary_printed_and_stack_stopped_when_the_run_fails(
    monkeypatch: pytest.MonkeyPatch, runner: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started: list[subprocess.Popen[bytes]] = []

    def fake_stack(services: Sequence[Service], data_dir: Path) -> subprocess.Popen[bytes]:
        assert data_dir.is_dir()
        proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
        started.append(proc)
        return proc

    with socket.socket() as sock:  # a port nobody listens on: the service counts as free
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    monkeypatch.setattr(taf, "services_under_test", lambda: [_service_on(free)])
    monkeypatch.setattr(taf, "start_stack", fake_stack)
    monkeypatch.setattr(taf, "wait_ready", lambda launcher, services: True)
    assert taf.main(["--taf", str(runner)]) == 3
    out = capsys.readouterr().out
    assert "core-data: passed 1 / total 2 (failed 1, skipped 0) [core-metadata core-data]" in out
    assert "overall: passed 1 / total 2" in out
    assert "noise" not in out
    assert started[0].poll() is not None, "the stack was stopped"


def test_a_port_taken_between_check_and_start_is_retried(
    monkeypatch: pytest.MonkeyPatch, runner: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    starts: list[subprocess.Popen[bytes]] = []

    def flaky_stack(services: Sequence[Service], data_dir: Path) -> subprocess.Popen[bytes]:
        # the first launcher finds its Redis port taken (exit 2, as `edgeplane up` does); the second runs
        proc = subprocess.Popen(["sh", "-c", "exit 2"] if not starts else ["sleep", "60"], start_new_session=True)
        if not starts:
            proc.wait()
        starts.append(proc)
        return proc

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    monkeypatch.setattr(taf, "services_under_test", lambda: [_service_on(free)])
    monkeypatch.setattr(taf, "start_stack", flaky_stack)
    monkeypatch.setattr(taf, "wait_ready", lambda launcher, services: launcher.poll() is None)
    assert taf.main(["--taf", str(runner), "core-data"]) == 3
    assert len(starts) == 2
    assert "starting again" in capsys.readouterr().out
    assert starts[1].poll() is not None, "the second stack was stopped"


def test_the_stack_runs_device_virtual_without_its_own_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEPLANE_PORT_OFFSET", "100")
    env = taf.clean_env()
    assert "device-virtual" in [s.name for s in taf.services_under_test()]
    assert env["DEVICE_VIRTUAL_PROVISION"] == "false"  # no extra devices in the counts, no autoEvents
    assert "EDGEPLANE_PORT_OFFSET" not in env
