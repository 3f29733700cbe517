"""EdgeX JSON shapes: round trips, any key casing on input, valueType normalisation, unknown keys."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from edgeplane_common.bus.envelope import MessageEnvelope
from edgeplane_common.durations import parse_duration
from edgeplane_common.models import (
    AdminState,
    Device,
    DeviceProfile,
    Event,
    OperatingState,
    Reading,
    ReadWrite,
    ValueType,
    describe_errors,
)
from edgeplane_common.models.responses import AddDeviceRequest, MultiDevicesResponse

PROFILE_JSON = {
    "name": "Boiler",
    "manufacturer": "Acme",
    "model": "B-1",
    "labels": ["heat"],
    "deviceResources": [
        {
            "name": "Temperature",
            "isHidden": False,
            "properties": {
                "valueType": "Float32",
                "readWrite": "R",
                "units": "C",
                "scale": 0.1,
                "minimum": -40,
                "maximum": 200,
                "mask": 255,
                "shift": 2,
                "base": 2,
                "offset": 1.5,
            },
            "attributes": {"primaryTable": "INPUT_REGISTERS", "startingAddress": 3},
        },
        {"name": "Image", "properties": {"valueType": "Binary", "readWrite": "R", "mediaType": "image/png"}},
    ],
    "deviceCommands": [
        {
            "name": "All",
            "readWrite": "R",
            "isHidden": False,
            "resourceOperations": [{"deviceResource": "Temperature", "mappings": {"1": "on"}}],
        }
    ],
}


def test_profile_round_trips_through_edgex_json() -> None:
    profile = DeviceProfile.model_validate(PROFILE_JSON)
    out = profile.to_json_dict()
    assert out["deviceResources"][0]["properties"]["valueType"] == "Float32"
    assert out["deviceResources"][0]["attributes"] == {
        "primaryTable": "INPUT_REGISTERS",
        "startingAddress": 3,
    }
    assert out["deviceCommands"][0]["resourceOperations"][0]["mappings"] == {"1": "on"}
    assert DeviceProfile.model_validate(orjson.loads(orjson.dumps(out))) == profile


def test_keys_are_accepted_in_any_casing_and_unknown_keys_ignored() -> None:
    profile = DeviceProfile.model_validate(
        {
            "NAME": "p",
            "DeviceResources": [{"Name": "r", "PROPERTIES": {"valuetype": "int16", "READWRITE": "rw"}}],
            "somethingElse": 1,
        }
    )
    res = profile.device_resources[0]
    assert res.name == "r"
    assert res.properties.value_type is ValueType.INT16
    assert res.properties.read_write is ReadWrite.RW
    assert "somethingElse" not in profile.to_json_dict()


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("FLOAT32", "Float32"),
        ("float64array", "Float64Array"),
        ("Uint8", "Uint8"),
        ("BOOL", "Bool"),
        ("object", "Object"),
        ("binary", "Binary"),
        (" String ", "String"),
    ],
)
def test_value_type_is_normalised(given: str, canonical: str) -> None:
    r = Reading.model_validate(
        {"deviceName": "d", "resourceName": "r", "profileName": "p", "valueType": given, "value": "1"}
    )
    assert r.value_type.value == canonical


def test_unknown_value_type_names_the_resource() -> None:
    with pytest.raises(ValidationError) as info:
        DeviceProfile.model_validate(
            {
                "name": "p",
                "deviceResources": [{"name": "Pressure", "properties": {"valueType": "Float128", "readWrite": "R"}}],
            }
        )
    message = describe_errors(info.value)
    assert "Pressure" in message
    assert "Float128" in message


def test_yaml_scalars_become_strings_where_edgex_keeps_strings() -> None:
    profile = DeviceProfile.model_validate(
        {
            "name": "p",
            "deviceResources": [
                {"name": "r", "properties": {"valueType": "Float64", "readWrite": "RW", "defaultValue": 0.0}}
            ],
            "deviceCommands": [
                {
                    "name": "c",
                    "readWrite": "RW",
                    "resourceOperations": [{"deviceResource": "r", "defaultValue": True}],
                }
            ],
        }
    )
    assert profile.device_resources[0].properties.default_value == "0.0"
    assert profile.device_commands[0].resource_operations[0].default_value == "true"


def test_device_defaults_and_state_normalisation() -> None:
    device = Device.model_validate(
        {
            "name": "d1",
            "serviceName": "s",
            "profileName": "p",
            "adminState": "locked",
            "operatingState": "down",
            "protocols": {"modbus-tcp": {"Address": "10.0.0.1", "Port": 502}},
            "autoEvents": [
                {
                    "interval": "1s",
                    "onChange": True,
                    "onChangeThreshold": 0.5,
                    "sourceName": "r",
                    "retention": {"maxCap": 10, "minCap": 5, "duration": "1h"},
                }
            ],
        }
    )
    assert device.admin_state is AdminState.LOCKED
    assert device.operating_state is OperatingState.DOWN
    out = device.to_json_dict()
    assert out["protocols"]["modbus-tcp"]["Port"] == 502
    assert out["autoEvents"][0]["retention"] == {"maxCap": 10, "minCap": 5, "duration": "1h"}


def test_legacy_autoevent_resource_key_is_the_source_name() -> None:
    device = Device.model_validate(
        {"name": "d", "serviceName": "s", "autoEvents": [{"interval": "5s", "resource": "Temp"}]}
    )
    assert device.auto_events[0].source_name == "Temp"


@pytest.mark.parametrize("bad", ["", "has space", "a/b", "x?y"])
def test_names_with_reserved_characters_are_rejected(bad: str) -> None:
    with pytest.raises(ValidationError, match="device name"):
        Device.model_validate({"name": bad, "serviceName": "s"})


@pytest.mark.parametrize("interval", ["0s", "abc", "10"])
def test_bad_autoevent_intervals_are_rejected(interval: str) -> None:
    with pytest.raises(ValidationError, match="interval"):
        Device.model_validate(
            {"name": "d", "serviceName": "s", "autoEvents": [{"interval": interval, "sourceName": "x"}]}
        )


def test_go_durations() -> None:
    assert parse_duration("1m30s") == 90
    assert parse_duration("500ms") == 0.5
    assert parse_duration("1h") == 3600
    assert parse_duration("1.5s") == 1.5
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration("5 minutes")


def test_event_with_simple_binary_and_object_readings_round_trips() -> None:
    event = Event.model_validate(
        {
            "deviceName": "d",
            "profileName": "p",
            "sourceName": "s",
            "origin": 1700000000000000000,
            "readings": [
                {
                    "deviceName": "d",
                    "resourceName": "t",
                    "profileName": "p",
                    "valueType": "Float32",
                    "value": "1.5",
                },
                {
                    "deviceName": "d",
                    "resourceName": "img",
                    "profileName": "p",
                    "valueType": "Binary",
                    "binaryValue": "AAEC",
                    "mediaType": "image/png",
                },
                {
                    "deviceName": "d",
                    "resourceName": "o",
                    "profileName": "p",
                    "valueType": "Object",
                    "objectValue": {"a": [1, 2]},
                },
            ],
        }
    )
    assert event.readings[1].binary_value == b"\x00\x01\x02"
    out = orjson.loads(event.model_dump_json(by_alias=True, exclude_none=True))
    assert out["readings"][1]["binaryValue"] == "AAEC"
    assert out["readings"][2]["objectValue"] == {"a": [1, 2]}
    assert out["apiVersion"] == "v3"
    assert Event.model_validate(out) == event


def test_request_and_multi_response_shapes() -> None:
    req = AddDeviceRequest.model_validate(
        {"apiVersion": "v3", "requestId": "r1", "device": {"name": "d", "serviceName": "s"}}
    )
    assert req.request_id == "r1"
    body = MultiDevicesResponse(devices=[req.device], total_count=7).to_json_dict()
    assert body["totalCount"] == 7
    assert body["statusCode"] == 200
    assert body["devices"][0]["name"] == "d"


def test_message_envelope_uses_edgex_key_names() -> None:
    env = MessageEnvelope(payload={"x": 1}, request_id="abc")
    wire = orjson.loads(env.encode())
    assert wire["correlationID"] == env.correlation_id
    assert wire["requestID"] == "abc"
    assert wire["contentType"] == "application/json"
    assert MessageEnvelope.decode(env.encode()) == env


@pytest.mark.parametrize(
    ("module", "cls", "prefix", "port"),
    [
        ("core_metadata.settings", "CoreMetadataSettings", "CORE_METADATA_", 59881),
        ("core_data.settings", "CoreDataSettings", "CORE_DATA_", 59880),
        ("core_command.settings", "CoreCommandSettings", "CORE_COMMAND_", 59882),
        ("device_modbus.settings", "DeviceModbusSettings", "DEVICE_MODBUS_", 59901),
    ],
)
def test_one_nested_http_variable_keeps_the_default_port(
    monkeypatch: pytest.MonkeyPatch, module: str, cls: str, prefix: str, port: int
) -> None:
    import importlib

    settings_cls = getattr(importlib.import_module(module), cls)
    assert settings_cls().http.port == port
    monkeypatch.setenv(f"{prefix}HTTP__HOST", "127.0.0.1")
    got = settings_cls()
    assert (got.http.host, got.http.port) == ("127.0.0.1", port)
    monkeypatch.setenv("EDGEPLANE_HTTP__PORT", "1234")  # shared variables merge with the service's own
    assert settings_cls().http.port == 1234


def test_binary_readings_use_standard_base64_as_go_does() -> None:
    import base64

    from edgeplane_common.models import Reading

    raw = bytes([0xFB, 0xFF, 0xBF, 0x00])  # standard "+/+/AA==" vs URL-safe "-_-_AA=="
    r = Reading(device_name="d", resource_name="r", profile_name="p", value_type="Binary", binary_value=raw)
    text = r.to_json_dict()["binaryValue"]
    assert text == base64.b64encode(raw).decode() == "+/+/AA=="
    assert Reading.model_validate({**r.to_json_dict()}).binary_value == raw
