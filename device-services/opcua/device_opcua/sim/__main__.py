"""`python -m device_opcua.sim [--config FILE] [--host 127.0.0.1] [--port 4840] [--tick-interval S]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from device_opcua.sim.config import SimConfig, SimConfigError, load_config
from device_opcua.sim.server import OpcuaSimulator, SimulatorError
from edgeplane_sdk.simulator import run_simulator, simulator_parser

DEMO_CONFIG = Path(__file__).resolve().parents[1] / "res" / "sim" / "demo-line.yaml"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = simulator_parser(
        "python -m device_opcua.sim",
        "OPC UA server simulator: serves the objects, variables and methods declared in a YAML file.",
        config=DEMO_CONFIG,
        config_help="the demo line",
        port=4840,
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    async def serve(config: SimConfig) -> None:
        await OpcuaSimulator(config, args.host, args.port, tick_interval=args.tick_interval).serve_forever()

    return run_simulator(
        "opcua-sim",
        args,
        load=load_config,
        serve=serve,
        config_errors=(SimConfigError,),
        serve_errors=(SimulatorError,),
    )


if __name__ == "__main__":
    sys.exit(main())
