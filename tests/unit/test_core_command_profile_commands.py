"""core-command's pure profile logic: which commands a device offers (EdgeX's buildCoreCommands shape) and the
checks a write passes before anything is sent (readWrite, valueType, minimum/maximum, transforms, mappings)."""

from __future__ import annotations

from typing import Any

import pytest

from core_command.application.profile_commands import (
    check_readable,
    check_settings,
    check_writable,
    command_path,
    core_commands,
    resolve,
)
from edgeplane_common.errors import ContractInvalid, NotAllowed, NotFound
from edgeplane_common.models import DeviceProfile

URL = "http://127.0.0.1:59882"


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


# ------------------------------------------------------------------------------------------------- listing


def test_core_commands_are_device_commands_then_visible_resources_with_parameters() -> None:
    commands = {c.name: c.to_json_dict() for c in core_commands("room-1", thermo(), URL)}
    # Hidden command (Diagnostics) and hidden resource (Service) are not offered.
    assert list(commands) == [
        "Climate",
        "Settings",
        "ModeText",
        "Temperature",
        "Setpoint",
        "Mode",
        "Label",
        "Offset",
        "Gains",
    ]
    assert commands["Climate"] == {
        "name": "Climate",
        "get": True,
        "path": "/api/v3/device/name/room-1/Climate",
        "url": URL,
        "parameters": [
            {"resourceName": "Temperature", "valueType": "Float32"},
            {"resourceName": "Setpoint", "valueType": "Int16"},
        ],
    }
    # EdgeX omits a false get/set (omitempty).
    assert commands["Label"] == {
        "name": "Label",
        "set": True,
        "path": "/api/v3/device/name/room-1/Label",
        "url": URL,
        "parameters": [{"resourceName": "Label", "valueType": "String"}],
    }
    assert commands["Settings"]["get"] is True
    assert commands["Settings"]["set"] is True
    assert commands["ModeText"]["parameters"] == [{"resourceName": "Mode", "valueType": "Uint8"}]


def test_command_path_escapes_names() -> None:
    assert command_path("plc 1", "a/b") == "/api/v3/device/name/plc%201/a%2Fb"


def test_resolve_prefers_device_commands_then_resources() -> None:
    p = thermo()
    climate = resolve(p, "Climate")
    assert [r.name for r in climate.resources] == ["Temperature", "Setpoint"]
    assert (climate.readable, climate.writable, climate.kind) == (True, False, "device command")
    temp = resolve(p, "Temperature")
    assert (temp.readable, temp.writable, temp.kind) == (True, False, "device resource")
    # Hidden ones can still be called, as in EdgeX: hiding only keeps them out of the listing.
    assert resolve(p, "Diagnostics").hidden
    assert resolve(p, "Service").hidden
    with pytest.raises(NotFound, match="profile 'Thermo' has no device command or device resource named 'Nope'"):
        resolve(p, "Nope")


def test_direction_checks_answer_405_with_what_was_refused() -> None:
    p = thermo()
    with pytest.raises(NotAllowed, match="device resource 'Temperature' of device 'room-1' is read-only"):
        check_writable("room-1", resolve(p, "Temperature"))
    with pytest.raises(NotAllowed, match="device command 'Climate' of device 'room-1' is read-only"):
        check_writable("room-1", resolve(p, "Climate"))
    with pytest.raises(NotAllowed, match="device resource 'Label' of device 'room-1' is write-only"):
        check_readable("room-1", resolve(p, "Label"))
    check_readable("room-1", resolve(p, "Settings"))
    check_writable("room-1", resolve(p, "Settings"))


# --------------------------------------------------------------------------------------------- value check


@pytest.mark.parametrize(
    ("command", "settings"),
    [
        ("Setpoint", {"Setpoint": "21"}),
        ("Setpoint", {"Setpoint": 21}),  # a JSON number is fine too
        ("Setpoint", {"Setpoint": "5"}),  # limits are inclusive
        ("Setpoint", {"Setpoint": "30"}),
        ("Settings", {"Setpoint": "22", "Mode": "1"}),
        ("Settings", {"Mode": "0"}),  # a multi-resource command writes only what it is given
        ("ModeText", {"Mode": "Cool"}),  # mapped text is turned back into the raw value first
        ("ModeText", {"Mode": "2"}),
        ("ModeText", {"ModeText": "Heat"}),  # one resource: its value may come under the command's name
        ("Label", {"Label": "kitchen"}),
        ("Offset", {"Offset": "32767"}),  # raw value 32667 fits
        ("Gains", {"Gains": "[1.5, 2e-3]"}),
        ("Service", {"Service": "true"}),
    ],
)
def test_values_that_fit_the_profile_pass(command: str, settings: dict[str, Any]) -> None:
    check_settings("room-1", resolve(thermo(), command), settings)


@pytest.mark.parametrize(
    ("command", "settings", "message"),
    [
        (
            "Setpoint",
            {"Setpoint": "31"},
            "invalid value for resource 'Setpoint' of device 'room-1': value 31 is above the maximum 30",
        ),
        ("Setpoint", {"Setpoint": 4}, "value 4 is below the minimum 5"),
        ("Setpoint", {"Setpoint": "warm"}, "invalid Int16 value 'warm'"),
        ("Setpoint", {"Setpoint": "40000"}, "Int16"),
        ("Setpoint", {"Setpoint": "2.5"}, "Int16"),
        ("Setpoint", {"Setpoint": None}, "missing Int16 value"),
        (
            "Settings",
            {"Setpoint": "20", "Mode": "3"},
            "resource 'Mode' of device 'room-1': value 3 is above the maximum 2",
        ),
        ("ModeText", {"Mode": "Turbo"}, "(allowed: Off, Heat, Cool)"),
        ("Offset", {"Offset": "-32768"}, "outside Int16"),  # the raw value (-32868) would not fit the register
        ("Gains", {"Gains": "[1, x]"}, "element 1"),
        (
            "Settings",
            {"Setpont": "20"},
            "device command 'Settings' of device 'room-1' has no resource 'Setpont'; it writes Setpoint, Mode",
        ),
        ("Setpoint", {"Settings": "20"}, "has no resource 'Settings'"),
        ("Settings", {}, 'no values given for device command \'Settings\'; send e.g. {"Setpoint": "<value>"}'),
        ("Settings", ["20"], "the request body must be a JSON object of resource names to values"),
        ("Settings", "20", "the request body must be a JSON object"),
    ],
)
def test_values_that_do_not_fit_answer_400_naming_resource_and_reason(
    command: str, settings: Any, message: str
) -> None:
    with pytest.raises(ContractInvalid) as info:
        check_settings("room-1", resolve(thermo(), command), settings)
    assert message in info.value.message
    assert info.value.status_code == 400
