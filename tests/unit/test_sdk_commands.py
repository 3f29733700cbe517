"""The device SDK's command path on the kernel: the same resolution, state, direction and write-value checks as
core-command (`edgeplane_common.edgex`), so both answer a bad command alike; and the ds-* switches."""

from __future__ import annotations

from typing import Any

import pytest

from edgeplane_common.edgex.profiles import check_settings, resolve
from edgeplane_common.errors import ContractInvalid, EdgeError, Locked, NotAllowed
from edgeplane_common.models import AdminState, Device, DeviceProfile, OperatingState
from edgeplane_sdk.commands import CommandExecutor, HealthTracker
from edgeplane_sdk.driver import CommandRequest, CommandValue, ProtocolDriver
from edgeplane_sdk.registry import Registry
from edgeplane_sdk.runtime import flag
from tests.support.profiles import thermo


class Recorder(ProtocolDriver):
    def __init__(self) -> None:
        self.writes: list[dict[str, Any]] = []

    async def handle_read_commands(
        self, device: Device, protocols: dict[str, dict[str, Any]], requests: list[CommandRequest]
    ) -> list[CommandValue]:
        return [CommandValue(r.resource_name, r.value_type, 1) for r in requests]

    async def handle_write_commands(
        self,
        device: Device,
        protocols: dict[str, dict[str, Any]],
        requests: list[CommandRequest],
        values: list[CommandValue],
    ) -> None:
        self.writes.append({v.resource_name: v.value for v in values})


def executor(profile: DeviceProfile, **state: Any) -> tuple[CommandExecutor, Recorder]:
    registry = Registry()
    registry.put_profile(profile)
    registry.devices["room-1"] = Device(name="room-1", service_name="svc", profile_name=profile.name, **state)

    async def set_state(name: str, state: OperatingState) -> None:
        return None

    driver = Recorder()
    return CommandExecutor(registry, driver, HealthTracker(set_state, 3), 256), driver


async def test_writes_reach_the_driver_as_raw_values() -> None:
    ex, driver = executor(thermo())
    await ex.write("room-1", "Offset", {"Offset": "32767"})  # offset 100 reversed
    await ex.write("room-1", "ModeText", {"ModeText": "Cool"})  # one resource: under the command's name, mapped
    await ex.write("room-1", "Settings", {"Mode": "1"})  # a multi-resource command writes what it is given
    assert driver.writes == [{"Offset": 32667}, {"Mode": 2}, {"Mode": 1}]


async def test_resource_operation_defaults_fill_what_is_not_given() -> None:
    profile = DeviceProfile.model_validate(
        {
            "name": "Pump",
            "deviceResources": [
                {"name": "Speed", "properties": {"valueType": "Int16", "readWrite": "RW"}},
                {"name": "Mode", "properties": {"valueType": "Uint8", "readWrite": "RW"}},
            ],
            "deviceCommands": [
                {
                    "name": "Run",
                    "readWrite": "W",
                    "resourceOperations": [
                        {"deviceResource": "Speed", "defaultValue": "20"},
                        {"deviceResource": "Mode"},
                    ],
                }
            ],
        }
    )
    ex, driver = executor(profile)
    await ex.write("room-1", "Run", {"Mode": "1"})
    assert driver.writes == [{"Speed": 20, "Mode": 1}]


@pytest.mark.parametrize(
    ("command", "settings"),
    [
        ("Setpoint", {"Setpoint": "31"}),
        ("Setpoint", {"Setpoint": "warm"}),
        ("ModeText", {"Mode": "Turbo"}),
        ("Offset", {"Offset": "-32768"}),
        ("Gains", {"Gains": "[1, x]"}),
    ],
)
async def test_a_bad_value_is_refused_with_the_same_message_as_core_command(
    command: str, settings: dict[str, Any]
) -> None:
    with pytest.raises(ContractInvalid) as core_command:
        check_settings("room-1", resolve(thermo(), command), settings)
    ex, driver = executor(thermo())
    with pytest.raises(ContractInvalid) as sdk:
        await ex.write("room-1", command, settings)
    assert sdk.value.message == core_command.value.message
    assert driver.writes == []


async def test_a_transform_that_cannot_be_reversed_is_a_server_error_not_bad_input() -> None:
    profile = DeviceProfile.model_validate(
        {
            "name": "Z",
            "deviceResources": [{"name": "Z", "properties": {"valueType": "Int16", "readWrite": "RW", "scale": 0}}],
        }
    )
    ex, _ = executor(profile)
    with pytest.raises(EdgeError) as info:
        await ex.write("room-1", "Z", {"Z": "1"})
    assert info.value.status_code == 500


async def test_direction_and_state_answer_as_core_command_does() -> None:
    ex, _ = executor(thermo())
    with pytest.raises(NotAllowed, match="device resource 'Temperature' of device 'room-1' is read-only"):
        await ex.write("room-1", "Temperature", {"Temperature": "1"})
    with pytest.raises(NotAllowed, match="device resource 'Label' of device 'room-1' is write-only"):
        await ex.read_json("room-1", "Label")
    locked, _ = executor(thermo(), admin_state=AdminState.LOCKED)
    with pytest.raises(Locked, match=r"device 'room-1' is LOCKED \(adminState\)"):
        await locked.read_json("room-1", "Temperature", allow_down=True)
    down, _ = executor(thermo(), operating_state=OperatingState.DOWN)
    with pytest.raises(Locked, match=r"device 'room-1' is DOWN \(operatingState\)"):
        await down.write("room-1", "Setpoint", {"Setpoint": "20"})
    assert (await down.read_json("room-1", "Temperature", allow_down=True))["readings"][0]["value"]


def test_ds_switches_use_the_kernel_flag_and_keep_their_default_otherwise() -> None:
    assert (flag("true", False), flag(" TRUE ", False)) == (True, True)
    assert (flag("false", True), flag("False", True)) == (False, False)
    assert (flag(None, True), flag(None, False)) == (True, False)
    # Not true or false: the default, as device-sdk-go acts only on a value it recognises.
    assert (flag("yes", False), flag("1", False), flag("maybe", True), flag("0", True)) == (False, False, True, True)
