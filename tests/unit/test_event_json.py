"""Events built as JSON (the hot path of commands and autoevents) equal what the pydantic models give:
`_reading(...).to_json_dict()` is the reference, for every value type, transforms, mappings, NaN, overflow,
tags, units, Binary and Object readings."""

from __future__ import annotations

import math
import struct
import uuid
from typing import Any

import orjson
import pytest

from edgeplane_common.bus import MessageEnvelope
from edgeplane_common.bus.nats import encode
from edgeplane_common.errors import ServerError
from edgeplane_common.models import Device, DeviceProfile, OperatingState
from edgeplane_sdk.commands import CommandExecutor, HealthTracker, _reading, event_from_json, new_ids
from edgeplane_sdk.driver import CommandRequest, CommandValue, ProtocolDriver
from edgeplane_sdk.registry import Registry


def f32(x: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


RESOURCES: list[tuple[dict[str, Any], Any]] = [
    # (resource definition, raw value the driver returns)
    ({"name": "F32", "properties": {"valueType": "Float32", "units": "degC"}}, f32(21.3)),
    ({"name": "F32Again", "properties": {"valueType": "Float32", "units": "degC"}}, f32(21.3)),  # cached text
    ({"name": "F32Zero", "properties": {"valueType": "Float32"}}, 0.0),
    ({"name": "F32NegZero", "properties": {"valueType": "Float32"}}, -0.0),
    ({"name": "F32NaN", "properties": {"valueType": "Float32"}}, math.nan),
    ({"name": "F32Inf", "properties": {"valueType": "Float32"}}, math.inf),
    ({"name": "F32Int", "properties": {"valueType": "Float32"}}, 3),  # an int where a float was due
    ({"name": "F32Scaled", "properties": {"valueType": "Float32", "scale": 0.1, "offset": 2}}, f32(215.0)),
    ({"name": "F32Overflow", "properties": {"valueType": "Float32", "scale": 1e30}}, f32(1e20)),
    ({"name": "F64", "properties": {"valueType": "Float64"}}, 0.1),
    ({"name": "F64NaN", "properties": {"valueType": "Float64"}}, math.nan),
    ({"name": "I16", "properties": {"valueType": "Int16", "units": "l/min"}}, -12),
    ({"name": "U16Masked", "properties": {"valueType": "Uint16", "mask": 255, "shift": -4}}, 0xABCD),
    ({"name": "U8Overflow", "properties": {"valueType": "Uint8", "scale": 100}}, 200),
    ({"name": "I32Bool", "properties": {"valueType": "Int32"}}, True),  # a bool where an int was due
    ({"name": "Bool", "properties": {"valueType": "Bool"}}, True),
    ({"name": "Str", "properties": {"valueType": "String"}}, "EP-SIM <1.0>"),
    ({"name": "F32Arr", "properties": {"valueType": "Float32Array"}}, [1.0, 2.5]),
    ({"name": "StrArr", "properties": {"valueType": "StringArray"}}, ["a", "b"]),
    ({"name": "Bin", "properties": {"valueType": "Binary", "mediaType": "application/octet-stream"}}, b"\x00\x01"),
    ({"name": "Obj", "properties": {"valueType": "Object"}}, {"a": [1, 2], "b": None}),
    ({"name": "Tagged", "properties": {"valueType": "Float32"}, "tags": {"line": 1}}, f32(1.5)),
    ({"name": "EmptyTags", "properties": {"valueType": "Int16"}, "tags": {}}, 7),
    ({"name": "Mode", "properties": {"valueType": "Int16"}}, 2),  # mapped below
    ({"name": "ModeUnmapped", "properties": {"valueType": "Int16"}}, 9),  # a mapping that does not match
    ({"name": "F32Mapped", "properties": {"valueType": "Float32"}}, 1.0),
]
MAPPINGS = {"Mode": {"2": "AUTO"}, "ModeUnmapped": {"2": "AUTO"}, "F32Mapped": {"1e+00": "ON"}}
DRIVER_TAGS = {"I16": {"source": "driver"}}


def profile(resources: list[tuple[dict[str, Any], Any]]) -> DeviceProfile:
    return DeviceProfile.model_validate(
        {
            "name": "P",
            "deviceResources": [{**r, "properties": {"readWrite": "R", **r["properties"]}} for r, _ in resources],
            "deviceCommands": [
                {
                    "name": "All",
                    "readWrite": "R",
                    "resourceOperations": [
                        {"deviceResource": r["name"], "mappings": MAPPINGS.get(r["name"], {})} for r, _ in resources
                    ],
                }
            ],
        }
    )


class Driver(ProtocolDriver):
    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    async def handle_read_commands(
        self, device: Device, protocols: dict[str, dict[str, Any]], requests: list[CommandRequest]
    ) -> list[CommandValue]:
        return [
            CommandValue(
                r.resource_name, r.value_type, self.values[r.resource_name], tags=DRIVER_TAGS.get(r.resource_name)
            )
            for r in requests
        ]

    async def handle_write_commands(
        self,
        device: Device,
        protocols: dict[str, dict[str, Any]],
        requests: list[CommandRequest],
        values: list[CommandValue],
    ) -> None:
        raise AssertionError("these tests only read")


async def executor(resources: list[tuple[dict[str, Any], Any]]) -> tuple[CommandExecutor, Registry]:
    registry = Registry()
    registry.put_profile(profile(resources))
    registry.devices["dev"] = Device(name="dev", service_name="svc", profile_name="P")

    async def set_state(name: str, state: OperatingState) -> None:
        return None

    ex = CommandExecutor(registry, Driver({r["name"]: v for r, v in resources}), HealthTracker(set_state, 3), 256)
    return ex, registry


def without_id(reading: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in reading.items() if k != "id"}


async def test_event_json_equals_the_pydantic_reference_for_every_kind_of_reading() -> None:
    ex, registry = await executor(RESOURCES)
    for _ in range(2):  # the second read takes the cached (fast-lane) texts
        event = await ex.read_json("dev", "All")
        device = registry.device("dev")
        source = registry.source(device, "All")
        values = await ex.driver.handle_read_commands(device, device.protocols, source.requests)
        assert len(event["readings"]) == len(RESOURCES)
        for i, (got, cv) in enumerate(zip(event["readings"], values, strict=True)):
            cv.origin = got["origin"]
            want = _reading(device, "P", source, i, cv).to_json_dict()
            assert list(got) == list(want), got["resourceName"]  # same keys in the same order
            assert without_id(got) == without_id(want), got["resourceName"]
            assert uuid.UUID(got["id"]).version == 4
        # The event itself has the Event model's shape, and the wire bytes round-trip through the model.
        assert list(event) == ["apiVersion", "id", "deviceName", "profileName", "sourceName", "origin", "readings"]
        model = event_from_json(event)
        assert model.to_json_dict() == event
        assert orjson.loads(encode(MessageEnvelope(payload=event)))["payload"] == event
    by_name = {r["resourceName"]: r for r in event["readings"]}
    assert by_name["F32"]["value"] == "2.13e+01"
    assert (by_name["F32Zero"]["value"], by_name["F32NegZero"]["value"]) == ("0e+00", "-0e+00")
    assert (by_name["F32NaN"]["valueType"], by_name["F32NaN"]["value"]) == ("String", "NaN")
    assert (by_name["F32Overflow"]["valueType"], by_name["F32Overflow"]["value"]) == ("String", "overflow")
    assert (by_name["Mode"]["valueType"], by_name["Mode"]["value"]) == ("String", "AUTO")
    assert (by_name["F32Mapped"]["valueType"], by_name["F32Mapped"]["value"]) == ("String", "ON")
    assert by_name["I16"]["tags"] == {"source": "driver"}
    assert by_name["Tagged"]["tags"] == {"line": 1}
    assert by_name["Bin"]["binaryValue"] == "AAE="


async def test_a_value_beyond_float32_fails_the_read_as_before() -> None:
    ex, _ = await executor([({"name": "F", "properties": {"valueType": "Float32"}}, 1e39)])
    with pytest.raises(ServerError):
        await ex.read_json("dev", "All")


def test_new_ids_are_distinct_random_uuid4_strings() -> None:
    ids = new_ids(1000)
    assert len(set(ids)) == 1000
    for text in ids:
        u = uuid.UUID(text)
        assert str(u) == text
        assert (u.version, u.variant) == (4, uuid.RFC_4122)


@pytest.mark.parametrize(
    "payload",
    [
        None,
        {"a": None, "b": [1, 2.5, "x", True, {"c": None}]},
        [1, 2, 3],
        "text",
        {"when": __import__("datetime").datetime(2026, 1, 2, 3, 4, 5)},
        {"model": MessageEnvelope(payload={"x": None}, query_params={"q": "1"})},
    ],
)
def test_fast_envelope_encoding_gives_the_same_bytes(payload: Any) -> None:
    env = MessageEnvelope(payload=payload, request_id="r", query_params={"ds-pushevent": "true"})
    assert encode(env) == env.encode()
    env = MessageEnvelope(payload=payload)
    assert encode(env) == env.encode()
