"""core-metadata against real NATS and Redis: semantics, bad input, persistence, system events, validation."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from core_metadata.main import create_app
from device_modbus.main import RES_DIR
from edgeplane_common.bus import MessageEnvelope
from edgeplane_common.bus.nats import NatsMessageBus
from edgeplane_common.embedded import EmbeddedRedis
from edgeplane_common.settings import NatsSettings
from tests.support.metadata import add_service, metadata_settings, upload_profile

# The repository's own demo profile, so these tests need no reference files.
MODBUS_PROFILE = RES_DIR / "profiles" / "edgeplane-demo-plc.profile.yaml"
PROFILE_NAME = "Edgeplane-Demo-PLC"


def device_body(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v3",
        "device": {
            "name": name,
            "serviceName": "device-modbus",
            "profileName": PROFILE_NAME,
            "adminState": "UNLOCKED",
            "operatingState": "UP",
            "protocols": {"modbus-tcp": {"Address": "127.0.0.1", "Port": 1502, "UnitID": 1}},
            **extra,
        },
    }


async def seed(client: httpx.AsyncClient) -> None:
    await add_service(client)
    r = await upload_profile(client, MODBUS_PROFILE)
    assert r.status_code == 201, r.text


async def snapshot(client: httpx.AsyncClient) -> dict[str, Any]:
    """Everything stored, to prove bad input changed nothing."""
    out = {}
    for path in ("device/all", "deviceprofile/all", "deviceservice/all", "provisionwatcher/all"):
        r = await client.get(f"/api/v3/{path}", params={"limit": -1})
        assert r.status_code == 200
        out[path] = r.json()
    return out


async def test_devices_are_added_in_order_with_per_element_status(metadata: httpx.AsyncClient) -> None:
    await seed(metadata)
    r = await metadata.post(
        "/api/v3/device",
        params={"bypassValidation": "true"},
        json=[
            device_body("d1"),
            device_body("d2", profileName="NoSuchProfile"),
            device_body("d3", serviceName="no-such-service"),
            device_body("d1"),
            device_body("d4", autoEvents=[{"interval": "1s", "sourceName": "NotAResource"}]),
        ],
    )
    assert r.status_code == 207
    codes = [e["statusCode"] for e in r.json()]
    assert codes == [201, 400, 400, 409, 400]
    assert "NoSuchProfile" in r.json()[1]["message"]
    assert "no-such-service" in r.json()[2]["message"]
    assert "NotAResource" in r.json()[4]["message"]
    assert uuid.UUID(r.json()[0]["id"])
    got = await metadata.get("/api/v3/device/name/d1")
    assert got.json()["device"]["protocols"]["modbus-tcp"]["Port"] == 1502


async def test_force_replaces_an_existing_device(metadata: httpx.AsyncClient) -> None:
    await seed(metadata)
    await metadata.post("/api/v3/device?bypassValidation=true", json=[device_body("d1", labels=["old"])])
    r = await metadata.post("/api/v3/device?bypassValidation=true&force=true", json=[device_body("d1", labels=["new"])])
    assert r.json()[0]["statusCode"] == 201
    assert (await metadata.get("/api/v3/device/name/d1")).json()["device"]["labels"] == ["new"]


async def test_patch_applies_only_given_fields(metadata: httpx.AsyncClient) -> None:
    await seed(metadata)
    await metadata.post("/api/v3/device?bypassValidation=true", json=[device_body("d1", labels=["x"])])
    r = await metadata.patch(
        "/api/v3/device?bypassValidation=true",
        json=[
            {"apiVersion": "v3", "device": {"name": "d1", "adminState": "LOCKED"}},
            {"apiVersion": "v3", "device": {"name": "ghost", "adminState": "LOCKED"}},
        ],
    )
    assert [e["statusCode"] for e in r.json()] == [200, 404]
    dev = (await metadata.get("/api/v3/device/name/d1")).json()["device"]
    assert dev["adminState"] == "LOCKED"
    assert dev["labels"] == ["x"]
    assert dev["modified"] >= dev["created"]


async def test_in_use_profile_and_service_cannot_be_deleted(metadata: httpx.AsyncClient) -> None:
    await seed(metadata)
    await metadata.post("/api/v3/device?bypassValidation=true", json=[device_body("d1")])
    r = await metadata.delete(f"/api/v3/deviceprofile/name/{PROFILE_NAME}")
    assert r.status_code == 409
    assert "in use" in r.json()["message"]
    r = await metadata.delete("/api/v3/deviceservice/name/device-modbus")
    assert r.status_code == 409
    assert (await metadata.delete("/api/v3/device/name/d1")).status_code == 200
    assert (await metadata.delete(f"/api/v3/deviceprofile/name/{PROFILE_NAME}")).status_code == 200
    assert (await metadata.delete("/api/v3/deviceservice/name/device-modbus")).status_code == 200
    assert (await metadata.get(f"/api/v3/deviceprofile/name/{PROFILE_NAME}")).status_code == 404


async def test_pagination_follows_edgex(metadata: httpx.AsyncClient) -> None:
    await seed(metadata)
    await metadata.post("/api/v3/device?bypassValidation=true", json=[device_body(f"d{i:02d}") for i in range(25)])
    r = await metadata.get("/api/v3/device/all")
    assert (len(r.json()["devices"]), r.json()["totalCount"]) == (20, 25)
    r = await metadata.get("/api/v3/device/all", params={"limit": -1})
    assert len(r.json()["devices"]) == 25
    r = await metadata.get("/api/v3/device/all", params={"offset": 20, "limit": 10})
    assert [d["name"] for d in r.json()["devices"]] == [f"d{i}" for i in range(20, 25)]
    assert (await metadata.get("/api/v3/device/all", params={"offset": 25})).status_code == 416
    assert (await metadata.get("/api/v3/device/all", params={"offset": -1})).status_code == 400
    assert (await metadata.get("/api/v3/device/all", params={"limit": "abc"})).status_code == 400


async def test_profile_resource_and_command_edits(metadata: httpx.AsyncClient) -> None:
    await seed(metadata)
    new_res = {
        "name": "Humidity",
        "properties": {"valueType": "uint16", "readWrite": "R", "units": "%"},
        "attributes": {"primaryTable": "INPUT_REGISTERS", "startingAddress": 20},
    }
    r = await metadata.post(
        "/api/v3/deviceprofile/resource",
        json=[{"apiVersion": "v3", "profileName": PROFILE_NAME, "resource": new_res}],
    )
    assert r.json()[0]["statusCode"] == 201
    cmd = {"name": "ReadHumidity", "readWrite": "R", "resourceOperations": [{"deviceResource": "Humidity"}]}
    r = await metadata.post(
        "/api/v3/deviceprofile/deviceCommand",
        json=[{"apiVersion": "v3", "profileName": PROFILE_NAME, "deviceCommand": cmd}],
    )
    assert r.json()[0]["statusCode"] == 201
    bad = {**cmd, "name": "WriteHumidity", "readWrite": "W"}
    r = await metadata.post(
        "/api/v3/deviceprofile/deviceCommand",
        json=[{"apiVersion": "v3", "profileName": PROFILE_NAME, "deviceCommand": bad}],
    )
    assert r.json()[0]["statusCode"] == 400
    r = await metadata.delete(f"/api/v3/deviceprofile/name/{PROFILE_NAME}/resource/Humidity")
    assert r.status_code == 400  # EdgeX: the profile without it would be invalid
    assert "ReadHumidity" in r.json()["message"]
    r = await metadata.get(f"/api/v3/deviceresource/profile/{PROFILE_NAME}/resource/Humidity")
    assert r.json()["resource"]["properties"]["valueType"] == "Uint16"
    assert (
        await metadata.delete(f"/api/v3/deviceprofile/name/{PROFILE_NAME}/deviceCommand/ReadHumidity")
    ).status_code == 200
    assert (await metadata.delete(f"/api/v3/deviceprofile/name/{PROFILE_NAME}/resource/Humidity")).status_code == 200
    r = await metadata.get(f"/api/v3/deviceresource/profile/{PROFILE_NAME}/resource/Humidity")
    assert r.status_code == 404


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"name: x\ndeviceResources:\n  - name: a\n   properties: [\n", "line 4"),
        (
            b"name: p2\ndeviceResources:\n  - name: Pressure\n    properties: {valueType: Float128, readWrite: R}\n",
            "Pressure",
        ),
        (b"- just\n- a list\n", "mapping"),
        (b"\xff\xfe\x00garbage", "YAML"),
        (b"", "empty"),
    ],
)
async def test_bad_profile_files_are_clear_400s_and_change_nothing(
    metadata: httpx.AsyncClient, content: bytes, expected: str
) -> None:
    await seed(metadata)
    before = await snapshot(metadata)
    r = await metadata.post("/api/v3/deviceprofile/uploadfile", files={"file": ("p.yaml", content)})
    assert r.status_code == 400, r.text
    assert expected in r.json()["message"]
    assert r.headers["content-type"] == "application/json"
    assert await snapshot(metadata) == before


async def test_duplicate_upload_is_409_and_put_replaces(metadata: httpx.AsyncClient) -> None:
    await seed(metadata)
    assert (await upload_profile(metadata, MODBUS_PROFILE)).status_code == 409
    text = MODBUS_PROFILE.read_text().replace("model: Demo PLC (simulated)", "model: Demo PLC 2")
    r = await metadata.put("/api/v3/deviceprofile/uploadfile", files={"file": ("p.yml", text.encode())})
    assert r.status_code == 200, r.text
    got = (await metadata.get(f"/api/v3/deviceprofile/name/{PROFILE_NAME}")).json()["profile"]
    assert got["model"] == "Demo PLC 2"


async def test_bad_request_bodies_are_4xx_and_change_nothing(metadata: httpx.AsyncClient) -> None:
    await seed(metadata)
    before = await snapshot(metadata)
    cases = [
        (dict(json={"device": {"name": "x"}}), 400, "JSON array"),
        (dict(json=[]), 400, "empty array"),
        (dict(content=b"[{", headers={"content-type": "application/json"}), 400, "not valid JSON"),
        (dict(content=b"name=x", headers={"content-type": "text/plain"}), 415, "Content-Type"),
        (
            dict(json=[{"apiVersion": "v3", "device": {"name": "bad name", "serviceName": "device-modbus"}}]),
            400,
            "device name",
        ),
        (dict(json=[{"apiVersion": "v3"}]), 400, "device"),
    ]
    for kwargs, status, needle in cases:
        r = await metadata.post("/api/v3/device", **kwargs)  # type: ignore[arg-type]
        assert r.status_code == status, (kwargs, r.text)
        assert needle in r.json()["message"], (kwargs, r.text)
    big = b"[" + b" " * (5 * 1024 * 1024) + b"]"
    r = await metadata.post("/api/v3/device", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert "maximum" in r.json()["message"]
    assert await snapshot(metadata) == before


async def test_oversized_profile_file_is_413(metadata_app_factory: Any) -> None:
    client = await metadata_app_factory(max_upload_size=1000)
    r = await client.post("/api/v3/deviceprofile/uploadfile", files={"file": ("p.yaml", b"#" * 2000)})
    assert r.status_code == 413


async def test_json_content_type_is_exact_and_correlation_id_flows(metadata: httpx.AsyncClient) -> None:
    r = await metadata.get("/api/v3/ping", headers={"X-Correlation-ID": "abc-123"})
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-correlation-id"] == "abc-123"
    r = await metadata.get("/api/v3/device/name/none")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/json"
    assert uuid.UUID(r.headers["x-correlation-id"])
    assert r.json() == {"apiVersion": "v3", "statusCode": 404, "message": "device 'none' does not exist"}


async def test_bearer_token_guards_everything_but_ping(metadata_app_factory: Any) -> None:
    client = await metadata_app_factory(http={"port": 59881, "auth_token": "s3cret"})
    assert (await client.get("/api/v3/ping")).status_code == 200
    # Readiness too: container healthchecks ask it without a token.
    assert (await client.get("/api/v3/health")).status_code in (200, 503)
    r = await client.get("/api/v3/device/all")
    assert r.status_code == 401
    assert "bearer token" in r.json()["message"]
    r = await client.get("/api/v3/device/all", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    r = await client.get("/api/v3/device/all", headers={"Authorization": "Bearer s3cret"})
    assert r.status_code == 200
    cfg = (await client.get("/api/v3/config", headers={"Authorization": "Bearer s3cret"})).json()
    assert "s3cret" not in str(cfg)
    assert cfg["config"]["redis"]["url"] == "**********"


async def test_metrics_count_requests(metadata: httpx.AsyncClient) -> None:
    await metadata.get("/api/v3/device/all")
    text = (await metadata.get("/metrics")).text
    assert 'http_requests_total{method="GET",route="/api/v3/device/all",status="200"}' in text


async def test_metadata_survives_a_core_metadata_restart(metadata_app_factory: Any, redis_url: str) -> None:
    import redis.asyncio as aioredis

    r = aioredis.from_url(redis_url)
    await r.flushdb()
    await r.aclose()
    first = await metadata_app_factory()
    await seed(first)
    await first.post("/api/v3/device?bypassValidation=true", json=[device_body("keep-me", labels=["l1"])])
    before = await snapshot(first)
    second = await metadata_app_factory()
    assert await snapshot(second) == before
    assert (await second.get("/api/v3/device/all", params={"labels": "l1"})).json()["totalCount"] == 1


async def test_system_events_are_published_on_edgex_subjects(metadata: httpx.AsyncClient, nats_url: str) -> None:
    bus = NatsMessageBus(NatsSettings(url=nats_url), name="test-listener")
    await bus.connect()
    got: list[tuple[str, dict[str, Any]]] = []

    async def on_event(env: MessageEnvelope) -> None:
        got.append((env.received_topic or "", env.payload))

    sub = await bus.subscribe("edgex.system-events.>", on_event)
    try:
        await seed(metadata)
        await metadata.post("/api/v3/device?bypassValidation=true", json=[device_body("ev.1")])
        await metadata.patch(
            "/api/v3/device?bypassValidation=true",
            json=[{"apiVersion": "v3", "device": {"name": "ev.1", "adminState": "LOCKED"}}],
        )
        await metadata.delete("/api/v3/device/name/ev.1")
        for _ in range(50):
            if len(got) >= 5:
                break
            await asyncio.sleep(0.05)
    finally:
        await sub.unsubscribe()
        await bus.close()
    subjects = [s for s, _ in got]
    assert subjects == [
        "edgex.system-events.core-metadata.deviceservice.add.device-modbus",
        f"edgex.system-events.core-metadata.deviceprofile.add.core-metadata.{PROFILE_NAME}",
        f"edgex.system-events.core-metadata.device.add.device-modbus.{PROFILE_NAME}",
        f"edgex.system-events.core-metadata.device.update.device-modbus.{PROFILE_NAME}",
        f"edgex.system-events.core-metadata.device.delete.device-modbus.{PROFILE_NAME}",
    ]
    add_event = got[2][1]
    assert add_event["type"] == "device"
    assert add_event["action"] == "add"
    assert add_event["owner"] == "device-modbus"
    assert add_event["details"]["name"] == "ev.1"
    assert got[3][1]["details"]["adminState"] == "LOCKED"


class _FakeDeviceService:
    """Answers device-validation requests on the bus as a device service would."""

    def __init__(self, nats_url: str, verdict: str) -> None:
        self.bus = NatsMessageBus(NatsSettings(url=nats_url), name="fake-device-service")
        self.verdict = verdict
        self.seen: list[str] = []

    async def __aenter__(self) -> _FakeDeviceService:
        await self.bus.connect()
        self.sub = await self.bus.subscribe("edgex.device.validate.device-modbus", self.handle)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.sub.unsubscribe()
        await self.bus.close()

    async def handle(self, env: MessageEnvelope) -> MessageEnvelope:
        self.seen.append(env.payload["name"])
        if self.verdict == "slow":
            await asyncio.sleep(2)
        if self.verdict == "reject":
            return env.reply({"message": "Port 1502 is not reachable", "statusCode": 400}, error_code=1)
        return env.reply(None)


async def test_device_service_validation_accepts_and_rejects(metadata: httpx.AsyncClient, nats_url: str) -> None:
    await seed(metadata)
    async with _FakeDeviceService(nats_url, "accept") as ds:
        r = await metadata.post("/api/v3/device", json=[device_body("ok-dev")])
        assert r.json()[0]["statusCode"] == 201
        assert "message" not in r.json()[0]
        assert ds.seen == ["ok-dev"]
    async with _FakeDeviceService(nats_url, "reject") as ds:
        r = await metadata.post("/api/v3/device", json=[device_body("bad-dev")])
        assert r.json()[0]["statusCode"] == 400
        assert "Port 1502 is not reachable" in r.json()[0]["message"]
        r = await metadata.post("/api/v3/device?bypassValidation=true", json=[device_body("bypassed")])
        assert r.json()[0]["statusCode"] == 201
        assert ds.seen == ["bad-dev"]
    assert (await metadata.get("/api/v3/device/check/name/bad-dev")).status_code == 404
    assert (await metadata.get("/api/v3/device/check/name/bypassed")).status_code == 200


async def test_absent_device_service_does_not_hang(metadata_app_factory: Any, metadata: httpx.AsyncClient) -> None:
    await seed(metadata)
    loop = asyncio.get_running_loop()
    start = loop.time()
    r = await metadata.post("/api/v3/device", json=[device_body("deferred")])
    assert loop.time() - start < 1.0
    assert r.json()[0]["statusCode"] == 201
    assert "not running" in r.json()[0]["message"]
    strict = await metadata_app_factory(validation={"reject_when_unavailable": True})
    start = loop.time()
    r = await strict.post("/api/v3/device", json=[device_body("refused")])
    assert loop.time() - start < 1.0
    assert r.json()[0]["statusCode"] == 503
    assert "no service is listening" in r.json()[0]["message"]


async def test_slow_device_service_times_out_with_503(
    metadata_app_factory: Any, nats_url: str, metadata: httpx.AsyncClient
) -> None:
    await seed(metadata)
    client = await metadata_app_factory(validation={"timeout": 0.3})
    async with _FakeDeviceService(nats_url, "slow"):
        r = await client.post("/api/v3/device", json=[device_body("slowpoke")])
    assert r.json()[0]["statusCode"] == 503
    assert "within" in r.json()[0]["message"]


async def test_metadata_survives_a_redis_restart(metadata_app_factory: Any, tmp_path: Any, nats_url: str) -> None:
    redis_server = EmbeddedRedis(data_dir=tmp_path / "redis").start()
    try:

        async def snapshot_with_fresh_app() -> dict[str, Any]:
            app = create_app(metadata_settings(nats_url, redis_server.url))
            transport = httpx.ASGITransport(app=app)
            async with (
                app.router.lifespan_context(app),
                httpx.AsyncClient(transport=transport, base_url="http://md") as c,
            ):
                if not (await c.get("/api/v3/deviceservice/all")).json()["totalCount"]:
                    await seed(c)
                    await c.post("/api/v3/device?bypassValidation=true", json=[device_body("durable")])
                return await snapshot(c)

        before = await snapshot_with_fresh_app()
        assert before["device/all"]["totalCount"] == 1
        redis_server.stop()  # SIGTERM: the server flushes its append-only file
        redis_server.start()  # same port, same data directory
        assert await snapshot_with_fresh_app() == before
    finally:
        redis_server.stop()


# --- EdgeX conformance (TAF core-metadata v4.0.2): each difference found by the suite, fixed and pinned here ---


def _codes(r: httpx.Response) -> list[int]:
    assert r.status_code == 207, r.text
    return [e["statusCode"] for e in r.json()]


async def test_device_parent_rules(metadata: httpx.AsyncClient) -> None:
    """A device cannot be its own parent (400 for that element); one with children cannot be deleted (409)."""
    await seed(metadata)
    bypass = {"bypassValidation": "true"}
    r = await metadata.post("/api/v3/device", params=bypass, json=[device_body("loop", parent="loop")])
    assert _codes(r) == [400]
    assert "own parent" in r.json()[0]["message"]
    r = await metadata.post(
        "/api/v3/device",
        params=bypass,
        json=[device_body("root"), device_body("mid", parent="root"), device_body("leaf", parent="mid")],
    )
    assert _codes(r) == [201, 201, 201]
    r = await metadata.patch(
        "/api/v3/device", params=bypass, json=[{"apiVersion": "v3", "device": {"name": "mid", "parent": "mid"}}]
    )
    assert _codes(r) == [400]
    r = await metadata.delete("/api/v3/device/name/mid")
    assert r.status_code == 409, r.text
    assert "child" in r.json()["message"]
    assert (await metadata.get("/api/v3/device/name/mid")).status_code == 200
    for name in ("leaf", "mid", "root"):
        assert (await metadata.delete(f"/api/v3/device/name/{name}")).status_code == 200


async def test_patch_with_an_id_and_another_name_is_400(metadata: httpx.AsyncClient) -> None:
    """EdgeX finds the entity by id and refuses a name that is not its own: a PATCH never renames."""
    await seed(metadata)
    await add_service(metadata, "device-other")
    r = await metadata.post(
        "/api/v3/device", params={"bypassValidation": "true"}, json=[device_body("d1"), device_body("d2")]
    )
    d1_id = r.json()[0]["id"]
    before = await snapshot(metadata)
    r = await metadata.patch(
        "/api/v3/device",
        params={"bypassValidation": "true"},
        json=[{"apiVersion": "v3", "device": {"id": d1_id, "name": "d2", "description": "x"}}],
    )
    assert _codes(r) == [400]
    service_id = (await metadata.get("/api/v3/deviceservice/name/device-modbus")).json()["service"]["id"]
    r = await metadata.patch(
        "/api/v3/deviceservice", json=[{"apiVersion": "v3", "service": {"id": service_id, "name": "device-other"}}]
    )
    assert _codes(r) == [400]
    profile_id = (await metadata.get(f"/api/v3/deviceprofile/name/{PROFILE_NAME}")).json()["profile"]["id"]
    r = await metadata.patch(
        "/api/v3/deviceprofile/basicinfo",
        json=[{"apiVersion": "v3", "basicinfo": {"id": profile_id, "name": "Other", "model": "X"}}],
    )
    assert _codes(r) == [400]
    assert await snapshot(metadata) == before
    # the id with its own name is fine
    r = await metadata.patch(
        "/api/v3/device",
        params={"bypassValidation": "true"},
        json=[{"apiVersion": "v3", "device": {"id": d1_id, "name": "d1", "description": "x"}}],
    )
    assert _codes(r) == [200]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        # PATCH elements that name neither an id nor a name, or an empty one (TAF ErrDevicePATCHValidate001/002)
        ("/api/v3/deviceservice", {"service": {"labels": ["x"]}}),
        ("/api/v3/deviceservice", {"service": {"name": ""}}),
        ("/api/v3/deviceprofile/basicinfo", {"basicinfo": {"name": "", "model": "X"}}),
        ("/api/v3/device", {"device": {"description": "x"}}),
        ("/api/v3/provisionwatcher", {"provisionwatcher": {"labels": []}}),
        # autoEvents without interval or source (TAF ErrProWatcherPATCH003/004)
        (
            "/api/v3/provisionwatcher",
            {
                "provisionwatcher": {
                    "name": "w",
                    "discoveredDevice": {"autoEvents": [{"interval": "", "sourceName": "PumpRun"}]},
                }
            },
        ),
        (
            "/api/v3/provisionwatcher",
            {
                "provisionwatcher": {
                    "name": "w",
                    "discoveredDevice": {"autoEvents": [{"interval": "1s", "sourceName": ""}]},
                }
            },
        ),
        # a retention duration that is no Go duration (TAF ErrDevicePATCH013)
        (
            "/api/v3/device",
            {
                "device": {
                    "name": "d1",
                    "autoEvents": [
                        {
                            "interval": "10s",
                            "sourceName": "PumpRun",
                            "retention": {"maxCap": 5, "minCap": 1, "duration": "10"},
                        }
                    ],
                }
            },
        ),
    ],
)
async def test_patch_elements_failing_the_dto_refuse_the_request(
    metadata: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> None:
    await seed(metadata)
    before = await snapshot(metadata)
    r = await metadata.patch(path, json=[{"apiVersion": "v3", **body}])
    assert r.status_code == 400, r.text
    assert await snapshot(metadata) == before


async def test_post_elements_failing_the_dto_refuse_the_request(metadata: httpx.AsyncClient) -> None:
    """One element that breaks the DTO rules makes the whole batch a 400, nothing stored (EdgeX)."""
    await seed(metadata)
    before = await snapshot(metadata)
    retention = {"maxCap": 100, "minCap": 2, "duration": "1"}
    r = await metadata.post(
        "/api/v3/device",
        params={"bypassValidation": "true"},
        json=[
            device_body("ok"),
            device_body("bad", autoEvents=[{"interval": "1s", "sourceName": "PumpRun", "retention": retention}]),
        ],
    )
    assert r.status_code == 400, r.text
    assert "duration" in r.json()["message"]
    services = [
        {"apiVersion": "v3", "service": {"name": "s1", "baseAddress": "http://s1:1", "adminState": "UNLOCKED"}},
        {"apiVersion": "v3", "service": {"name": "s2", "baseAddress": "", "adminState": "UNLOCKED"}},
    ]
    r = await metadata.post("/api/v3/deviceservice", json=services)
    assert r.status_code == 400, r.text
    assert "baseAddress" in r.json()["message"]
    profile = (await metadata.get(f"/api/v3/deviceprofile/name/{PROFILE_NAME}")).json()["profile"]
    profile["deviceResources"] = []  # its commands now name resources it lacks
    r = await metadata.put("/api/v3/deviceprofile", json=[{"apiVersion": "v3", "profile": profile}])
    assert r.status_code == 400, r.text
    assert await snapshot(metadata) == before
    r = await metadata.post(
        "/api/v3/device",
        params={"bypassValidation": "true"},
        json=[
            device_body(
                "ok",
                autoEvents=[
                    {"interval": "1s", "sourceName": "PumpRun", "retention": {**retention, "duration": "1d12h"}}
                ],
            )
        ],
    )
    assert _codes(r) == [201]


async def test_empty_profile_name_means_no_profile(metadata: httpx.AsyncClient) -> None:
    """EdgeX 3+: a device may have no profile yet; "" says so (TAF DevicePOST005, DevicePATCH004)."""
    await seed(metadata)
    bypass = {"bypassValidation": "true"}
    r = await metadata.post(
        "/api/v3/device", params=bypass, json=[device_body("bare", profileName=""), device_body("full")]
    )
    assert _codes(r) == [201, 201]
    assert "profileName" not in (await metadata.get("/api/v3/device/name/bare")).json()["device"]
    r = await metadata.patch(
        "/api/v3/device", params=bypass, json=[{"apiVersion": "v3", "device": {"name": "full", "profileName": ""}}]
    )
    assert _codes(r) == [200]
    assert "profileName" not in (await metadata.get("/api/v3/device/name/full")).json()["device"]


async def test_profile_parts_in_use_cannot_be_deleted(metadata: httpx.AsyncClient) -> None:
    """While a device uses a profile, none of its resources or commands can be deleted (409, as EdgeX); an
    added resource or command whose name the profile already has is a 400 (the profile would be invalid)."""
    await seed(metadata)
    profile = (await metadata.get(f"/api/v3/deviceprofile/name/{PROFILE_NAME}")).json()["profile"]
    resource = profile["deviceResources"][0]
    command = profile["deviceCommands"][0]
    r = await metadata.post(
        "/api/v3/deviceprofile/resource", json=[{"apiVersion": "v3", "profileName": PROFILE_NAME, "resource": resource}]
    )
    assert _codes(r) == [400]
    r = await metadata.post(
        "/api/v3/deviceprofile/deviceCommand",
        json=[{"apiVersion": "v3", "profileName": PROFILE_NAME, "deviceCommand": command}],
    )
    assert _codes(r) == [400]
    r = await metadata.post("/api/v3/device", params={"bypassValidation": "true"}, json=[device_body("user")])
    assert _codes(r) == [201]
    unused = next(
        res["name"]
        for res in profile["deviceResources"]
        if not any(
            o["deviceResource"] == res["name"] for c in profile["deviceCommands"] for o in c["resourceOperations"]
        )
    )
    r = await metadata.delete(f"/api/v3/deviceprofile/name/{PROFILE_NAME}/resource/{unused}")
    assert r.status_code == 409, r.text
    r = await metadata.delete(f"/api/v3/deviceprofile/name/{PROFILE_NAME}/deviceCommand/{command['name']}")
    assert r.status_code == 409, r.text
    assert (await metadata.get(f"/api/v3/deviceprofile/name/{PROFILE_NAME}")).json()["profile"] == {
        **profile,
        "linkedDeviceCount": 1,
    }
    assert (await metadata.delete("/api/v3/device/name/user")).status_code == 200
    r = await metadata.delete(f"/api/v3/deviceprofile/name/{PROFILE_NAME}/deviceCommand/{command['name']}")
    assert r.status_code == 200, r.text
