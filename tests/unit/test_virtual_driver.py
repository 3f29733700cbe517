"""device-virtual's value generator and driver: a random value of the right kind within minimum/maximum for
every EdgeX value type, written values read back, the EnableRandomization_<resource> switches, and the
readings the SDK makes of them (through the SDK's own command path)."""

from __future__ import annotations

import base64
import json
import math
import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from device_virtual.driver import VirtualDriver
from device_virtual.generator import STRING_LENGTH, ValueGenerator, float_bounds, int_bounds
from device_virtual.main import RES_DIR
from edgeplane_common.edgex.values import ARRAY_ELEMENT, FLOAT32_MAX, INT_RANGES, format_value, to_float32
from edgeplane_common.models import Device, DeviceProfile, OperatingState, ValueType
from edgeplane_sdk.commands import CommandExecutor, HealthTracker
from edgeplane_sdk.registry import Registry

DRAWS = 200
SCALARS = [vt for vt in ValueType if not vt.is_array]


def gen(seed: int = 7, **kw: Any) -> ValueGenerator:
    return ValueGenerator(rng=random.Random(seed), **kw)


def kind_of(vt: ValueType, value: Any) -> bool:
    """Whether `value` is the raw Python kind a driver returns for `vt`."""
    element = ARRAY_ELEMENT.get(vt)
    if element is not None:
        return isinstance(value, list) and all(kind_of(element, v) for v in value)
    if vt in INT_RANGES:
        return type(value) is int
    if vt in (ValueType.FLOAT32, ValueType.FLOAT64):
        return type(value) is float
    return isinstance(
        value,
        {ValueType.BOOL: bool, ValueType.STRING: str, ValueType.BINARY: bytes, ValueType.OBJECT: dict}[vt],
    )


# ------------------------------------------------------------------------------------------------ generator


@pytest.mark.parametrize("vt", list(ValueType), ids=str)
def test_every_value_type_gets_a_value_of_its_kind_that_the_sdk_can_format(vt: ValueType) -> None:
    g = gen()
    for _ in range(DRAWS):
        value = g.value(vt)
        assert kind_of(vt, value), (vt, value)
        format_value(value, vt)  # raises on a value of the wrong kind or out of the type's range


@pytest.mark.parametrize("vt", list(INT_RANGES), ids=str)
def test_integers_stay_within_minimum_maximum_and_cover_it(vt: ValueType) -> None:
    minimum, maximum = max(INT_RANGES[vt][0], -3), 5
    g = gen()
    seen = {g.value(vt, minimum, maximum) for _ in range(DRAWS)}
    assert seen == set(range(minimum, maximum + 1))  # 200 draws of at most 9 values: every one comes up


@pytest.mark.parametrize("vt", list(INT_RANGES), ids=str)
def test_integers_without_bounds_use_the_types_whole_range(vt: ValueType) -> None:
    lo, hi = INT_RANGES[vt]
    values = [gen(seed).value(vt) for seed in range(DRAWS)]
    assert all(lo <= v <= hi for v in values)
    # Spread over the range, not stuck near 0: some draw lies in each outer quarter.
    assert any(v < lo + (hi - lo) / 4 for v in values)
    assert any(v > hi - (hi - lo) / 4 for v in values)


def test_integer_bounds_are_clipped_to_the_type_and_an_empty_range_falls_back_to_it() -> None:
    assert int_bounds(ValueType.UINT8, -50, 1000) == (0, 255)
    assert int_bounds(ValueType.INT16, 2.5, 7.5) == (3, 7)
    assert int_bounds(ValueType.INT8, None, 10) == (-128, 10)
    assert int_bounds(ValueType.INT8, 10, None) == (10, 127)
    assert int_bounds(ValueType.INT8, 10, 5) == (-128, 127)  # as device-virtual does for an invalid range
    assert int_bounds(ValueType.UINT64, None, float(2**64)) == (0, 2**64 - 1)
    assert int_bounds(ValueType.INT32, 4, 4) == (4, 4)
    assert int_bounds(ValueType.INT32, math.nan, math.inf) == INT_RANGES[ValueType.INT32]


