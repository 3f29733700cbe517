"""`python -m device_opcua.sim [--config FILE] [--host 127.0.0.1] [--port 4840] [--tick-interval S]`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

from device_opcua.sim.config import SimConfig, SimConfigError, load_config
from device_opcua.sim.server import OpcuaSimulator, SimulatorError
from edgeplane_common.logging import configure_logging

DEMO_CONFIG = Path(__file__).resolve().parents[1] / "res" / "sim" / "demo-line.yaml"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m device_opcua.sim",
        description="OPC UA server simulator: serves the objects, variables and methods declared in a YAML file.",
    )
    parser.add_argument("--config", default=str(DEMO_CONFIG), help="simulator YAML file (default: the demo line)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=4840, help="TCP port (default 4840)")
    parser.add_argument("--tick-interval", type=float, help="seconds between value updates (default: from the file)")
    parser.add_argument("--log-level", default=os.environ.get("EDGEPLANE_LOG_LEVEL", "INFO"))
    parser.add_argument("--log-json", action=argparse.BooleanOptionalAction, default=True, help="JSON log lines")
    return parser.parse_args(argv)


async def _serve(config: SimConfig, args: argparse.Namespace) -> None:
    sim = OpcuaSimulator(config, args.host, args.port, tick_interval=args.tick_interval)
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await sim.serve_forever()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.tick_interval is not None and args.tick_interval <= 0:
        print("--tick-interval must be positive", file=sys.stderr)
        return 2
    try:
        config = load_config(args.config)
    except (OSError, SimConfigError) as err:
        print(err, file=sys.stderr)
        return 2
    configure_logging("opcua-sim", args.log_level, json=args.log_json)
    try:
        asyncio.run(_serve(config, args))
    except (OSError, SimulatorError) as err:
        print(err, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
