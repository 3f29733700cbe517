"""The official EdgeX sample files load into core-metadata and read back intact (real NATS and Redis).

Every sample profile is uploaded as a file (POST /deviceprofile/uploadfile) and read back with GET
/deviceprofile/name/{name}; every sample device definition (`deviceList` files) is added with POST /device.
What comes back is compared with the same files loaded independently with PyYAML, field by field, with only
the normalisation EdgeX itself applies: valueType to its canonical spelling (taken from the EdgeX OpenAPI
enum, not from our code), readWrite upper-case, and defaultValue kept as text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.metadata import OPENAPI, SAMPLE_DEVICE_FILES, SAMPLE_PROFILES, add_service, upload_profile

API = "/api/v3"
_SPEC = yaml.safe_load((OPENAPI / "core-metadata.yaml").read_text())
# EdgeX's canonical valueType spellings; EdgeX matches them case-insensitively ("INT16" is Int16).
VALUE_TYPES = {
    v.lower(): v for v in _SPEC["components"]["schemas"]["ResourceProperties"]["properties"]["valueType"]["enum"]
}
PROFILE_FILES = {yaml.safe_load(p.read_text())["name"]: p for p in SAMPLE_PROFILES}
# The numeric and text properties a resource may carry, compared as numbers or as text respectively.
NUMBER_PROPERTIES = ("minimum", "maximum", "scale", "offset", "base", "mask", "shift")
TEXT_PROPERTIES = ("units", "defaultValue", "assertion", "mediaType")


def as_text(value: Any) -> str:
    """EdgeX keeps defaultValue-like fields as the text written in the file (`0.0` -> "0.0")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


async def get_json(client: httpx.AsyncClient, path: str) -> dict[str, Any]:
    r = await client.get(API + path)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    body: dict[str, Any] = r.json()
    return body


def assert_resource(got: dict[str, Any], want: dict[str, Any]) -> None:
    where = f"resource {want['name']}"
    assert got["name"] == want["name"]
    assert got.get("description") == want.get("description"), where
    assert got.get("isHidden", False) == want.get("isHidden", False), where
    assert got.get("attributes") == want.get("attributes"), where  # values as written: 0, 10.1, "1", ...
    if "tags" in want:
        assert got.get("tags") == want["tags"], where
    props, want_props = got["properties"], want["properties"]
    assert props["valueType"] == VALUE_TYPES[want_props["valueType"].lower()], where
    assert props["readWrite"] == want_props["readWrite"].upper(), where
    for key in NUMBER_PROPERTIES:
        if key in want_props:
            assert props.get(key) == pytest.approx(float(want_props[key])), f"{where}: {key}"
        else:
            assert key not in props, f"{where}: {key} appeared from nowhere"
    for key in TEXT_PROPERTIES:
        if key in want_props:
            assert props.get(key) == as_text(want_props[key]), f"{where}: {key}"
        else:
            assert key not in props, f"{where}: {key} appeared from nowhere"


def assert_command(got: dict[str, Any], want: dict[str, Any]) -> None:
    where = f"command {want['name']}"
    assert got["name"] == want["name"]
    assert got["readWrite"] == want["readWrite"].upper(), where
    assert got.get("isHidden", False) == want.get("isHidden", False), where
    assert len(got["resourceOperations"]) == len(want["resourceOperations"]), where
    for op, want_op in zip(got["resourceOperations"], want["resourceOperations"], strict=True):
        assert op["deviceResource"] == want_op["deviceResource"], where
        if "defaultValue" in want_op:
            assert op.get("defaultValue") == as_text(want_op["defaultValue"]), where
        assert op.get("mappings") == want_op.get("mappings"), where


def test_the_samples_are_there() -> None:
    # Guard against an empty parametrisation passing vacuously.
    assert len(SAMPLE_PROFILES) == 4
    assert len(SAMPLE_DEVICE_FILES) == 2
    assert len(VALUE_TYPES) >= 25


@pytest.mark.parametrize("path", SAMPLE_PROFILES, ids=lambda p: f"{p.parent.name}/{p.name}")
async def test_sample_profile_uploads_and_reads_back_intact(metadata: httpx.AsyncClient, path: Path) -> None:
    want = load(path)
    r = await upload_profile(metadata, path)
    assert r.status_code == 201, r.text
    assert r.json()["statusCode"] == 201
    assert r.json()["id"]

    got = (await get_json(metadata, f"/deviceprofile/name/{want['name']}"))["profile"]
    assert got["id"] == r.json()["id"]
    for key in ("name", "description", "manufacturer", "model", "labels"):
        assert got.get(key) == want.get(key), key
    assert [x["name"] for x in got["deviceResources"]] == [x["name"] for x in want["deviceResources"]]
    for got_res, want_res in zip(got["deviceResources"], want["deviceResources"], strict=True):
        assert_resource(got_res, want_res)
    assert [x["name"] for x in got.get("deviceCommands", [])] == [x["name"] for x in want.get("deviceCommands", [])]
    for got_cmd, want_cmd in zip(got.get("deviceCommands", []), want.get("deviceCommands", []), strict=True):
        assert_command(got_cmd, want_cmd)

    # The single-resource read agrees with the profile read.
    first = want["deviceResources"][0]["name"]
    single = (await get_json(metadata, f"/deviceresource/profile/{want['name']}/resource/{first}"))["resource"]
    assert single == got["deviceResources"][0]


