"""The simulators' shared command line (edgeplane_sdk.simulator): exit codes, signals and options."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from pathlib import Path

import pytest

from edgeplane_sdk import simulator
from edgeplane_sdk.simulator import run_simulator, simulator_parser


class BadFile(Exception):
    pass


@pytest.fixture(autouse=True)
def _no_logging_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    # run_simulator configures the process's logging, which would outlive the test.
    monkeypatch.setattr(simulator, "configure_logging", lambda *args, **kwargs: None)


def parse(*argv: str) -> argparse.Namespace:
    parser = simulator_parser("sim", "a test simulator", config=Path("/demo.yaml"), config_help="the demo", port=1502)
    return parser.parse_args(list(argv))


def test_defaults_and_own_options() -> None:
    parser = simulator_parser("sim", "d", config=Path("/demo.yaml"), config_help="the demo", port=1502)
    parser.add_argument("--framer", default="socket")
    args = parser.parse_args(["--port", "0", "--framer", "rtu", "--tick-interval", "0.5"])
    assert (args.config, args.host, args.port, args.framer, args.tick_interval) == (
        "/demo.yaml",
        "127.0.0.1",
        0,
        "rtu",
        0.5,
    )


@pytest.mark.parametrize(
    ("env", "expected"), [(None, True), ("false", False), ("0", False), ("yes", True), ("junk", True)]
)
def test_log_json_defaults_to_the_services_variable(
    monkeypatch: pytest.MonkeyPatch, env: str | None, expected: bool
) -> None:
    if env is None:
        monkeypatch.delenv("EDGEPLANE_LOG_JSON", raising=False)
    else:
        monkeypatch.setenv("EDGEPLANE_LOG_JSON", env)
    assert parse().log_json is expected
    assert parse("--no-log-json").log_json is False


def test_a_tick_that_is_not_positive_exits_2_before_loading(capsys: pytest.CaptureFixture[str]) -> None:
    loaded: list[str] = []

    def load(path: str) -> str:
        loaded.append(path)
        return path

    async def serve(config: str) -> None:
        raise AssertionError("must not serve")

    args = parse("--tick-interval", "0")
    assert run_simulator("sim", args, load=load, serve=serve, config_errors=()) == 2
    assert loaded == []
    assert "--tick-interval must be positive" in capsys.readouterr().err


def test_a_bad_file_exits_2_with_its_message(capsys: pytest.CaptureFixture[str]) -> None:
    def load(path: str) -> str:
        raise BadFile(f"{path}: units[0].address: must be >= 0")

    async def serve(config: str) -> None:
        raise AssertionError("must not serve")

    assert run_simulator("sim", parse(), load=load, serve=serve, config_errors=(BadFile,)) == 2
    assert "/demo.yaml: units[0].address: must be >= 0" in capsys.readouterr().err


@pytest.mark.parametrize("error", [OSError("[Errno 98] address already in use"), BadFile("no such endpoint")])
def test_a_failure_to_serve_exits_1_with_its_message(error: Exception, capsys: pytest.CaptureFixture[str]) -> None:
    async def serve(config: str) -> None:
        raise error

    code = run_simulator("sim", parse(), load=str, serve=serve, config_errors=(), serve_errors=(BadFile,))
    assert code == 1
    assert str(error) in capsys.readouterr().err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_serving_and_exits_0(sig: signal.Signals) -> None:
    served: list[str] = []

    async def serve(config: str) -> None:
        served.append(config)  # called inside the loop, with what load returned
        os.kill(os.getpid(), sig)
        await asyncio.sleep(60)

    assert run_simulator("sim", parse(), load=str.upper, serve=serve, config_errors=()) == 0
    assert served == ["/DEMO.YAML"]
