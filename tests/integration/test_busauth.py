"""Secure mode's NATS and Redis (issue 15 items 3-4), enforced by the real servers.

A nats-server started with the generated `nats/nats.conf` and a valkey with the generated `redis/users.acl`
(their own, on free loopback ports): each service's credentials give exactly its rights. The refusals come
from the servers (permissions violation, NOPERM, authentication errors); our code only reports them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import stat
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import nats
import nats.errors
import pytest
import redis.asyncio as aioredis
import redis.exceptions
from aiohttp import web
from pydantic import SecretStr

from app_services.main import create_app as create_app_service
from app_services.settings import AppServiceSettings
from core_command.main import create_app as create_command_app
from core_command.settings import CoreCommandSettings
from core_metadata.main import create_app as create_metadata_app
from device_modbus.main import RES_DIR as MODBUS_RES
from device_modbus.main import create_app as create_modbus_app
from device_modbus.settings import DeviceModbusSettings
from device_modbus.sim.config import load_config
from device_modbus.sim.server import ModbusSimulator
from device_virtual.main import create_app as create_virtual_app
from device_virtual.settings import DeviceVirtualSettings
from edgeplane.secure import busauth, tls
from edgeplane.services import SERVICES, by_name
from edgeplane_common.bus import MessageEnvelope, Topics
from edgeplane_common.bus.nats import NatsMessageBus, PermissionDenied, connect_options, round_trip
from edgeplane_common.embedded import EmbeddedNats, EmbeddedRedis, free_port
from edgeplane_common.redis import create_redis
from edgeplane_common.settings import NatsSettings, RedisSettings, TlsSettings
from rules_engine.main import create_app as create_rules_app
from rules_engine.settings import RulesEngineSettings
from tests.support.core_data import core_data_settings, running
from tests.support.export_targets import running_app
from tests.support.metadata import metadata_settings
from tests.support.modbus import modbus_device
from tests.support.stack import serve, wait_until

MODBUS_PROFILE = MODBUS_RES / "profiles" / "edgeplane-demo-plc.profile.yaml"
MODBUS_SIM = MODBUS_RES / "sim" / "demo-plc.yaml"


@pytest.fixture(scope="module")
def secure_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secure")
    busauth.init(path, SERVICES, hosts=[])
    return path


@pytest.fixture(scope="module")
def env(secure_dir: Path) -> dict[str, dict[str, str]]:
    # A second run keeps the credentials: the servers below and these values agree.
    return busauth.init(secure_dir, SERVICES, hosts=[])


@pytest.fixture(scope="module")
def secure_nats(secure_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    data = tmp_path_factory.mktemp("secure-nats")
    with EmbeddedNats(data_dir=data, config_file=secure_dir / busauth.NATS_CONF) as server:
        yield server


@pytest.fixture(scope="module")
def secure_redis(secure_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    data = tmp_path_factory.mktemp("secure-redis")
    with EmbeddedRedis(data_dir=data, extra_args=busauth.redis_server_args(secure_dir)) as server:
        yield server


def nats_settings(env: dict[str, dict[str, str]], service: str, url: str, **kw: object) -> NatsSettings:
    s = by_name(service)
    values = env[service]
    return NatsSettings.model_validate(
        {"url": url, "user": values[f"{s.env_prefix}NATS__USER"], "password": values[f"{s.env_prefix}NATS__PASSWORD"]}
        | kw
    )


def redis_settings(env: dict[str, dict[str, str]], service: str, url: str) -> RedisSettings:
    s = by_name(service)
    values = env[service]
    return RedisSettings(
        url=SecretStr(url),
        username=values[f"{s.env_prefix}REDIS__USERNAME"],
        password=SecretStr(values[f"{s.env_prefix}REDIS__PASSWORD"]),
    )


@pytest.fixture
async def buses(env: dict[str, dict[str, str]], secure_nats: EmbeddedNats) -> AsyncIterator[dict[str, NatsMessageBus]]:
    """One connected bus per service, each with its own credentials (as the services connect)."""
    opened: dict[str, NatsMessageBus] = {}
    for name in ("device-virtual", "device-modbus", "core-command", "rules-engine", "core-metadata", "console"):
        bus = NatsMessageBus(nats_settings(env, name, secure_nats.url, request_timeout=30), name=name)
        async with asyncio.timeout(10):
            await bus.connect()
        opened[name] = bus
    yield opened
    for bus in opened.values():
        await bus.close()


# -- generated files ---------------------------------------------------------------------------------


def test_generated_files_are_private_and_credentials_are_kept(secure_dir: Path, env: dict[str, dict[str, str]]) -> None:
    files = [secure_dir / busauth.NATS_CONF, secure_dir / busauth.REDIS_ACL]
    files += sorted((secure_dir / "credentials").glob("*.env"))
    assert len(files) == 2 + len(env) + 1  # and the viewer's
    assert busauth.viewer_credentials(secure_dir)[0] == busauth.VIEWER
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for folder in ("credentials", "nats", "redis"):
        assert stat.S_IMODE((secure_dir / folder).stat().st_mode) == 0o700
    # Services with neither NATS nor Redis (the simulators) get no credentials.
    assert "modbus-sim" not in env
    assert "opcua-sim" not in env
    assert env["core-data"]["CORE_DATA_NATS__USER"] == "core-data"
    assert env == busauth.init(secure_dir, SERVICES, hosts=[])  # a rerun keeps every password
    text = (secure_dir / "credentials" / "device-modbus.env").read_text()
    assert f"DEVICE_MODBUS_NATS__PASSWORD={env['device-modbus']['DEVICE_MODBUS_NATS__PASSWORD']}" in text
    # The ACL file holds hashes, never the passwords.
    acl = (secure_dir / busauth.REDIS_ACL).read_text()
    assert env["core-data"]["CORE_DATA_REDIS__PASSWORD"] not in acl


def test_force_makes_new_passwords(tmp_path: Path) -> None:
    first = busauth.init(tmp_path, SERVICES, hosts=[])
    again = busauth.init(tmp_path, SERVICES, hosts=[], force=True)
    assert first["core-data"]["CORE_DATA_NATS__PASSWORD"] != again["core-data"]["CORE_DATA_NATS__PASSWORD"]
    assert first["core-data"]["CORE_DATA_REDIS__PASSWORD"] != again["core-data"]["CORE_DATA_REDIS__PASSWORD"]


# -- NATS --------------------------------------------------------------------------------------------


async def test_device_service_cannot_publish_another_services_events(
    buses: dict[str, NatsMessageBus], caplog: pytest.LogCaptureFixture
) -> None:
    virtual = buses["device-virtual"]
    foreign = Topics.events("device-modbus", "p", "plc", "temp")
    env = MessageEnvelope(payload={"deviceName": "plc"})
    # Into the events stream: JetStream never sees it, the call fails at once with the server's refusal.
    with pytest.raises(PermissionDenied, match="permissions violation"):
        await virtual.publish_durable(foreign, env)
    # Core publish is fire and forget: the refusal is logged once, naming the subject.
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="edgeplane_common.bus.nats"):
        other = Topics.events("device-modbus", "p", "plc", "pressure")
        await virtual.publish(other, env)
        await virtual.publish(other, env)
        await virtual.flush()  # the server's -ERR comes before its PONG
    refused = [r for r in caplog.records if "permissions violation" in r.getMessage()]
    assert len(refused) == 1, [r.getMessage() for r in caplog.records]
    assert other.lower() in refused[0].getMessage()
    # Its own events are accepted (the stream exists: the device service may create it).
    await virtual.ensure_stream(Topics.EVENTS_STREAM, [Topics.EVENTS_ALL])
    await virtual.publish_durable(Topics.events("device-virtual", "p", "d", "s"), env)


async def test_the_viewer_reads_events_and_may_do_nothing_else(
    secure_dir: Path, secure_nats: EmbeddedNats, buses: dict[str, NatsMessageBus]
) -> None:
    user, password = busauth.viewer_credentials(secure_dir)
    refusals: list[str] = []

    async def on_error(error: Exception) -> None:
        refusals.append(str(error))

    settings = NatsSettings(url=secure_nats.url, user=user, password=SecretStr(password))
    nc = await nats.connect(
        **connect_options(settings, name="viewer-test", service=busauth.VIEWER),
        error_cb=on_error,
        allow_reconnect=False,
        max_reconnect_attempts=0,
    )
    try:
        events = await nc.subscribe(Topics.EVENTS_ALL)
        await round_trip(nc)  # the server has the subscription before anything is published
        subject = Topics.events("device-virtual", "p", "d", "s")
        await buses["device-virtual"].publish(subject, MessageEnvelope(payload={"deviceName": "d"}))
        assert (await events.next_msg(timeout=10)).subject == subject
        # No events of its own, no device commands, no listening to them: each one refused by the server.
        await nc.publish(Topics.events("device-virtual", "p", "d", "forged"), b"{}")
        await nc.publish(Topics.command_request_all("device-virtual").replace(">", "d.get"), b"{}")
        await nc.subscribe(Topics.command_request_all("device-virtual"))
        await round_trip(nc)
        await wait_until(lambda: len(refusals) >= 3)
        assert sum("publish" in r.lower() for r in refusals) == 2, refusals
        assert sum("subscription" in r.lower() for r in refusals) == 1, refusals
    finally:
        await nc.close()


async def test_only_core_command_and_the_rules_engine_send_device_commands(buses: dict[str, NatsMessageBus]) -> None:
    subject = Topics.command_request("device-modbus", "plc", "temp", "get")

    async def answer(envelope: MessageEnvelope) -> MessageEnvelope:
        return envelope.reply({"answered": True})

    # The device service answers its own command subject (a reply is allowed only as a response).
    sub = await buses["device-modbus"].subscribe(Topics.command_request_all("device-modbus"), answer)
    try:
        for allowed in ("core-command", "rules-engine"):
            reply = await buses[allowed].request(subject, MessageEnvelope(payload={}))
            assert reply.payload == {"answered": True}
        for refused in ("device-virtual", "core-metadata", "console"):
            with pytest.raises(PermissionDenied):
                await buses[refused].request(subject, MessageEnvelope(payload={}))
    finally:
        await sub.unsubscribe()


async def test_a_device_service_cannot_listen_to_anothers_commands_or_replies(
    buses: dict[str, NatsMessageBus],
) -> None:
    async def ignore(envelope: MessageEnvelope) -> None:
        return None

    virtual = buses["device-virtual"]
    for subject in (
        Topics.command_request_all("device-modbus"),
        "_INBOX.core-command.>",  # core-command's replies
        Topics.EVENTS_ALL,
    ):
        with pytest.raises(PermissionDenied):
            await virtual.subscribe(subject, ignore)
    # Its own commands are fine.
    sub = await virtual.subscribe(Topics.command_request_all("device-virtual"), ignore, queue="device-virtual")
    await sub.unsubscribe()


async def test_wrong_password_and_another_services_name_are_refused(
    env: dict[str, dict[str, str]], secure_nats: EmbeddedNats, caplog: pytest.LogCaptureFixture
) -> None:
    modbus_password = env["device-modbus"]["DEVICE_MODBUS_NATS__PASSWORD"]
    for user, password in (("core-command", modbus_password), ("device-modbus", "wrong"), (None, None)):
        with pytest.raises(nats.errors.Error):
            await nats.connect(
                secure_nats.url, user=user, password=password, allow_reconnect=False, max_reconnect_attempts=0
            )
    # A service with a wrong password says so (and keeps retrying: the server may be reconfigured).
    caplog.set_level(logging.ERROR, logger="edgeplane_common.bus.nats")
    settings = NatsSettings(url=secure_nats.url, user="core-data", password=SecretStr(modbus_password))
    bus = NatsMessageBus(settings, name="core-data")
    connecting = asyncio.create_task(bus.connect())
    await wait_until(
        lambda: any("refused the credentials of user 'core-data'" in r.getMessage() for r in caplog.records)
    )
    connecting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await connecting
    await bus.close()


# -- Redis -------------------------------------------------------------------------------------------


async def test_each_service_reads_only_its_own_keys(
    env: dict[str, dict[str, str]], secure_redis: EmbeddedRedis
) -> None:
    clients = {name: create_redis(redis_settings(env, name, secure_redis.url)) for name in env}
    try:
        own = {
            "core-metadata": ["md:busauth-test", "auth:busauth-test"],
            "core-data": ["cd:busauth-test"],
            "rules-engine": ["edgeplane:rules-engine:busauth-test"],
        }
        for name, client in clients.items():
            assert await client.ping()
            for key in [*own.get(name, []), f"secrets:{name}:token"]:
                await client.set(key, name)
                assert await client.get(key) == name.encode()
                await client.delete(key)
                await client.set(key, name)
        for name, client in clients.items():
            for other, keys in own.items():
                if other == name:
                    continue
                for key in keys:
                    with pytest.raises(redis.exceptions.NoPermissionError):
                        await client.get(key)
            neighbour = "device-modbus" if name != "device-modbus" else "device-virtual"
            with pytest.raises(redis.exceptions.NoPermissionError):
                await client.get(f"secrets:{neighbour}:token")
            for command in (("FLUSHALL",), ("KEYS", "*"), ("CONFIG", "GET", "*"), ("ACL", "LIST")):
                with pytest.raises(redis.exceptions.NoPermissionError):
                    await client.execute_command(*command)  # type: ignore[no-untyped-call]
    finally:
        for client in clients.values():
            await client.aclose()


async def test_default_user_and_wrong_passwords_are_refused(
    env: dict[str, dict[str, str]], secure_redis: EmbeddedRedis
) -> None:
    anonymous = aioredis.from_url(secure_redis.url)
    with pytest.raises(redis.exceptions.AuthenticationError):
        await anonymous.get("cd:ev")
    await anonymous.aclose()
    wrong = create_redis(
        RedisSettings(
            url=SecretStr(secure_redis.url),
            username="core-data",
            password=SecretStr(env["core-metadata"]["CORE_METADATA_REDIS__PASSWORD"]),
        )
    )
    with pytest.raises(redis.exceptions.AuthenticationError):
        await wrong.ping()
    await wrong.aclose()


# -- the services, with their generated credentials ----------------------------------------------------


async def test_services_work_with_their_generated_credentials(
    env: dict[str, dict[str, str]],
    secure_nats: EmbeddedNats,
    secure_redis: EmbeddedRedis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """core-metadata, core-data (ingesting the events stream), device-virtual and core-command, each as its
    own NATS and Redis user: a read through core-command with ds-pushevent lands the event in core-data, and
    nothing any of them does on the way is refused."""
    caplog.set_level(logging.WARNING, logger="edgeplane_common.bus.nats")
    nats_url, redis_url = secure_nats.url, secure_redis.url

    def nats_of(name: str) -> dict[str, object]:
        return nats_settings(env, name, nats_url).model_dump()

    def redis_of(name: str) -> dict[str, object]:
        return redis_settings(env, name, redis_url).model_dump()

    async with AsyncExitStack() as es:
        md = metadata_settings(nats_url, redis_url, nats=nats_of("core-metadata"), redis=redis_of("core-metadata"))
        md_url = await es.enter_async_context(serve(create_metadata_app(md)))
        metadata = await es.enter_async_context(httpx.AsyncClient(base_url=md_url + "/api/v3", timeout=10))
        _, data = await es.enter_async_context(
            running(
                core_data_settings(
                    nats_url,
                    redis_url,
                    nats=nats_of("core-data"),
                    redis=redis_of("core-data"),
                    ingest={"enabled": True},
                    metadata_url=md_url,
                )
            )
        )
        port = free_port()
        virtual_settings = DeviceVirtualSettings.model_validate(
            {"nats": nats_of("device-virtual"), "metadata_url": md_url, "http": {"host": "127.0.0.1", "port": port}}
        )
        await es.enter_async_context(serve(create_virtual_app(virtual_settings), port))
        cc_port = free_port()
        cc_settings = CoreCommandSettings.model_validate(
            {"nats": nats_of("core-command"), "metadata_url": md_url, "http": {"host": "127.0.0.1", "port": cc_port}}
        )
        cc_url = await es.enter_async_context(serve(create_command_app(cc_settings), cc_port))
        command = await es.enter_async_context(httpx.AsyncClient(base_url=cc_url + "/api/v3", timeout=10))

        devices = (await metadata.get("/device/service/name/device-virtual")).json()["devices"]
        assert devices, "device-virtual provisioned its res/ devices through core-metadata"
        device = next(d for d in devices if d["profileName"] == "Virtual-Float")
        r = await command.get(f"/device/name/{device['name']}/Float64", params={"ds-pushevent": "true"})
        assert r.status_code == 200, r.text
        event_id = r.json()["event"]["id"]

        async def stored() -> bool:
            got = await data.get(f"/api/v3/event/device/name/{device['name']}")
            return got.status_code == 200 and any(e["id"] == event_id for e in got.json()["events"])

        await wait_until(stored, timeout=30)
    refused = [r.getMessage() for r in caplog.records if "permissions violation" in r.getMessage().lower()]
    assert refused == []


EXPORT_PIPELINE = """
Writable:
  Pipeline:
    ExecutionOrder: "Transform, HTTPExport"
    Functions:
      Transform: {Parameters: {Type: json}}
      HTTPExport: {Parameters: {Url: "URL"}}
  StoreAndForward: {RetryInterval: 50ms, MaxRetryInterval: 200ms}
