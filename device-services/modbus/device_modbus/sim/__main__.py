"""`python -m device_modbus.sim --config FILE [--host 127.0.0.1] [--port 5020] [--framer socket|rtu]`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from device_modbus.sim.config import SimConfig, SimConfigError, load_config
from device_modbus.sim.server import ModbusSimulator
from edgeplane_common.logging import configure_logging

DEMO_CONFIG = Path(__file__).resolve().parents[1] / "res" / "sim" / "demo-plc.yaml"


def _env_flag(name: str, default: bool) -> bool:
    # Read as the services read their settings (pydantic's bool: 1/0, true/false, yes/no, on/off).
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return TypeAdapter(bool).validate_python(value.strip())
    except ValidationError:
        return default


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m device_modbus.sim",
        description="Modbus PLC simulator: serves the units, registers and coils declared in a YAML file.",
    )
    parser.add_argument(
        "--config", default=str(DEMO_CONFIG), help="simulator YAML file (default: the demo PLC in res/sim/)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5020, help="TCP port (default 5020; 0 picks a free one)")
    parser.add_argument(
        "--framer",
        choices=("socket", "rtu"),
        default="socket",
        help="socket: Modbus TCP (MBAP header); rtu: RTU frames with CRC over TCP (default socket)",
    )
    parser.add_argument("--tick-interval", type=float, help="seconds between value updates (default: from the file)")
    parser.add_argument("--log-level", default=os.environ.get("EDGEPLANE_LOG_LEVEL", "INFO"))
    parser.add_argument(
        "--log-json",
        action=argparse.BooleanOptionalAction,
        default=_env_flag("EDGEPLANE_LOG_JSON", True),
        help="JSON log lines (default: $EDGEPLANE_LOG_JSON, else true)",
    )
    return parser.parse_args(argv)


async def _serve(config: SimConfig, args: argparse.Namespace) -> None:
    sim = ModbusSimulator(config, args.host, args.port, framer=args.framer, tick_interval=args.tick_interval)
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
        config = load_config(args.config)  # before the loop: file IO blocks
    except (OSError, SimConfigError) as err:
        print(err, file=sys.stderr)
        return 2
    configure_logging("modbus-sim", args.log_level, json=args.log_json)
    try:
        asyncio.run(_serve(config, args))
    except OSError as err:
        print(err, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
