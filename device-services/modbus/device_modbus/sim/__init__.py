"""Modbus PLC simulator: a pymodbus TCP server whose points are declared in YAML with value behaviours.

Run it with `python -m device_modbus.sim --config FILE`; in tests use `ModbusSimulator` as an async
context manager. The demo configuration is `device_modbus/res/sim/demo-plc.yaml`.
"""

from device_modbus.sim.config import (
    BitPoint,
    PointType,
    RegisterPoint,
    SimConfig,
    SimConfigError,
    Table,
    Unit,
    Value,
    load_config,
    parse_config,
)
from device_modbus.sim.server import ModbusSimulator, SimulatorError

__all__ = [
    "BitPoint",
    "ModbusSimulator",
    "PointType",
    "RegisterPoint",
    "SimConfig",
    "SimConfigError",
    "SimulatorError",
    "Table",
    "Unit",
    "Value",
    "load_config",
    "parse_config",
]
