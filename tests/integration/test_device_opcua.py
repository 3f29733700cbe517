"""device-opcua end to end: real asyncua simulators, real NATS and Redis, core-metadata over real HTTP."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import pytest
from asyncua import Client

from device_opcua.sim import OpcuaSimulator, load_config
from tests.support.opcua import (
    DEMO_SIM,
    Stack,
    add_device,
    event_log,
    opcua_device,
    opcua_stack,
    operating_state,
    readings,
    upload_profile,
)
from tests.support.stack import wait_until


@pytest.fixture(scope="module")
async def sim() -> AsyncIterator[OpcuaSimulator]:
    async with OpcuaSimulator(load_config(DEMO_SIM), "127.0.0.1", 0, tick_interval=0.1) as s:
        yield s


@pytest.fixture(scope="module")
async def sim2() -> AsyncIterator[OpcuaSimulator]:
    async with OpcuaSimulator(load_config(DEMO_SIM), "127.0.0.1", 0, tick_interval=0.1) as s:
        yield s


@pytest.fixture
async def stack(nats_url: str, redis_url: str) -> AsyncIterator[Stack]:
    async with opcua_stack(nats_url, redis_url) as s:
        yield s


async def test_every_data_type_node_id_form_and_method_reads(stack: Stack, sim: OpcuaSimulator) -> None:
    await add_device(stack, opcua_device("types", "Edgeplane-OPCUA-Types", sim.url))
    got = readings(await stack.opcua.get("/api/v3/device/name/types/AllScalars"))
    assert {k: v["value"] for k, v in got.items() if k != "ByteString"} == {
        "Bool": "true",
        "SByte": "-8",
        "Byte": "200",
        "Int16": "-1234",
        "UInt16": "54321",
        "Int32": "-123456789",
        "UInt32": "4000000000",
        "Int64": "-9000000000000000000",
        "UInt64": "18000000000000000000",
        "Float": "1.5e+00",
        "Double": "2.25e+00",
        "String": "hello",
        "DateTime": "2026-03-01T12:00:00Z",
        "Guid": "72962b91-fa75-4ae6-8d28-b404dc7daf63",
        "LocalizedText": "Kessel 1",
    }
    assert got["Float"]["valueType"] == "Float32"
    assert base64.b64decode(got["ByteString"]["binaryValue"]) == b"bytes"
    one = await stack.opcua.get("/api/v3/device/name/types/DateTimeNs")
    assert readings(one)["DateTimeNs"]["value"] == "1772366400000000000"
    for name, expected in [
        ("Int32Array", "[1, -2, 3]"),
        ("BoolArray", "[true, false]"),
        ("StringArray", '["a","b"]'),
        ("FloatArray", "[5e-01, 1.5e+00]"),
    ]:
        value = readings(await stack.opcua.get(f"/api/v3/device/name/types/{name}"))[name]["value"]
        assert value.replace(" ", "") == expected.replace(" ", ""), name
    for name, expected in [("ByNumber", "44"), ("ByGuid", "42"), ("ByOpaque", "43")]:
        assert readings(await stack.opcua.get(f"/api/v3/device/name/types/{name}"))[name]["value"] == expected
    # Method calls with typed inputs (inputMap text converted to the method's Double / String arguments).
    assert readings(await stack.opcua.get("/api/v3/device/name/types/Add"))["Add"]["value"] == "3.75e+00"
    assert readings(await stack.opcua.get("/api/v3/device/name/types/Greet"))["Greet"]["value"] == "Hello, edgeplane"


async def test_writes_use_the_node_data_type(stack: Stack, sim: OpcuaSimulator) -> None:
    await add_device(stack, opcua_device("line", "Edgeplane-Demo-Line", sim.url))
    r = await stack.opcua.put(
        "/api/v3/device/name/line/Settings",
        json={"Setpoint": "42.5", "Running": "false", "Mode": "3", "Recipe": "PE-80"},
    )
    assert r.status_code == 200, r.text
    r = await stack.opcua.put("/api/v3/device/name/line/Zones", json={"Zones": "[200.5, 201, 202.25]"})
    assert r.status_code == 200, r.text
    r = await stack.opcua.put(
        "/api/v3/device/name/line/LastMaintenance", json={"LastMaintenance": "2026-04-02T10:00:00Z"}
    )
    assert r.status_code == 200, r.text
    async with Client(sim.url) as c:
        assert await c.get_node("ns=2;s=Line1.Setpoint").read_value() == 42.5
        assert await c.get_node("ns=2;s=Line1.Running").read_value() is False
        mode = c.get_node("ns=2;s=Line1.Mode")
        assert (await mode.read_value(), (await mode.read_data_type_as_variant_type()).name) == (3, "Byte")
        assert await c.get_node("ns=2;s=Line1.Recipe").read_value() == "PE-80"
        assert await c.get_node("ns=2;s=Line1.Zones").read_value() == [200.5, 201.0, 202.25]
        when = await c.get_node("ns=2;s=Line1.LastMaintenance").read_value()
        assert when.isoformat().startswith("2026-04-02T10:00:00")
    back = readings(await stack.opcua.get("/api/v3/device/name/line/Settings"))
    assert {k: v["value"] for k, v in back.items()} == {
        "Setpoint": "4.25e+01",
        "Running": "false",
        "Mode": "3",
        "Recipe": "PE-80",
    }
    # The demo's method call and nsu= NodeId.
    got = readings(await stack.opcua.get("/api/v3/device/name/line/LineReadings"))
    assert set(got) == {"Temperature", "Pressure", "PartsMade", "Speed"}
    assert (
        readings(await stack.opcua.get("/api/v3/device/name/line/FirmwareVersion"))["FirmwareVersion"]["value"]
        == "1.4.2"
    )


async def test_bad_input_is_refused_with_a_clear_error(stack: Stack, sim: OpcuaSimulator) -> None:
    # A malformed nodeId: the device add is refused with 400 naming the resource and the problem.
    bad_profile = {
        "apiVersion": "v3",
        "profile": {
            "name": "Bad-Node",
            "deviceResources": [
                {
                    "name": "Broken",
                    "attributes": {"nodeId": "ns=2;q=oops"},
                    "properties": {"valueType": "Int32", "readWrite": "R"},
                }
            ],
        },
    }
    r = await stack.metadata.post("/api/v3/deviceprofile", json=[bad_profile])
    assert r.json()[0]["statusCode"] == 201, r.text
    r = await stack.metadata.post("/api/v3/device", json=[opcua_device("bad", "Bad-Node", sim.url)])
    assert r.json()[0]["statusCode"] == 400
    assert "Broken" in r.json()[0]["message"]
    assert "i= (numeric)" in r.json()[0]["message"]
    # A password in the protocol properties would be readable by anyone: refused.
    body = opcua_device("pw", "Edgeplane-Demo-Line", sim.url, protocol={"Username": "u", "Password": "p"})
    r = await stack.metadata.post("/api/v3/device", json=[body])
    assert r.json()[0]["statusCode"] == 400
    assert "SecretName" in r.json()[0]["message"]
    assert '"p"' not in r.text
    r = await stack.metadata.post("/api/v3/device", json=[opcua_device("tcp", "Edgeplane-Demo-Line", "http://x:1")])
    assert r.json()[0]["statusCode"] == 400
    assert "opc.tcp://" in r.json()[0]["message"]

    # A node that does not exist: a clear 502, and the device stays UP (the server answered).
    missing = {
        "apiVersion": "v3",
        "profile": {
            "name": "Missing-Node",
            "deviceResources": [
                {
                    "name": "Ghost",
                    "attributes": {"nodeId": "ns=2;s=No.Such"},
                    "properties": {"valueType": "Int32", "readWrite": "RW"},
                },
                {
                    "name": "Text",
                    "attributes": {"nodeId": "ns=2;s=Types.String"},
                    "properties": {"valueType": "Int32", "readWrite": "RW"},
                },
                {
                    "name": "Small",
                    "attributes": {"nodeId": "ns=2;s=Types.Byte"},
                    "properties": {"valueType": "Int32", "readWrite": "RW"},
                },
            ],
        },
    }
    r = await stack.metadata.post("/api/v3/deviceprofile", json=[missing])
    assert r.json()[0]["statusCode"] == 201, r.text
    await add_device(stack, opcua_device("ghost", "Missing-Node", sim.url))
    for _ in range(3):
        r = await stack.opcua.get("/api/v3/device/name/ghost/Ghost")
        assert r.status_code == 502
        assert "BadNodeIdUnknown" in r.json()["message"]
        assert "Ghost" in r.json()["message"]
    assert await operating_state(stack, "ghost") == "UP"
    # A String node read into an Int32 resource; a write that does not fit the node's Byte type.
    r = await stack.opcua.get("/api/v3/device/name/ghost/Text")
    assert r.status_code == 500
    assert "String" in r.json()["message"]
    assert "Int32" in r.json()["message"]
    r = await stack.opcua.put("/api/v3/device/name/ghost/Small", json={"Small": "300"})
    assert r.status_code == 400
    assert "Byte" in r.json()["message"]
    assert "0..255" in r.json()["message"]
    r = await stack.opcua.put("/api/v3/device/name/ghost/Text", json={"Text": "7"})
    assert r.status_code == 200  # an integer written to a String node is written as its text

    # An unreachable endpoint: 503 naming the cause, the device goes DOWN, and the others go on.
    await add_device(stack, opcua_device("nowhere", "Edgeplane-Demo-Line", "opc.tcp://127.0.0.1:1/x"))
    r = await stack.opcua.get("/api/v3/device/name/nowhere/Recipe")
    assert r.status_code in (423, 503)
    await wait_until(lambda: operating_state(stack, "nowhere"), timeout=10)
    await wait_until(lambda: _is(stack, "nowhere", "DOWN"), timeout=10)
    r = await stack.opcua.get("/api/v3/device/name/nowhere/Recipe")
    assert r.status_code == 423  # DOWN devices answer 423, as every edgeplane device service
    assert (await stack.opcua.get("/api/v3/device/name/ghost/Small")).status_code == 200


async def _is(stack: Stack, name: str, state: str) -> bool:
    return await operating_state(stack, name) == state


async def test_two_devices_on_two_servers_subscribe_at_once(
    stack: Stack, sim: OpcuaSimulator, sim2: OpcuaSimulator
) -> None:
    async with event_log(stack.nats_url) as log:
        for name, server in [("line-a", sim), ("line-b", sim2)]:
            await add_device(
                stack,
                opcua_device(
                    name,
                    "Edgeplane-Demo-Line",
                    server.url,
                    autoEvents=[{"interval": "100ms", "sourceName": "LineReadings"}],
                ),
            )
        # Each data change is one event of its resource (as EdgeX's device-opcua), pushed without polling.
        for name in ("line-a", "line-b"):
            await wait_until(lambda name=name: len(log.of(name, "PartsMade")) >= 3, timeout=15)
            await wait_until(lambda name=name: len(log.of(name, "Speed")) >= 3, timeout=15)
        runtime = stack.app.state.runtime
        assert runtime.autoevents.tasks["line-a"] == []  # served by the subscription, not polled
        counts = [int(e["readings"][0]["value"]) for e in log.of("line-a", "PartsMade")]
        assert counts == sorted(counts)
        event = log.of("line-b", "Speed")[-1]
        assert event["sourceName"] == "Speed"
        assert event["profileName"] == "Edgeplane-Demo-Line"
        assert event["readings"][0]["valueType"] == "Int16"
        driver = runtime.driver
        assert sum(s.monitored_count for s in driver.sessions.values()) == 8


async def test_profile_with_malformed_node_id_in_the_sample_form_is_named(stack: Stack) -> None:
    r = await upload_profile(stack.metadata, DEMO_SIM.parents[1] / "profiles" / "edgeplane-demo-line.profile.yaml")
    assert r.status_code == 409  # uploaded already by the stack: the same name