@pytest.mark.parametrize("vt", [ValueType.FLOAT32, ValueType.FLOAT64], ids=str)
def test_floats_stay_within_minimum_maximum(vt: ValueType) -> None:
    g = gen()
    for minimum, maximum in [(-40.0, 85.0), (0.1, 0.2), (-1e-3, 0.0), (1e30, 3e38)]:
        values = [g.value(vt, minimum, maximum) for _ in range(DRAWS)]
        assert all(minimum <= v <= maximum for v in values), (minimum, maximum)
        assert len(set(values)) > DRAWS // 2  # random, not a constant
        if vt is ValueType.FLOAT32:
            assert all(to_float32(v) == v for v in values)  # already float32: the reading shows it exactly


def test_floats_without_bounds_use_the_types_whole_range_without_overflow() -> None:
    assert float_bounds(ValueType.FLOAT32, None, None) == (-FLOAT32_MAX, FLOAT32_MAX)
    for vt in (ValueType.FLOAT32, ValueType.FLOAT64):
        lo, hi = float_bounds(vt, None, None)
        values = [gen(seed).value(vt) for seed in range(DRAWS)]
        assert all(math.isfinite(v) and lo <= v <= hi for v in values)
        assert any(v < lo / 4 for v in values)
        assert any(v > hi / 4 for v in values)
    assert float_bounds(ValueType.FLOAT64, 5.0, 1.0)[1] > 1e300  # an empty range falls back to the whole type


def test_bool_is_both_and_string_is_random_text() -> None:
    g = gen()
    assert {g.value(ValueType.BOOL) for _ in range(DRAWS)} == {True, False}
    texts = {g.value(ValueType.STRING) for _ in range(DRAWS)}
    assert len(texts) == DRAWS
    assert all(len(t) == STRING_LENGTH and t.isalnum() and t.isascii() for t in texts)


@pytest.mark.parametrize("vt", [vt for vt in ValueType if vt.is_array], ids=str)
def test_arrays_have_array_length_elements_each_within_the_bounds(vt: ValueType) -> None:
    element = ARRAY_ELEMENT[vt]
    numeric = element.is_numeric
    g = gen(array_length=7)
    for _ in range(20):
        value = g.value(vt, 0 if numeric else None, 100 if numeric else None)
        assert len(value) == 7
        assert kind_of(vt, value)
        if numeric:
            assert all(0 <= v <= 100 for v in value)
    assert gen(array_length=0).value(vt) == []


def test_binary_is_random_bytes_of_the_configured_size() -> None:
    g = gen(binary_size=33)
    values = [g.value(ValueType.BINARY) for _ in range(5)]
    assert all(type(v) is bytes and len(v) == 33 for v in values)
    assert len(set(values)) == 5


def test_object_keeps_the_default_values_shape_with_every_leaf_redrawn() -> None:
    default = json.dumps({"t": 21.5, "n": 40, "ok": False, "s": "x", "none": None, "inner": {"v": [1, 2.5]}})
    g = gen()
    values = [g.value(ValueType.OBJECT, 0, 10, default) for _ in range(DRAWS)]
    for v in values:
        assert set(v) == {"t", "n", "ok", "s", "none", "inner"}
        assert type(v["t"]) is float
        assert 0 <= v["t"] <= 10
        assert type(v["n"]) is int
        assert 0 <= v["n"] <= 10
        assert type(v["ok"]) is bool
        assert type(v["s"]) is str
        assert v["none"] is None
        assert type(v["inner"]["v"][0]) is int
        assert type(v["inner"]["v"][1]) is float
    assert len({json.dumps(v, sort_keys=True) for v in values}) == DRAWS


