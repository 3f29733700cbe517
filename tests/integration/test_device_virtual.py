"""device-virtual end to end: real NATS and Redis, core-metadata, core-command and device-virtual over real
HTTP, core-data ingesting the events stream; all in this process.

device-virtual provisions its res/ profiles and devices at start; every resource reads over REST and
through core-command (over the bus); written values read back while randomization is off; a profile a
client creates at run time is served whatever its names; ds-pushevent=true lands the event in core-data;
devices are validated with device-virtual over the bus; autoEvents publish; core-command answers 423 for a locked
device and 503 for one whose device service is not running, as EdgeX does."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import redis.asyncio as aioredis
import yaml

from core_command.main import create_app as create_command_app
from core_command.settings import CoreCommandSettings
from core_metadata.main import create_app as create_metadata_app
from device_virtual.main import RES_DIR
from device_virtual.main import create_app as create_virtual_app
from device_virtual.settings import DeviceVirtualSettings
from edgeplane_common.embedded import free_port
from tests.support.core_data import core_data_settings, running
from tests.support.metadata import metadata_settings
from tests.support.stack import serve, wait_until

RES_DEVICES = yaml.safe_load(next((RES_DIR / "devices").glob("*.yaml")).read_text())["deviceList"]
RES_PROFILES = {
    p["name"]: p for p in (yaml.safe_load(path.read_text()) for path in sorted((RES_DIR / "profiles").glob("*.yaml")))
}


@dataclass
class Stack:
    metadata: httpx.AsyncClient
    virtual: httpx.AsyncClient
    command: httpx.AsyncClient
    data: httpx.AsyncClient


@pytest.fixture
async def stack(nats_url: str, redis_url: str) -> AsyncIterator[Stack]:
    r = aioredis.from_url(redis_url)
    await r.flushdb()
    await r.aclose()
    async with AsyncExitStack() as es:
        md_url = await es.enter_async_context(serve(create_metadata_app(metadata_settings(nats_url, redis_url))))
        metadata = await es.enter_async_context(httpx.AsyncClient(base_url=md_url + "/api/v3", timeout=10))
        _, data = await es.enter_async_context(
            running(core_data_settings(nats_url, redis_url, ingest={"enabled": True}, metadata_url=md_url))
        )
        port = free_port()
        settings = DeviceVirtualSettings.model_validate(
            {"nats": {"url": nats_url}, "metadata_url": md_url, "http": {"host": "127.0.0.1", "port": port}}
        )
        ds_url = await es.enter_async_context(serve(create_virtual_app(settings), port))
        virtual = await es.enter_async_context(httpx.AsyncClient(base_url=ds_url + "/api/v3", timeout=10))
        cc_port = free_port()
        cc_settings = CoreCommandSettings.model_validate(
            {"nats": {"url": nats_url}, "metadata_url": md_url, "http": {"host": "127.0.0.1", "port": cc_port}}
        )
        cc_url = await es.enter_async_context(serve(create_command_app(cc_settings), cc_port))
        command = await es.enter_async_context(httpx.AsyncClient(base_url=cc_url + "/api/v3", timeout=10))
        data.base_url = httpx.URL("http://core-data/api/v3")
        yield Stack(metadata, virtual, command, data)


def readings(r: httpx.Response) -> dict[str, dict[str, Any]]:
    assert r.status_code == 200, r.text
    return {x["resourceName"]: x for x in r.json()["event"]["readings"]}


def path(device: str, command: str) -> str:
    return f"/device/name/{quote(device, safe='')}/{quote(command, safe='')}"


async def read(client: httpx.AsyncClient, device: str, command: str, **params: str) -> dict[str, dict[str, Any]]:
    return readings(await client.get(path(device, command), params=params))


async def write(client: httpx.AsyncClient, device: str, command: str, body: dict[str, Any]) -> None:
    r = await client.put(path(device, command), json=body)
    assert r.status_code == 200, r.text
    assert r.json()["statusCode"] == 200


async def add_device(stack: Stack, name: str, profile: str, probe: str, **extra: Any) -> None:
    body = {
        "apiVersion": "v3",
        "device": {
            "name": name,
            "serviceName": "device-virtual",
            "profileName": profile,
            "adminState": "UNLOCKED",
            "operatingState": "UP",
            "protocols": {"other": {"Address": name}},
            **extra,
        },
    }
    r = await stack.metadata.post("/device", json=[body])
    assert r.json()[0]["statusCode"] == 201, r.text

    async def known() -> bool:
        return (await stack.virtual.get(path(name, probe))).status_code == 200

    await wait_until(known)


async def test_res_profiles_and_devices_are_provisioned_and_every_resource_reads(stack: Stack) -> None:
    r = await stack.metadata.get("/device/service/name/device-virtual", params={"limit": "-1"})
    assert r.status_code == 200, r.text
    assert {d["name"] for d in r.json()["devices"]} == {d["name"] for d in RES_DEVICES}
    for device in RES_DEVICES:
        profile = RES_PROFILES[device["profileName"]]
        for res in profile["deviceResources"]:
            got = (await read(stack.virtual, device["name"], res["name"]))[res["name"]]
            vt = res["properties"]["valueType"]
            assert got["valueType"] == vt
            if vt == "Binary":
                assert len(base64.b64decode(got["binaryValue"], altchars=b"-_")) == 64
            elif vt in ("Object", "ObjectArray"):
                assert isinstance(got["objectValue"], dict if vt == "Object" else list)
            else:
                assert got["value"]
            low, high = res["properties"].get("minimum"), res["properties"].get("maximum")
            if low is not None and vt.startswith(("Int", "Uint", "Float")) and not vt.endswith("Array"):
                assert float(low) <= float(got["value"]) <= float(high), res["name"]


async def test_written_values_read_back_over_rest_and_through_core_command(stack: Stack) -> None:
    dev = "Virtual-Integer-Device"
    # Over the device service's own REST API.
    await write(stack.virtual, dev, "Int8", {"Int8": "-7"})
    assert (await read(stack.virtual, dev, "Int8"))["Int8"]["value"] == "-7"
    assert (await read(stack.virtual, dev, "EnableRandomization_Int8"))["EnableRandomization_Int8"]["value"] == "false"

    # Through core-command: REST -> NATS request/reply -> device-virtual, and back.
    await write(stack.command, dev, "WriteInt32", {"Int32": "123456"})
    for _ in range(3):
        assert (await read(stack.command, dev, "Int32"))["Int32"]["value"] == "123456"
    await write(stack.command, dev, "Int16Array", {"Int16Array": "[1, -2, 3]"})
    assert (await read(stack.command, dev, "Int16Array"))["Int16Array"]["value"] == "[1, -2, 3]"
    await write(stack.command, "Virtual-Float-Device", "Float64", {"Float64": 0.25})
    assert (await read(stack.command, "Virtual-Float-Device", "Float64"))["Float64"]["value"] == "2.5e-01"

    # Randomization back on: the written value is gone after some reads.
    await write(stack.command, dev, "EnableRandomization_Int32", {"EnableRandomization_Int32": "true"})
    values = {(await read(stack.command, dev, "Int32"))["Int32"]["value"] for _ in range(5)}
    assert values - {"123456"}

    # Out of range, unknown device or command, read-only switch semantics: EdgeX's statuses.
    r = await stack.command.put(path(dev, "Int8"), json={"Int8": "101"})
    assert r.status_code == 400, r.text
    assert (await stack.command.get(path("nope", "Int8"))).status_code == 404
    assert (await stack.command.get(path(dev, "Nope"))).status_code == 404


async def test_randomization_switched_off_keeps_the_value_read_last(stack: Stack) -> None:
    dev = "Virtual-UnsignedInteger-Device"
    last = (await read(stack.command, dev, "Uint64"))["Uint64"]["value"]
    await write(stack.command, dev, "EnableRandomization_Uint64", {"EnableRandomization_Uint64": "false"})
    assert {(await read(stack.command, dev, "Uint64"))["Uint64"]["value"] for _ in range(3)} == {last}


async def test_ds_pushevent_lands_the_event_in_core_data(stack: Stack) -> None:
    dev = "Virtual-Float-Device"
    r = await stack.command.get(path(dev, "Floats"), params={"ds-pushevent": "true"})
    assert r.status_code == 200, r.text
    returned = r.json()["event"]

    async def stored() -> list[dict[str, Any]]:
        got = await stack.data.get(f"/event/device/name/{dev}", params={"limit": "-1"})
        return [e for e in got.json().get("events", []) if e["id"] == returned["id"]]

    (event,) = await wait_until(stored)
    assert event["sourceName"] == "Floats"
    assert {x["resourceName"]: x["value"] for x in event["readings"]} == {
        x["resourceName"]: x["value"] for x in returned["readings"]
    }

    # ds-returnevent=false: nothing returned, still pushed.
    r = await stack.command.get(path(dev, "Float32"), params={"ds-pushevent": "true", "ds-returnevent": "false"})
    assert r.json() == {"apiVersion": "v3", "statusCode": 200}

    async def pushed() -> bool:
        got = await stack.data.get(f"/event/device/name/{dev}", params={"limit": "-1"})
        return any(e["sourceName"] == "Float32" for e in got.json().get("events", []))

    await wait_until(pushed)

    # The same switches on device-virtual's own REST API.
    r = await stack.virtual.get(path(dev, "Float64"), params={"ds-pushevent": "true"})
    pushed_id = r.json()["event"]["id"]

    async def pushed_over_rest() -> bool:
        got = await stack.data.get(f"/event/device/name/{dev}", params={"limit": "-1"})
        return any(e["id"] == pushed_id for e in got.json().get("events", []))

    await wait_until(pushed_over_rest)


async def test_a_profile_created_at_run_time_with_spaces_and_chinese_names_is_served(stack: Stack) -> None:
    profile = {
        "apiVersion": "v3",
        "profile": {
            "name": "Runtime-Profile",
            "deviceResources": [
                {
                    "name": "温度 传感器",
                    "properties": {"valueType": "Float32", "readWrite": "RW", "minimum": -10, "maximum": 50},
                },
                {"name": "Pump Speed", "properties": {"valueType": "Uint16", "readWrite": "RW", "maximum": 3000}},
                {"name": "EnableRandomization_温度 传感器", "properties": {"valueType": "Bool", "readWrite": "RW"}},
            ],
            "deviceCommands": [
                {
                    "name": "读取 全部",
                    "readWrite": "RW",
                    "resourceOperations": [{"deviceResource": "温度 传感器"}, {"deviceResource": "Pump Speed"}],
                }
            ],
        },
    }
    r = await stack.metadata.post("/deviceprofile", json=[profile])
    assert r.json()[0]["statusCode"] == 201, r.text
    await add_device(stack, "runtime-dev", "Runtime-Profile", "读取 全部")

    for client in (stack.virtual, stack.command):
        got = await read(client, "runtime-dev", "读取 全部")
        assert set(got) == {"温度 传感器", "Pump Speed"}
        assert -10 <= float(got["温度 传感器"]["value"]) <= 50
        assert 0 <= int(got["Pump Speed"]["value"]) <= 3000

    await write(stack.command, "runtime-dev", "读取 全部", {"温度 传感器": "21.5", "Pump Speed": "1500"})
    got = await read(stack.command, "runtime-dev", "读取 全部")
    assert (got["温度 传感器"]["value"], got["Pump Speed"]["value"]) == ("2.15e+01", "1500")
    await write(
        stack.virtual, "runtime-dev", "EnableRandomization_温度 传感器", {"EnableRandomization_温度 传感器": "true"}
    )
    values = {(await read(stack.virtual, "runtime-dev", "温度 传感器"))["温度 传感器"]["value"] for _ in range(5)}
    assert values - {"2.15e+01"}


async def test_devices_are_validated_with_device_virtual_and_any_protocols_pass(stack: Stack) -> None:
    # Validation is a bus request to the running device-virtual; it accepts any protocols (as EdgeX's).
    await add_device(stack, "odd-protocols", "Virtual-Bool", "Bool", protocols={"whatever": {"Anything": "1"}})
    got = await read(stack.command, "odd-protocols", "Bools")
    assert set(got) == {"Bool", "BoolArray"}


async def test_autoevents_reach_core_data(stack: Stack) -> None:
    await add_device(
        stack, "auto-dev", "Virtual-Float", "Float32", autoEvents=[{"interval": "100ms", "sourceName": "Float32"}]
    )

    async def events() -> bool:
        got = await stack.data.get("/event/count/device/name/auto-dev")
        return int(got.json()["count"]) >= 3

    await wait_until(events, timeout=15)


async def test_core_command_answers_423_for_a_locked_device_and_503_when_its_service_is_not_running(
    stack: Stack,
) -> None:
    dev = "Virtual-Integer-Device"
    patch = [{"apiVersion": "v3", "device": {"name": dev, "adminState": "LOCKED"}}]
    assert (await stack.metadata.patch("/device", json=patch)).json()[0]["statusCode"] == 200

    async def locked() -> bool:  # core-command's cache learns of it from the system event
        return (await stack.command.get(path(dev, "Int8"))).status_code == 423

    await wait_until(locked)
    assert (await stack.command.put(path(dev, "Int8"), json={"Int8": "1"})).status_code == 423
    patch[0]["device"]["adminState"] = "UNLOCKED"
    assert (await stack.metadata.patch("/device", json=patch)).json()[0]["statusCode"] == 200

    async def unlocked() -> bool:
        return (await stack.command.get(path(dev, "Int8"))).status_code == 200

    await wait_until(unlocked)

    # A device whose device service is registered but not running: nobody answers its command subject.
    service = {"apiVersion": "v3", "service": {"name": "device-virtual-off", "baseAddress": "http://127.0.0.1:9"}}
    assert (await stack.metadata.post("/deviceservice", json=[service])).json()[0]["statusCode"] == 201
    body = {
        "apiVersion": "v3",
        "device": {
            "name": "orphan",
            "serviceName": "device-virtual-off",
            "profileName": "Virtual-Integer",
            "adminState": "UNLOCKED",
            "operatingState": "UP",
            "protocols": {"other": {"Address": "orphan"}},
        },
    }
    assert (await stack.metadata.post("/device", json=[body])).json()[0]["statusCode"] == 201
    r = await stack.command.get(path("orphan", "Int8"))
    assert r.status_code == 503, r.text
    assert "device-virtual-off" in r.json()["message"]