"""

HOT_RULE = {
    "id": "hot-pump",
    "sql": "SELECT TankTemperature AS t FROM events WHERE deviceName = 'plc1' AND TankTemperature > 30",
    "actions": [{"command": {"deviceName": "plc1", "commandName": "PumpRun", "values": {"PumpRun": "true"}}}],
}


async def test_modbus_rules_and_an_app_service_work_with_their_generated_credentials(
    env: dict[str, dict[str, str]],
    secure_nats: EmbeddedNats,
    secure_redis: EmbeddedRedis,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    """device-modbus polling a simulator, the rules engine (rules in Redis) commanding the PLC when a value
    crosses its threshold, and app-http-export (its own durable on the events stream and its JetStream buffer)
    exporting the events; each as its own NATS and Redis user, nothing refused on the way."""
    caplog.set_level(logging.WARNING, logger="edgeplane_common.bus.nats")
    nats_url, redis_url = secure_nats.url, secure_redis.url
    received: list[bytes] = []

    async def receive(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.Response(status=200)

    def nats_of(name: str) -> dict[str, object]:
        return nats_settings(env, name, nats_url).model_dump()

    def redis_of(name: str) -> dict[str, object]:
        return redis_settings(env, name, redis_url).model_dump()

    async with AsyncExitStack() as es:
        web_app = web.Application()
        web_app.router.add_post("/ingest", receive)
        runner = web.AppRunner(web_app)
        await runner.setup()
        es.push_async_callback(runner.cleanup)
        receiver_port = free_port()
        await web.TCPSite(runner, "127.0.0.1", receiver_port).start()

        sim = await es.enter_async_context(ModbusSimulator(load_config(MODBUS_SIM), "127.0.0.1", 0, autotick=False))
        await sim.set(1, "tank_temp_x10", 200)
        md = metadata_settings(nats_url, redis_url, nats=nats_of("core-metadata"), redis=redis_of("core-metadata"))
        md_url = await es.enter_async_context(serve(create_metadata_app(md)))
        metadata = await es.enter_async_context(httpx.AsyncClient(base_url=md_url + "/api/v3", timeout=10))
        with MODBUS_PROFILE.open("rb") as fh:
            assert (await metadata.post("/deviceprofile/uploadfile", files={"file": fh})).status_code == 201
        ds_port = free_port()
        ds = DeviceModbusSettings.model_validate(
            {
                "nats": nats_of("device-modbus"),
                "metadata_url": md_url,
                "provision": False,
                "http": {"host": "127.0.0.1", "port": ds_port},
            }
        )
        await es.enter_async_context(serve(create_modbus_app(ds), ds_port))
        autoevents = [{"interval": "100ms", "sourceName": "TankTemperature"}]
        device = modbus_device("plc1", "Edgeplane-Demo-PLC", sim.port, autoEvents=autoevents)
        added = await metadata.post("/device", json=[device])
        assert added.json()[0]["statusCode"] == 201, added.text

        rules_port = free_port()
        rules_settings = RulesEngineSettings.model_validate(
            {
                "nats": nats_of("rules-engine"),
                "redis": redis_of("rules-engine"),
                "metadata_url": md_url,
                "rules_dir": "",
                "http": {"host": "127.0.0.1", "port": rules_port},
            }
        )
        rules_url = await es.enter_async_context(serve(create_rules_app(rules_settings), rules_port))
        rules = await es.enter_async_context(httpx.AsyncClient(base_url=rules_url + "/api/v3", timeout=10))

        pipeline = tmp_path / "app-http-export.yaml"
        pipeline.write_text(EXPORT_PIPELINE.replace("URL", f"http://127.0.0.1:{receiver_port}/ingest"))
        app_settings = AppServiceSettings.model_validate(
            {"service_name": "app-http-export", "pipeline_file": str(pipeline), "nats": nats_of("app-http-export")}
        )
        app = create_app_service(app_settings, environ={})
        await es.enter_async_context(running_app(app))

        assert (await rules.post("/rule", json=HOT_RULE)).status_code == 201
        # The stream may also hold earlier tests' events: wait for one of this PLC's.
        await wait_until(lambda: any(b"TankTemperature" in body for body in received), timeout=30)
        await sim.set(1, "tank_temp_x10", 315)

        async def pump_running() -> bool:
            return (await sim.read_bits(1, "coils", 0, 1))[0]

        await wait_until(pump_running, timeout=30)
    refused = [r.getMessage() for r in caplog.records if "permissions violation" in r.getMessage().lower()]
    assert refused == []


# -- TLS -----------------------------------------------------------------------------------------------


def _write_certs(secure_dir: Path) -> None:
    """The CA and NATS's certificate where part `tls` puts them (`edgeplane certs init`'s own code)."""
    tls.ensure(secure_dir, [], hosts=[])


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secure-tls")
    _write_certs(path)
    busauth.init(path, SERVICES, hosts=[])
    return path


@pytest.fixture(scope="module")
def tls_nats(tls_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    data = tmp_path_factory.mktemp("tls-nats")
    with EmbeddedNats(data_dir=data, config_file=tls_dir / busauth.NATS_CONF) as server:
        yield server


async def test_nats_over_tls_verifies_the_server_and_keeps_the_permissions(
    tls_dir: Path, tls_nats: EmbeddedNats
) -> None:
    assert "tls {" in (tls_dir / busauth.NATS_CONF).read_text()
    env = busauth.init(tls_dir, SERVICES, hosts=[])
    trusted = TlsSettings(ca_file=str(tls_dir / "ca.pem"))
    host_port = f"127.0.0.1:{tls_nats.port}"

    async def answer(envelope: MessageEnvelope) -> MessageEnvelope:
        return envelope.reply({"over": "tls"})

    # tls:// starts with the TLS handshake; nats:// upgrades when the server asks: both verify our CA.
    device = NatsMessageBus(
        nats_settings(env, "device-modbus", f"tls://{host_port}"), name="device-modbus", tls=trusted
    )
    command = NatsMessageBus(
        nats_settings(env, "core-command", f"nats://{host_port}"), name="core-command", tls=trusted
    )
    virtual = NatsMessageBus(
        nats_settings(env, "device-virtual", f"tls://{host_port}", request_timeout=30),
        name="device-virtual",
        tls=trusted,
    )
    async with asyncio.timeout(10):
        for bus in (device, command, virtual):
            await bus.connect()
    try:
        for bus in (device, command, virtual):
            assert bus._nc is not None
            assert bus._nc._transport is not None
            assert bus._nc._transport._io_writer.get_extra_info("ssl_object") is not None  # type: ignore[attr-defined]
        sub = await device.subscribe(Topics.command_request_all("device-modbus"), answer)
        subject = Topics.command_request("device-modbus", "plc", "temp", "get")
        assert (await command.request(subject, MessageEnvelope(payload={}))).payload == {"over": "tls"}
        with pytest.raises(PermissionDenied):
            await virtual.request(subject, MessageEnvelope(payload={}))
        await sub.unsubscribe()
    finally:
        for bus in (device, command, virtual):
            await bus.close()


async def test_a_client_that_does_not_trust_the_ca_cannot_connect(tls_dir: Path, tls_nats: EmbeddedNats) -> None:
    env = busauth.init(tls_dir, SERVICES, hosts=[])
    creds = {"user": "core-command", "password": env["core-command"]["CORE_COMMAND_NATS__PASSWORD"]}
    for url, context in (
        (f"tls://127.0.0.1:{tls_nats.port}", ssl.create_default_context()),  # the system's CAs only
        (f"nats://127.0.0.1:{tls_nats.port}", None),
    ):
        options: dict[str, object] = {"allow_reconnect": False, "max_reconnect_attempts": 0, "connect_timeout": 5}
        if context is not None:
            options |= {"tls": context, "tls_handshake_first": True}
        with pytest.raises(ssl.SSLCertVerificationError):
            await nats.connect(url, **creds, **options)  # type: ignore[arg-type]