def test_object_without_a_usable_default_has_one_value_of_each_kind() -> None:
    for default in (None, "", "not json", "[1, 2]", "3"):
        v = gen().value(ValueType.OBJECT, None, None, default)
        assert set(v) == {"bool", "int", "float", "string"}
        assert 0 <= v["int"] <= 100
        assert 0 <= v["float"] <= 100


def test_object_array_follows_a_list_default_or_repeats_an_object_default() -> None:
    listed = gen().value(ValueType.OBJECT_ARRAY, None, None, '[{"id": 1}, {"id": 2, "x": true}]')
    assert [set(o) for o in listed] == [{"id"}, {"id", "x"}]
    repeated = gen(array_length=3).value(ValueType.OBJECT_ARRAY, None, None, '{"a": 1.5}')
    assert len(repeated) == 3
    assert all(set(o) == {"a"} for o in repeated)
    assert len(gen().value(ValueType.OBJECT_ARRAY)) == 5


def test_a_seeded_generator_repeats_itself() -> None:
    assert [gen(3).value(vt) for vt in SCALARS] == [gen(3).value(vt) for vt in SCALARS]


# ------------------------------------------------------------------------------------------------ driver


def profiles() -> dict[str, DeviceProfile]:
    found = {}
    for path in sorted((RES_DIR / "profiles").glob("*.yaml")):
        profile = DeviceProfile.model_validate(yaml.safe_load(path.read_text()))
        found[profile.name] = profile
    return found


class Harness:
    """The SDK's command executor (what REST, the bus and autoevents use) around a VirtualDriver."""

    def __init__(self, *profile_list: DeviceProfile, seed: int = 1) -> None:
        self.registry = Registry()
        for p in profile_list:
            self.registry.put_profile(p)
        self.driver = VirtualDriver(rng=random.Random(seed))

        async def set_state(name: str, state: OperatingState) -> None:
            return None

        self.executor = CommandExecutor(self.registry, self.driver, HealthTracker(set_state, 3), 256)

    async def add(self, name: str, profile: str) -> Device:
        device = Device(name=name, service_name="device-virtual", profile_name=profile, protocols={"other": {}})
        await self.driver.validate_device(device)
        self.registry.devices[name] = device
        await self.driver.add_device(device)
        return device

    async def read(self, device: str, source: str) -> dict[str, dict[str, Any]]:
        event = await self.executor.read_json(device, source)
        return {r["resourceName"]: r for r in event["readings"]}

    async def value(self, device: str, resource: str) -> Any:
        return (await self.read(device, resource))[resource]

    async def write(self, device: str, command: str, settings: dict[str, Any]) -> None:
        await self.executor.write(device, command, settings)


def reading_value(r: dict[str, Any]) -> Any:
    vt = ValueType(r["valueType"])
    if vt is ValueType.BINARY:
        return base64.b64decode(r["binaryValue"], altchars=b"-_")  # standard or URL-safe base64
    if vt in (ValueType.OBJECT, ValueType.OBJECT_ARRAY):
        return r["objectValue"]
    return r["value"]


def test_the_res_profiles_cover_every_value_type_each_with_its_switch() -> None:
    resources = [r for p in profiles().values() for r in p.device_resources]
    by_name = {r.name: r for r in resources}
    values = [r for r in resources if not r.name.startswith("EnableRandomization_")]
    assert {r.properties.value_type for r in values} == set(ValueType)
    for r in values:
        switch = by_name[f"EnableRandomization_{r.name}"]
        assert switch.properties.value_type is ValueType.BOOL
        assert switch.properties.read_write.value in ("W", "RW")


def test_the_res_devices_use_the_res_profiles() -> None:
    data = yaml.safe_load(next((RES_DIR / "devices").glob("*.yaml")).read_text())
    devices = data["deviceList"]
    assert {d["profileName"] for d in devices} == set(profiles())
    assert any(d.get("autoEvents") for d in devices)
    for d in devices:
        for auto in d.get("autoEvents", []):
            profile = profiles()[d["profileName"]]
            names = {r.name for r in profile.device_resources} | {c.name for c in profile.device_commands}
            assert auto["sourceName"] in names


