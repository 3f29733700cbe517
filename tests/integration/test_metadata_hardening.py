"""core-metadata against hostile input (issue 9: findings 1, 2, 3, 7 and 9), on the real NATS and Redis.

Long and path-walking names are refused with 400 naming the field before anything reaches a store key or a
NATS subject; YAML alias and merge-key bombs are refused before they expand; a PATCH whose merged entity is
invalid is a 400 for that item and writes nothing; a 17,000-device batch leaves ping responsive.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import psutil
import pytest

from edgeplane_common.bus import MessageEnvelope
from edgeplane_common.bus.nats import NatsMessageBus
from edgeplane_common.settings import NatsSettings
from tests.integration.test_metadata_api import PROFILE_NAME, device_body, seed, snapshot

LONG = "n" * 10_000
SERVICE = {"name": "device-modbus", "baseAddress": "http://device-modbus:59901", "adminState": "UNLOCKED"}
RESOURCE = {"name": "r", "properties": {"valueType": "Int16", "readWrite": "RW"}}
COMMAND = {"name": "c", "readWrite": "RW", "resourceOperations": [{"deviceResource": "r"}]}
WATCHER = {
    "name": "w1",
    "serviceName": "device-modbus",
    "identifiers": {"Address": "10\\.0\\..*"},
    "discoveredDevice": {"profileName": PROFILE_NAME, "adminState": "UNLOCKED"},
}


def req(key: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v3", key: body}


def item_statuses(r: httpx.Response) -> list[int]:
    assert r.status_code == 207, r.text
    return [item["statusCode"] for item in r.json()]


def refused(r: httpx.Response, field: str) -> None:
    """A 400 for the whole request, or a 207 whose only item is a 400; the message names `field`."""
    if r.status_code == 207:
        (item,) = r.json()
        status, message = item["statusCode"], item["message"]
    else:
        status, message = r.status_code, r.json()["message"]
    assert status == 400, r.text[:500]
    assert field in message, message[:500]
    assert len(message) < 1000, "the 10,000-character name is not echoed back whole"


async def watcher_seed(client: httpx.AsyncClient) -> None:
    await seed(client)
    r = await client.post("/api/v3/provisionwatcher", json=[req("provisionwatcher", WATCHER)])
    assert item_statuses(r) == [201]
    r = await client.post("/api/v3/device?bypassValidation=true", json=[device_body("d1")])
    assert item_statuses(r) == [201]


async def test_a_10000_character_name_is_400_on_every_entity_route(metadata: httpx.AsyncClient) -> None:
    await watcher_seed(metadata)
    before = await snapshot(metadata)
    posts: list[tuple[str, dict[str, Any], str]] = [
        ("/api/v3/deviceservice", req("service", {**SERVICE, "name": LONG}), "device service name"),
        (
            "/api/v3/deviceprofile",
            req("profile", {"name": LONG, "deviceResources": [RESOURCE], "deviceCommands": [COMMAND]}),
            "profile name",
        ),
        ("/api/v3/device", device_body(LONG), "device name"),
        ("/api/v3/device", device_body("ok", profileName=LONG), "profile name"),
        ("/api/v3/device", device_body("ok", serviceName=LONG), "device service name"),
        ("/api/v3/device", device_body("ok", parent=LONG), "device name"),
        (
            "/api/v3/device",
            device_body("ok", autoEvents=[{"interval": "1s", "sourceName": LONG}]),
            "source name",
        ),
        ("/api/v3/provisionwatcher", req("provisionwatcher", {**WATCHER, "name": LONG}), "provision watcher name"),
        (
            "/api/v3/deviceprofile/resource",
            {"apiVersion": "v3", "profileName": PROFILE_NAME, "resource": {**RESOURCE, "name": LONG}},
            "device resource name",
        ),
        (
            "/api/v3/deviceprofile/resource",
            {"apiVersion": "v3", "profileName": LONG, "resource": RESOURCE},
            "profile name",
        ),
        (
            "/api/v3/deviceprofile/deviceCommand",
            {"apiVersion": "v3", "profileName": PROFILE_NAME, "deviceCommand": {**COMMAND, "name": LONG}},
            "device command name",
        ),
    ]
    for path, body, field in posts:
        refused(await metadata.post(path, json=[body]), field)
    upload = f"name: {LONG}\ndeviceResources: []\n".encode()
    refused(await metadata.post("/api/v3/deviceprofile/uploadfile", files={"file": ("p.yaml", upload)}), "name")

    patches = [
        ("/api/v3/device", req("device", {"name": LONG, "description": "x"}), "device name"),
        ("/api/v3/deviceservice", req("service", {"name": LONG, "description": "x"}), "device service name"),
        ("/api/v3/provisionwatcher", req("provisionwatcher", {"name": LONG}), "provision watcher name"),
        ("/api/v3/deviceprofile/basicinfo", req("basicinfo", {"name": LONG, "model": "x"}), "profile name"),
    ]
    for path, body, field in patches:
        refused(await metadata.patch(path, json=[body]), field)

    by_name = [
        ("get", "/api/v3/device/name/{}", "name"),
        ("delete", "/api/v3/device/name/{}", "name"),
        ("get", "/api/v3/device/check/name/{}", "name"),
        ("get", "/api/v3/device/profile/name/{}", "name"),
        ("get", "/api/v3/device/service/name/{}", "name"),
        ("get", "/api/v3/deviceprofile/name/{}", "name"),
        ("delete", "/api/v3/deviceprofile/name/{}", "name"),
        ("delete", f"/api/v3/deviceprofile/name/{PROFILE_NAME}/resource/{{}}", "resource_name"),
        ("delete", f"/api/v3/deviceprofile/name/{PROFILE_NAME}/deviceCommand/{{}}", "command_name"),
        ("get", f"/api/v3/deviceresource/profile/{PROFILE_NAME}/resource/{{}}", "resource_name"),
        ("get", "/api/v3/deviceresource/profile/{}/resource/r", "profile_name"),
        ("get", "/api/v3/deviceservice/name/{}", "name"),
        ("delete", "/api/v3/deviceservice/name/{}", "name"),
        ("get", "/api/v3/provisionwatcher/name/{}", "name"),
        ("delete", "/api/v3/provisionwatcher/name/{}", "name"),
        ("get", "/api/v3/provisionwatcher/service/name/{}", "name"),
        ("get", "/api/v3/provisionwatcher/profile/name/{}", "name"),
    ]
    for method, template, param in by_name:
        r = await metadata.request(method.upper(), template.format(LONG))
        assert r.status_code == 400, (template, r.text[:300])
        assert f"path.{param}:" in r.json()["message"], r.text[:300]
        assert "too long" in r.json()["message"], r.text[:300]
    assert await snapshot(metadata) == before


async def test_after_refused_names_core_metadata_still_publishes(metadata: httpx.AsyncClient, nats_url: str) -> None:
    """The refused names never reached a subject: core-metadata's NATS connection still carries system events."""
    bus = NatsMessageBus(NatsSettings(url=nats_url), name="hardening-listener")
    await bus.connect()
    got: list[str] = []

    async def on_event(env: MessageEnvelope) -> None:
        got.append(env.received_topic or "")

    sub = await bus.subscribe("edgex.system-events.>", on_event)
    try:
        await seed(metadata)
        refused(await metadata.post("/api/v3/device?bypassValidation=true", json=[device_body(LONG)]), "device name")
        r = await metadata.post("/api/v3/device?bypassValidation=true", json=[device_body("after-long")])
        assert item_statuses(r) == [201]
        for _ in range(100):
            if any(s.endswith(".device.add.device-modbus." + PROFILE_NAME) for s in got):
                break
            await asyncio.sleep(0.05)
    finally:
        await sub.unsubscribe()
        await bus.close()
    assert f"edgex.system-events.core-metadata.device.add.device-modbus.{PROFILE_NAME}" in got


