"""OPC UA server simulator: an asyncua server whose objects, variables, behaviours and methods are declared in
YAML. Run it with `python -m device_opcua.sim --config FILE`; in tests use `OpcuaSimulator` as an async context
manager. The demo configuration is `device_opcua/res/sim/demo-line.yaml`."""

from device_opcua.sim.config import SimConfig, SimConfigError, load_config, parse_config
from device_opcua.sim.server import OpcuaSimulator, SimulatorError

__all__ = ["OpcuaSimulator", "SimConfig", "SimConfigError", "SimulatorError", "load_config", "parse_config"]
