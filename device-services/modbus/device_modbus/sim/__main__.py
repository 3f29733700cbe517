"""`python -m device_modbus.sim --config FILE [--host 127.0.0.1] [--port 5020] [--framer socket|rtu]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from device_modbus.sim.config import SimConfig, SimConfigError, load_config
from device_modbus.sim.server import ModbusSimulator
from edgeplane_sdk.simulator import run_simulator, simulator_parser

DEMO_CONFIG = Path(__file__).resolve().parents[1] / "res" / "sim" / "demo-plc.yaml"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = simulator_parser(
        "python -m device_modbus.sim",
        "Modbus PLC simulator: serves the units, registers and coils declared in a YAML file.",
        config=DEMO_CONFIG,
        config_help="the demo PLC in res/sim/",
        port=5020,
        port_help="; 0 picks a free one",
    )
    parser.add_argument(
        "--framer",
        choices=("socket", "rtu"),
        default="socket",
        help="socket: Modbus TCP (MBAP header); rtu: RTU frames with CRC over TCP (default socket)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    async def serve(config: SimConfig) -> None:
        sim = ModbusSimulator(config, args.host, args.port, framer=args.framer, tick_interval=args.tick_interval)
        await sim.serve_forever()

    return run_simulator("modbus-sim", args, load=load_config, serve=serve, config_errors=(SimConfigError,))


if __name__ == "__main__":
    sys.exit(main())
