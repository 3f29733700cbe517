"""The OPC UA simulator's YAML: validated with messages that say where; behaviours as the Modbus simulator's."""

from __future__ import annotations

import pytest

from device_opcua.sim.config import Behaviour, SimConfigError, load_config, parse_config
from tests.support.opcua import DEMO_SIM, EDGEX_SIM


def test_shipped_files_load() -> None:
    demo = load_config(DEMO_SIM)
    assert {o.name for o in demo.objects} == {"Line1", "Types"}
    assert load_config(EDGEX_SIM).namespaces[1] == "http://www.prosysopc.com/OPCUA/SimulationNodes/"


@pytest.mark.parametrize(
    ("doc", "why"),
    [
        ({"objects": [{"name": "O", "variables": [{"name": "V", "type": "Decimal"}]}]}, "not one of"),
        ({"objects": [{"name": "O", "variables": [{"name": "V", "nodeId": "ns=9;i=1"}]}]}, "only ns=0..2"),
        ({"objects": [{"name": "O", "variables": [{"name": "V", "nodeId": "ns=2;x=1"}]}]}, "O.V: nodeId"),
        ({"objects": [{"name": "O", "variables": [{"name": "V", "type": "String", "sine": {}}]}]}, "numeric"),
        ({"objects": [{"name": "O", "variables": [{"name": "V", "ramp": {}, "counter": {}}]}]}, "more than one"),
        ({"security": {"policies": ["Basic999"]}}, "not one of"),
        ({"objects": [{"name": "O", "colour": "red"}]}, "colour"),
    ],
)
def test_bad_files_say_where(doc: dict[str, object], why: str) -> None:
    with pytest.raises(SimConfigError, match=why):
        parse_config(doc)


def test_behaviours() -> None:
    config = parse_config(
        {
            "objects": [
                {
                    "name": "O",
                    "variables": [
                        {"name": "C", "type": "Byte", "counter": {"start": 254, "step": 1}},
                        {"name": "R", "type": "Double", "ramp": {"min": 0, "max": 10, "step": 4}},
                    ],
                }
            ]
        }
    )
    counter, ramp = (Behaviour(v) for v in config.objects[0].variables)
    assert [counter.next(0) for _ in range(3)] == [255, 0, 1]  # wraps like the Byte it is
    assert [ramp.next(0) for _ in range(3)] == [4.0, 8.0, 2.0]