async def test_taf_profile_upper_case_value_types_and_quoted_addresses(metadata: httpx.AsyncClient) -> None:
    """The explicit case: `valueType: "INT16"` reads back as "Int16"; `startingAddress: "1"` stays "1";
    the unknown `tag:` key (not `tags:`) is dropped, not stored."""
    path = PROFILE_FILES["test-device-profile"]
    assert (await upload_profile(metadata, path)).status_code == 201
    got = (await get_json(metadata, "/deviceresource/profile/test-device-profile/resource/int16-1"))["resource"]
    assert got["properties"]["valueType"] == "Int16"
    assert got["properties"]["readWrite"] == "RW"
    assert got["attributes"] == {"primaryTable": "HOLDING_REGISTERS", "startingAddress": "1"}
    assert "tag" not in got
    raw_types = {r["properties"]["valueType"] for r in load(path)["deviceResources"]}
    assert any(t != t.capitalize() and t.isupper() for t in raw_types), raw_types  # the file really is upper-case


async def test_modbus_profile_keeps_numeric_and_bit_addresses(metadata: httpx.AsyncClient) -> None:
    path = PROFILE_FILES["Test-Device-Modbus-Profile"]
    assert (await upload_profile(metadata, path)).status_code == 201
    profile = (await get_json(metadata, "/deviceprofile/name/Test-Device-Modbus-Profile"))["profile"]
    attributes = {r["name"]: r["attributes"] for r in profile["deviceResources"]}
    assert attributes["SwitchA"] == {"primaryTable": "COILS", "startingAddress": 0}
    # `startingAddress: 10.10` is a YAML float; EdgeX (map[string]any) keeps the number 10.1.
    assert attributes["CommunicationFailure"]["startingAddress"] == 10.1
    assert attributes["RoomTemperature"] == {
        "primaryTable": "INPUT_REGISTERS",
        "startingAddress": 3,
        "rawType": "Int16",
    }
    switch = next(c for c in profile["deviceCommands"] if c["name"] == "Switch")
    assert switch["resourceOperations"][0]["mappings"] == {"true": "ON", "false": "OFF"}


@pytest.mark.parametrize("path", SAMPLE_DEVICE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
async def test_sample_devices_load_and_read_back_intact(metadata: httpx.AsyncClient, path: Path) -> None:
    devices = load(path)["deviceList"]
    assert devices
    service = f"device-{path.parent.name}"  # device-modbus, device-opcua
    await add_service(metadata, service)
    for profile_name in sorted({d["profileName"] for d in devices}):
        r = await upload_profile(metadata, PROFILE_FILES[profile_name])
        assert r.status_code == 201, r.text

    # A device service adds its own name and the default states before it posts its deviceList.
    body = [
        {"apiVersion": "v3", "device": {"adminState": "UNLOCKED", "operatingState": "UP", **d, "serviceName": service}}
        for d in devices
    ]
    r = await metadata.post(f"{API}/device", params={"bypassValidation": "true"}, json=body)
    assert r.status_code == 207, r.text
    assert [e["statusCode"] for e in r.json()] == [201] * len(devices), r.text

    for want in devices:
        got = (await get_json(metadata, f"/device/name/{want['name']}"))["device"]
        assert got["serviceName"] == service
        assert got["profileName"] == want["profileName"]
        assert got.get("description") == want.get("description")
        assert got.get("labels", []) == want.get("labels", [])
        assert got["protocols"] == want["protocols"]  # numbers stay numbers (Port: 1502), text stays text
        want_events = want.get("autoEvents", [])
        assert len(got.get("autoEvents", [])) == len(want_events)
        for got_ae, want_ae in zip(got.get("autoEvents", []), want_events, strict=True):
            assert {k: got_ae.get(k) for k in want_ae} == want_ae
    listed = (await get_json(metadata, f"/device/service/name/{service}?limit=-1"))["devices"]
    assert sorted(d["name"] for d in listed) == sorted(d["name"] for d in devices)
