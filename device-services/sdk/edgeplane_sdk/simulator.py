"""The command line the device simulators share (`python -m device_modbus.sim`, `python -m device_opcua.sim`).

Each simulator adds its own options to `simulator_parser` and hands `run_simulator` how to load its file and
serve it; the exit codes, signal handling and logging are then the same for all: 2 for bad options or a bad
file (told before anything is served), 1 when serving fails (a port in use), 0 after SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from pydantic import TypeAdapter, ValidationError

from edgeplane_common.logging import configure_logging

C = TypeVar("C")


def _env_flag(name: str, default: bool) -> bool:
    # Read as the services read their settings (pydantic's bool: 1/0, true/false, yes/no, on/off).
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return TypeAdapter(bool).validate_python(value.strip())
    except ValidationError:
        return default


def simulator_parser(
    prog: str, description: str, *, config: Path, config_help: str, port: int, port_help: str = ""
) -> argparse.ArgumentParser:
    """--config, --host, --port, --tick-interval, --log-level and --log-json; the caller adds its own."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", default=str(config), help=f"simulator YAML file (default: {config_help})")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=port, help=f"TCP port (default {port}{port_help})")
    parser.add_argument("--tick-interval", type=float, help="seconds between value updates (default: from the file)")
    parser.add_argument("--log-level", default=os.environ.get("EDGEPLANE_LOG_LEVEL", "INFO"))
    parser.add_argument(
        "--log-json",
        action=argparse.BooleanOptionalAction,
        default=_env_flag("EDGEPLANE_LOG_JSON", True),
        help="JSON log lines (default: $EDGEPLANE_LOG_JSON, else true)",
    )
    return parser


async def _serve_until_signal(serve: Callable[[], Awaitable[None]]) -> None:
    # SIGINT and SIGTERM cancel the serving task: the simulator closes its sockets and the process exits 0.
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await serve()


def run_simulator(
    name: str,
    args: argparse.Namespace,
    *,
    load: Callable[[str], C],
    serve: Callable[[C], Awaitable[None]],
    config_errors: tuple[type[Exception], ...],
    serve_errors: tuple[type[Exception], ...] = (),
) -> int:
    """Load args.config with `load` (before the loop: file IO blocks), then run `serve(config)` until a signal.

    `serve` is called inside the event loop, so the simulator may create its asyncio objects there.
    """
    bad_file: tuple[type[Exception], ...] = (OSError, *config_errors)
    failed: tuple[type[Exception], ...] = (OSError, *serve_errors)
    if args.tick_interval is not None and args.tick_interval <= 0:
        print("--tick-interval must be positive", file=sys.stderr)
        return 2
    try:
        config = load(args.config)
    except bad_file as err:
        print(err, file=sys.stderr)
        return 2
    configure_logging(name, args.log_level, json=args.log_json)
    try:
        asyncio.run(_serve_until_signal(lambda: serve(config)))
    except failed as err:
        print(err, file=sys.stderr)
        return 1
    return 0
