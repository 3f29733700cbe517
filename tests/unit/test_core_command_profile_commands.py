"""core-command's listing: which commands a device offers (EdgeX's buildCoreCommands shape) and their paths."""

from __future__ import annotations

from core_command.application.profile_commands import command_path, core_commands
from tests.support.profiles import thermo

URL = "http://127.0.0.1:59882"


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