async def test_every_resource_of_the_res_profiles_reads_as_its_value_type_within_its_bounds() -> None:
    h = Harness(*profiles().values())
    for profile in profiles().values():
        device = await h.add(f"dev-{profile.name}", profile.name)
        for res in profile.device_resources:
            props = res.properties
            for _ in range(10):
                r = await h.value(device.name, res.name)
                assert r["valueType"] == props.value_type.value, res.name
                if props.value_type.is_numeric and props.minimum is not None and props.maximum is not None:
                    assert props.minimum <= float(r["value"]) <= props.maximum, (res.name, r["value"])


async def test_a_written_value_reads_back_until_randomization_is_switched_on_again() -> None:
    h = Harness(profiles()["Virtual-Integer"])
    await h.add("ints", "Virtual-Integer")
    assert (await h.value("ints", "EnableRandomization_Int16"))["value"] == "true"
    seen = {(await h.value("ints", "Int16"))["value"] for _ in range(20)}
    assert len(seen) > 1  # random

    await h.write("ints", "Int16", {"Int16": "-123"})
    assert {(await h.value("ints", "Int16"))["value"] for _ in range(5)} == {"-123"}
    assert (await h.value("ints", "EnableRandomization_Int16"))["value"] == "false"  # a write turns it off

    await h.write("ints", "EnableRandomization_Int16", {"EnableRandomization_Int16": "true"})
    assert len({(await h.value("ints", "Int16"))["value"] for _ in range(20)}) > 1
    # Other resources and other devices were never affected.
    assert (await h.value("ints", "EnableRandomization_Int8"))["value"] == "true"


async def test_the_write_command_writes_and_switches_off_in_one_request() -> None:
    h = Harness(profiles()["Virtual-Float"])
    await h.add("floats", "Virtual-Float")
    await h.write("floats", "WriteFloat32", {"Float32": "12.5"})  # EnableRandomization_Float32 from its default
    assert {(await h.value("floats", "Float32"))["value"] for _ in range(3)} == {"1.25e+01"}
    # Out of the profile's range: refused by the SDK before the driver sees it.
    with pytest.raises(Exception, match="maximum"):
        await h.write("floats", "Float32", {"Float32": "200"})


async def test_switching_randomization_off_keeps_the_last_value_read() -> None:
    h = Harness(profiles()["Virtual-UnsignedInteger"])
    await h.add("uints", "Virtual-UnsignedInteger")
    last = (await h.value("uints", "Uint32"))["value"]
    await h.write("uints", "EnableRandomization_Uint32", {"EnableRandomization_Uint32": "false"})
    assert {(await h.value("uints", "Uint32"))["value"] for _ in range(5)} == {last}


async def test_switched_off_before_any_read_starts_from_the_default_value() -> None:
    h = Harness(profiles()["Virtual-Object"])
    await h.add("objs", "Virtual-Object")
    await h.write("objs", "EnableRandomization_String", {"EnableRandomization_String": "false"})
    assert (await h.value("objs", "String"))["value"] == "idle"
    await h.write("objs", "EnableRandomization_Object", {"EnableRandomization_Object": False})
    default = json.loads(profiles()["Virtual-Object"].device_resources[4].properties.default_value or "")
    assert reading_value(await h.value("objs", "Object")) == default


