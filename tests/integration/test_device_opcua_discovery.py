"""Discovery and EdgeX conformance for device-opcua: a browsed profile loads into core-metadata and reads the
browsed values; provision watchers add discovered servers; EdgeX's sample OpcuaServer.yaml reads real values
from the simulator file that serves its node ids; `edgeplane opcua browse` writes the profile."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from device_opcua.browse import browse_endpoint
from device_opcua.sim import OpcuaSimulator, load_config
from tests.support.opcua import DEMO_SIM, EDGEX_SIM, add_device, opcua_device, opcua_stack, readings
from tests.support.reference import REFERENCE, needs_reference
from tests.support.stack import wait_until


@pytest.fixture(scope="module")
async def sim() -> AsyncIterator[OpcuaSimulator]:
    async with OpcuaSimulator(load_config(DEMO_SIM), "127.0.0.1", 0, tick_interval=0.2) as s:
        yield s


@pytest.fixture(scope="module")
async def edgex_sim() -> AsyncIterator[OpcuaSimulator]:
    async with OpcuaSimulator(load_config(EDGEX_SIM), "127.0.0.1", 0, tick_interval=0.2) as s:
        yield s


async def test_browsed_profile_loads_and_reads_the_browsed_values(
    nats_url: str, redis_url: str, sim: OpcuaSimulator
) -> None:
    profile = await browse_endpoint(sim.url, start="ns=2;s=Types", name="Browsed-Types")
    by_name = {r["name"]: r for r in profile["deviceResources"]}
    assert by_name["UInt64"]["properties"] == {"valueType": "Uint64", "readWrite": "RW"}
    assert by_name["Int32Array"]["properties"]["valueType"] == "Int32Array"
    assert by_name["ByteString"]["properties"]["valueType"] == "Binary"
    assert by_name["ByteString"]["properties"]["readWrite"] == "R"  # EdgeX: Binary is read-only
    assert by_name["ByNumber"]["attributes"] == {"nodeId": "ns=2;i=5001"}
    assert by_name["ByNumber"]["properties"]["readWrite"] == "R"
    assert by_name["ByGuid"]["attributes"]["nodeId"].startswith("ns=2;g=")
    assert by_name["ByOpaque"]["attributes"]["nodeId"] == "ns=2;b=ZWRnZXBsYW5l"

    async with opcua_stack(nats_url, redis_url, profiles=[]) as stack:
        r = await stack.metadata.post("/api/v3/deviceprofile", json=[{"apiVersion": "v3", "profile": profile}])
        assert r.json()[0]["statusCode"] == 201, r.text
        await add_device(stack, opcua_device("browsed", "Browsed-Types", sim.url))
        for name, expected in [("UInt64", "18000000000000000000"), ("ByGuid", "42"), ("String", "hello")]:
            got = readings(await stack.opcua.get(f"/api/v3/device/name/browsed/{name}"))
            assert got[name]["value"] == expected


async def test_provision_watcher_adds_the_discovered_server(nats_url: str, redis_url: str, sim: OpcuaSimulator) -> None:
    async with opcua_stack(nats_url, redis_url, discovery_endpoints=[sim.url, "opc.tcp://127.0.0.1:1/none"]) as stack:
        watcher = {
            "name": "demo-lines",
            "serviceName": "device-opcua",
            "identifiers": {"Endpoint": f":{sim.port}/", "ApplicationUri": "^urn:edgeplane:"},
            "discoveredDevice": {
                "profileName": "Edgeplane-Demo-Line",
                "adminState": "UNLOCKED",
                "autoEvents": [{"interval": "500ms", "sourceName": "LineReadings"}],
            },
        }
        body = [{"apiVersion": "v3", "provisionWatcher": watcher}]
        r = await stack.metadata.post("/api/v3/provisionwatcher", json=body)
        assert r.json()[0]["statusCode"] == 201, r.text
        r = await stack.opcua.post("/api/v3/discovery")
        assert r.status_code == 202, r.text

        async def added() -> list[dict[str, object]]:
            got = await stack.metadata.get("/api/v3/device/service/name/device-opcua")
            return list(got.json().get("devices") or [])

        devices = await wait_until(added, timeout=15)
        assert len(devices) == 1
        device = devices[0]
        assert device["profileName"] == "Edgeplane-Demo-Line"
        assert device["protocols"]["opcua"]["Endpoint"] == sim.url  # type: ignore[index]
        name = str(device["name"])
        await wait_until(lambda: name in stack.app.state.runtime.registry.devices)
        got = readings(await stack.opcua.get(f"/api/v3/device/name/{name}/Recipe"))
        assert got["Recipe"]["valueType"] == "String"


@needs_reference
async def test_edgex_sample_opcua_server_profile_reads_real_values(
    nats_url: str, redis_url: str, edgex_sim: OpcuaSimulator
) -> None:
    assert REFERENCE is not None
    sample = REFERENCE / "edgex-samples" / "opcua" / "OpcuaServer.yaml"
    async with opcua_stack(nats_url, redis_url, profiles=[sample]) as stack:
        await add_device(stack, opcua_device("SimulationServer", "OPCUA-Server", edgex_sim.url))
        constant = readings(await stack.opcua.get("/api/v3/device/name/SimulationServer/ConstantNum"))["Constant"]
        assert (constant["valueType"], constant["value"]) == ("Float64", "1.5e+00")
        first = int(
            readings(await stack.opcua.get("/api/v3/device/name/SimulationServer/CounterNum"))["Counter"]["value"]
        )

        async def counted() -> bool:
            r = await stack.opcua.get("/api/v3/device/name/SimulationServer/CounterNum")
            return int(readings(r)["Counter"]["value"]) > first

        await wait_until(counted)
        random = readings(await stack.opcua.get("/api/v3/device/name/SimulationServer/RandomNum"))["Random"]
        assert 0 <= float(random["value"]) <= 10
        r = await stack.opcua.put("/api/v3/device/name/SimulationServer/ConstantNum", json={"Constant": "7.25"})
        assert r.status_code == 200, r.text
        constant = readings(await stack.opcua.get("/api/v3/device/name/SimulationServer/ConstantNum"))["Constant"]
        assert constant["value"] == "7.25e+00"
        r = await stack.opcua.put("/api/v3/device/name/SimulationServer/CounterNum", json={"Counter": "1"})
        assert r.status_code == 405  # read-only in the sample profile


async def test_cli_browse_writes_a_profile(sim: OpcuaSimulator, tmp_path: Path) -> None:
    out = tmp_path / "line.yaml"
    launcher = Path(sys.executable).with_name("edgeplane")
    proc = await asyncio.create_subprocess_exec(
        str(launcher), "opcua", "browse", sim.url, "--start", "ns=2;s=Line1", "--profile", str(out), "--name", "Line1"
    )
    assert await proc.wait() == 0
    profile = yaml.safe_load(out.read_text())
    assert profile["name"] == "Line1"
    names = [r["name"] for r in profile["deviceResources"]]
    assert names[:4] == ["Temperature", "Pressure", "PartsMade", "Speed"]
    proc = await asyncio.create_subprocess_exec(
        str(launcher), "opcua", "browse", "opc.tcp://127.0.0.1:1/none", stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    assert proc.returncode == 1
    assert b"cannot browse" in err