@pytest.mark.parametrize("name", [".", "..", "../..", "a/b", "tab\there", "new\nline"])
async def test_path_walking_and_control_names_are_refused(metadata: httpx.AsyncClient, name: str) -> None:
    await seed(metadata)
    refused(await metadata.post("/api/v3/device?bypassValidation=true", json=[device_body(name)]), "device name")


async def test_edgex_taf_unicode_and_spaced_names_are_accepted(metadata: httpx.AsyncClient) -> None:
    """What EdgeX's TAF suite creates: Chinese device, profile and watcher names; spaces in resources/commands."""
    await add_service_only(metadata)
    profile = {
        "name": "测试中文設備資料名称",
        "deviceResources": [{**RESOURCE, "name": "中文测试资源 UINT16"}],
        "deviceCommands": [
            {
                **COMMAND,
                "name": "中文测试命令 UINT16",
                "resourceOperations": [{"deviceResource": "中文测试资源 UINT16"}],
            }
        ],
    }
    r = await metadata.post("/api/v3/deviceprofile", json=[req("profile", profile)])
    assert item_statuses(r) == [201]
    device = device_body("测试中文設備名称", profileName=profile["name"])
    r = await metadata.post("/api/v3/device?bypassValidation=true", json=[device])
    assert item_statuses(r) == [201]
    watcher = {**WATCHER, "name": "自动寻找監測", "discoveredDevice": {"profileName": profile["name"]}}
    r = await metadata.post("/api/v3/provisionwatcher", json=[req("provisionwatcher", watcher)])
    assert item_statuses(r) == [201]
    r = await metadata.get("/api/v3/deviceresource/profile/测试中文設備資料名称/resource/中文测试资源 UINT16")
    assert r.status_code == 200, r.text