@pytest.mark.parametrize(
    ("resource", "written", "expected"),
    [
        ("Bool", "false", "false"),
        ("BoolArray", "[true, true, false, false, true]", "[true, true, false, false, true]"),
        ("Uint64", "18446744073709551615", "18446744073709551615"),
        ("Int64Array", "[-9223372036854775808, 1]", "[-9223372036854775808, 1]"),
        ("Float64", "2.5", "2.5e+00"),
        ("Float32Array", "[0.5, -0.25]", "[5e-01, -2.5e-01]"),
        ("String", "héllo 世界", "héllo 世界"),
        ("StringArray", '["a", "世界"]', '["a","世界"]'),
    ],
)
async def test_every_kind_of_written_value_reads_back(resource: str, written: str, expected: str) -> None:
    h = Harness(*profiles().values())
    profile = next(p for p in profiles().values() if any(r.name == resource for r in p.device_resources))
    await h.add("dev", profile.name)
    await h.write("dev", resource, {resource: written})
    assert (await h.value("dev", resource))["value"] == expected


async def test_binary_is_kept_while_switched_off_and_objects_read_back_as_written() -> None:
    h = Harness(profiles()["Virtual-Binary"], profiles()["Virtual-Object"])
    await h.add("bin", "Virtual-Binary")
    first = reading_value(await h.value("bin", "Binary"))
    second = reading_value(await h.value("bin", "Binary"))
    assert len(first) == 64
    assert first != second
    await h.write("bin", "EnableRandomization_Binary", {"EnableRandomization_Binary": "false"})
    third = reading_value(await h.value("bin", "Binary"))
    assert third == reading_value(await h.value("bin", "Binary"))  # kept

    await h.add("obj", "Virtual-Object")
    await h.write("obj", "Object", {"Object": {"any": ["json", 1, {"x": None}]}})
    assert reading_value(await h.value("obj", "Object")) == {"any": ["json", 1, {"x": None}]}


async def test_a_profile_with_transforms_reads_within_its_minimum_maximum() -> None:
    profile = DeviceProfile.model_validate(
        {
            "name": "Scaled",
            "deviceResources": [
                {
                    "name": "Level",
                    "properties": {"valueType": "Int16", "readWrite": "R", "scale": 10, "minimum": 0, "maximum": 500},
                },
                {
                    "name": "Temp",
                    "properties": {
                        "valueType": "Float64",
                        "readWrite": "R",
                        "scale": 0.1,
                        "offset": -40,
                        "minimum": -20,
                        "maximum": 20,
                    },
                },
            ],
        }
    )
    h = Harness(profile)
    await h.add("scaled", "Scaled")
    for _ in range(50):
        got = await h.read("scaled", "Level")
        assert 0 <= int(got["Level"]["value"]) <= 500
        assert int(got["Level"]["value"]) % 10 == 0
        assert -20 <= float((await h.value("scaled", "Temp"))["value"]) <= 20 + 1e-9


async def test_state_is_per_device_and_reset_by_removal_or_a_new_profile() -> None:
    h = Harness(profiles()["Virtual-Integer"], profiles()["Virtual-UnsignedInteger"])
    a = await h.add("a", "Virtual-Integer")
    await h.add("b", "Virtual-Integer")
    await h.write("a", "Int8", {"Int8": "42"})
    assert (await h.value("a", "Int8"))["value"] == "42"
    assert (await h.value("b", "EnableRandomization_Int8"))["value"] == "true"

    await h.driver.update_device(a.model_copy(update={"labels": ["x"]}))  # a label change keeps values
    assert (await h.value("a", "Int8"))["value"] == "42"

    await h.driver.remove_device(a)
    await h.driver.add_device(a)
    assert (await h.value("a", "EnableRandomization_Int8"))["value"] == "true"


async def test_any_device_is_valid() -> None:
    driver = VirtualDriver()
    for protocols in ({}, {"other": {"Address": "x"}}, {"modbus-tcp": {"Port": "nope"}}):
        await driver.validate_device(Device(name="d", service_name="device-virtual", protocols=protocols))


def test_res_dir_is_the_packages() -> None:
    assert Path(RES_DIR, "profiles").is_dir()
    assert Path(RES_DIR, "devices").is_dir()
