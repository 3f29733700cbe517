"""Device profiles shared by the tests of profile logic (the kernel's resolution and checks, core-command's listing)."""

from __future__ import annotations

from typing import Any

from edgeplane_common.models import DeviceProfile


def thermo() -> DeviceProfile:
    def res(name: str, vt: str, rw: str, **props: Any) -> dict[str, Any]:
        hidden = props.pop("hidden", False)
        return {"name": name, "isHidden": hidden, "properties": {"valueType": vt, "readWrite": rw, **props}}

    return DeviceProfile.model_validate(
        {
            "name": "Thermo",
            "deviceResources": [
                res("Temperature", "Float32", "R", minimum=-40, maximum=125),
                res("Setpoint", "Int16", "RW", minimum=5, maximum=30),
                res("Mode", "Uint8", "RW", maximum=2),
                res("Label", "String", "W"),
                res("Service", "Bool", "RW", hidden=True),
                res("Offset", "Int16", "RW", offset=100),
                res("Gains", "Float64Array", "RW"),
            ],
            "deviceCommands": [
                {
                    "name": "Climate",
                    "readWrite": "R",
                    "resourceOperations": [{"deviceResource": "Temperature"}, {"deviceResource": "Setpoint"}],
                },
                {
                    "name": "Settings",
                    "readWrite": "RW",
                    "resourceOperations": [{"deviceResource": "Setpoint"}, {"deviceResource": "Mode"}],
                },
                {
                    "name": "ModeText",
                    "readWrite": "RW",
                    "resourceOperations": [
                        {"deviceResource": "Mode", "mappings": {"0": "Off", "1": "Heat", "2": "Cool"}}
                    ],
                },
                {
                    "name": "Diagnostics",
                    "readWrite": "R",
                    "isHidden": True,
                    "resourceOperations": [{"deviceResource": "Temperature"}],
                },
            ],
        }
    )
