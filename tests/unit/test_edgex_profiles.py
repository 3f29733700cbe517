"""The kernel's profile logic (`edgeplane_common.edgex.profiles`): how a called name resolves against a profile, and
the checks a write passes before anything is sent (readWrite, valueType, minimum/maximum, transforms, mappings).
Used by core-command before relaying and by the device SDK before executing."""

from __future__ import annotations

from typing import Any

import pytest

from edgeplane_common.edgex.profiles import check_readable, check_settings, check_writable, resolve, write_value
from edgeplane_common.errors import ContractInvalid, EdgeError, NotAllowed, NotFound
from edgeplane_common.models import DeviceProfile, DeviceResource
from tests.support.profiles import thermo


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


# ------------------------------------------------------------------------ what both callers need of a resolution


def test_resolve_carries_mappings_and_defaults_of_each_resource() -> None:
    p = DeviceProfile.model_validate(
        {
            "name": "Pump",
            "deviceResources": [
                {"name": "Speed", "properties": {"valueType": "Int16", "readWrite": "RW", "defaultValue": "10"}},
                {"name": "Mode", "properties": {"valueType": "Uint8", "readWrite": "RW"}},
            ],
            "deviceCommands": [
                {
                    "name": "Run",
                    "readWrite": "W",
                    "resourceOperations": [
                        {"deviceResource": "Speed", "defaultValue": "20"},
                        {"deviceResource": "Mode", "mappings": {"1": "On"}},
                    ],
                }
            ],
        }
    )
    run = resolve(p, "Run")
    assert run.mappings == ({}, {"1": "On"})
    assert run.defaults == ("20", None)  # the resource operation's default, not the resource's
    speed = resolve(p, "Speed")
    assert (speed.mappings, speed.defaults) == (({},), ("10",))  # called by name: the resource's own default


def test_write_value_gives_the_raw_value_the_driver_writes() -> None:
    p = thermo()
    offset = resolve(p, "Offset")
    assert write_value("room-1", offset.resources[0], offset.mappings[0], "32767") == 32667  # offset 100 reversed
    mode = resolve(p, "ModeText")
    assert write_value("room-1", mode.resources[0], mode.mappings[0], "Cool") == 2  # mapped back first
    assert write_value("room-1", mode.resources[0], mode.mappings[0], 1) == 1


def test_a_profile_whose_transform_cannot_be_reversed_is_not_the_callers_fault() -> None:
    res = DeviceResource.model_validate(
        {"name": "Zero", "properties": {"valueType": "Int16", "readWrite": "RW", "scale": 0}}
    )
    with pytest.raises(EdgeError) as info:
        write_value("room-1", res, {}, "1")
    assert not isinstance(info.value, ContractInvalid)
    assert info.value.status_code == 500
    assert "resource 'Zero' of device 'room-1' cannot be written: " in info.value.message