async def add_service_only(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v3/deviceservice", json=[req("service", SERVICE)])
    assert item_statuses(r) == [201]


def alias_bomb(levels: int) -> bytes:
    """EdgeX-shaped profile with `levels` levels of 9 aliases each inside one resource's attributes."""
    anchors = ["      a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    anchors += [f"      a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return (
        "name: bomb\ndeviceResources:\n  - name: r\n    properties: {valueType: Int16, readWrite: R}\n"
        "    attributes:\n" + "\n".join(anchors) + "\n"
    ).encode()


def merge_bomb(levels: int) -> bytes:
    maps = ["      m0: &m0 {k: v}"]
    maps += [f"      m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * 9)}]}}" for i in range(1, levels)]
    return (
        "name: bomb\ndeviceResources:\n  - name: r\n    properties: {valueType: Int16, readWrite: R}\n"
        "    attributes:\n" + "\n".join(maps) + "\n"
    ).encode()


@pytest.mark.parametrize("doc", [alias_bomb(7), alias_bomb(9), merge_bomb(9)], ids=["alias7", "alias9", "merge9"])
async def test_yaml_bombs_are_refused_before_they_expand(metadata: httpx.AsyncClient, doc: bytes) -> None:
    assert len(doc) < 1000
    process = psutil.Process()
    rss_before = process.memory_info().rss
    for method in ("POST", "PUT"):
        # A hang guard, not a timing assertion: the refusal takes milliseconds.
        r = await asyncio.wait_for(
            metadata.request(method, "/api/v3/deviceprofile/uploadfile", files={"file": ("bomb.yaml", doc)}), 30
        )
        assert r.status_code == 400, r.text
        assert "expands to more than" in r.json()["message"]
    grown = process.memory_info().rss - rss_before
    assert grown < 50 * 1024 * 1024, f"RSS grew by {grown // 2**20} MiB"
    assert (await metadata.get("/api/v3/deviceprofile/name/bomb")).status_code == 404


async def test_too_many_resources_and_too_deep_documents_are_400(metadata_app_factory: Any) -> None:
    client = await metadata_app_factory(max_profile_resources=3)
    resources = "".join(f"  - name: r{i}\n    properties: {{valueType: Int16, readWrite: R}}\n" for i in range(4))
    r = await client.post(
        "/api/v3/deviceprofile/uploadfile", files={"file": ("p.yaml", f"name: p\ndeviceResources:\n{resources}")}
    )
    assert r.status_code == 400, r.text
    assert "at most 3" in r.json()["message"]
    body = {"name": "p", "deviceResources": [{**RESOURCE, "name": f"r{i}"} for i in range(4)]}
    r = await client.post("/api/v3/deviceprofile", json=[req("profile", body)])
    assert item_statuses(r) == [400]
    assert "at most 3" in r.json()[0]["message"]
    deep = b"name: p\nlabels: " + b"[" * 200 + b"]" * 200
    r = await client.post("/api/v3/deviceprofile/uploadfile", files={"file": ("p.yaml", deep)})
    assert r.status_code == 400, r.text
    assert "deeper than" in r.json()["message"]


async def read(client: httpx.AsyncClient, path: str, key: str) -> dict[str, Any]:
    r = await client.get(path)
    assert r.status_code == 200, r.text
    entity: dict[str, Any] = r.json()[key]
    return entity


@pytest.mark.parametrize(
    ("path", "key", "changes", "needle"),
    [
        ("/api/v3/provisionwatcher", "provisionwatcher", {"identifiers": {"Address": "(["}}, "regular expression"),
        ("/api/v3/provisionwatcher", "provisionwatcher", {"serviceName": None}, "serviceName cannot be null"),
        ("/api/v3/device", "device", {"adminState": None}, "adminState cannot be null"),
        ("/api/v3/device", "device", {"profileName": None}, "profileName cannot be null"),
        ("/api/v3/device", "device", {"serviceName": None}, "serviceName cannot be null"),
        ("/api/v3/deviceservice", "service", {"baseAddress": None}, "baseAddress cannot be null"),
    ],
)
async def test_invalid_patch_is_400_for_that_item_and_writes_nothing(
    metadata: httpx.AsyncClient, path: str, key: str, changes: dict[str, Any], needle: str
) -> None:
    await watcher_seed(metadata)
    names = {"provisionwatcher": "w1", "device": "d1", "service": "device-modbus"}
    by_name = {"provisionwatcher": "provisionwatcher", "device": "device", "service": "deviceservice"}
    read_path, read_key = f"/api/v3/{by_name[key]}/name/{names[key]}", {"service": "service"}.get(key, key)
    read_key = "provisionWatcher" if key == "provisionwatcher" else read_key
    before = await read(metadata, read_path, read_key)
    valid = req(key, {"name": names[key], "labels": ["patched"]})
    invalid = req(key, {"name": names[key], **changes})
    r = await metadata.patch(f"{path}?bypassValidation=true", json=[invalid])
    assert item_statuses(r) == [400]
    assert needle in r.json()[0]["message"], r.text
    assert await read(metadata, read_path, read_key) == before
    # A batch [valid, invalid]: each its own status, the valid one applied, the invalid one not.
    r = await metadata.patch(f"{path}?bypassValidation=true", json=[valid, invalid])
    assert item_statuses(r) == [200, 400]
    after = await read(metadata, read_path, read_key)
    assert after["labels"] == ["patched"]
    assert {k: v for k, v in after.items() if k not in ("labels", "modified")} == {
        k: v for k, v in before.items() if k not in ("labels", "modified")
    }


@pytest.mark.parametrize(
    ("path", "key", "read_path", "read_key"),
    [
        ("/api/v3/device", "device", "/api/v3/device/id/{}", "device"),
        ("/api/v3/deviceservice", "service", "/api/v3/deviceservice/name/device-modbus", "service"),
        ("/api/v3/provisionwatcher", "provisionwatcher", "/api/v3/provisionwatcher/name/w1", "provisionWatcher"),
    ],
)
async def test_patch_by_id_to_a_path_walking_name_is_400(
    metadata: httpx.AsyncClient, path: str, key: str, read_path: str, read_key: str
) -> None:
    await watcher_seed(metadata)
    device_id = (await read(metadata, "/api/v3/device/name/d1", "device"))["id"]
    entity = await read(metadata, read_path.format(device_id), read_key)
    before = await snapshot(metadata)
    r = await metadata.patch(f"{path}?bypassValidation=true", json=[req(key, {"id": entity["id"], "name": "../.."})])
    # The name fails the DTO's rules, so (as EdgeX) the whole request is refused, not one element.
    assert r.status_code == 400, r.text
    assert "name" in r.json()["message"]
    assert await snapshot(metadata) == before


@pytest.mark.parametrize(
    ("path", "key", "changes", "needle"),
    [
        ("/api/v3/provisionwatcher", "provisionwatcher", {"identifiers": {}}, "identifiers"),
        ("/api/v3/provisionwatcher", "provisionwatcher", {"name": ""}, "name"),
        ("/api/v3/device", "device", {"name": ""}, "name"),
        ("/api/v3/device", "device", {"serviceName": ""}, "serviceName"),
        ("/api/v3/deviceservice", "service", {"name": ""}, "name"),
        ("/api/v3/deviceservice", "service", {"baseAddress": ""}, "baseAddress"),
    ],
)
async def test_patch_failing_dto_rules_refuses_the_whole_batch(
    metadata: httpx.AsyncClient, path: str, key: str, changes: dict[str, Any], needle: str
) -> None:
    """EdgeX validates every element's DTO before any work: one bad element makes the request a 400 and none
    of the batch is applied (TAF ErrDevicePATCH002/005, ErrDevicePATCHValidate002/003, ErrProWatcherPATCH001/002)."""
    await watcher_seed(metadata)
    before = await snapshot(metadata)
    names = {"provisionwatcher": "w1", "device": "d1", "service": "device-modbus"}
    valid = req(key, {"name": names[key], "labels": ["patched"]})
    invalid = req(key, {"name": names[key], **changes})
    r = await metadata.patch(f"{path}?bypassValidation=true", json=[valid, invalid])
    assert r.status_code == 400, r.text
    assert needle in r.json()["message"], r.text
    assert await snapshot(metadata) == before


async def test_invalid_profile_patches_are_400(metadata: httpx.AsyncClient) -> None:
    await seed(metadata)
    before = await snapshot(metadata)
    profile = await read(metadata, f"/api/v3/deviceprofile/name/{PROFILE_NAME}", "profile")
    resource = profile["deviceResources"][0]["name"]
    r = await metadata.patch(
        "/api/v3/deviceprofile/resource",
        json=[{"apiVersion": "v3", "profileName": PROFILE_NAME, "resource": {"name": resource, "isHidden": None}}],
    )
    assert item_statuses(r) == [400], r.text
    assert await snapshot(metadata) == before


async def test_ping_stays_responsive_during_a_17000_device_batch(metadata: httpx.AsyncClient) -> None:
    await seed(metadata)
    body = [device_body(f"bulk-{i}") for i in range(17_000)]
    latencies: list[float] = []

    async def ping_until(done: asyncio.Event) -> None:
        while not done.is_set():
            start = time.perf_counter()
            assert (await metadata.get("/api/v3/ping")).status_code == 200
            latencies.append(time.perf_counter() - start)
            await asyncio.sleep(0.02)

    done = asyncio.Event()
    pinger = asyncio.create_task(ping_until(done))
    await asyncio.sleep(0)
    r = await metadata.post("/api/v3/device?bypassValidation=true", json=body)
    done.set()
    await pinger
    assert set(item_statuses(r)) == {201}
    assert (await metadata.get("/api/v3/device/all", params={"limit": 1})).json()["totalCount"] == 17_000
    assert latencies
    # A generous bound, not a benchmark (bench/metadata_batch_bench.py has the figures).
    assert max(latencies) < 2.0, f"ping took up to {max(latencies):.2f} s during the batch"
