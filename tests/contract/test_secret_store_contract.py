"""One suite for the encrypted secret store's backends: Redis (the real server) and the in-memory fake. The
fake serves no other test than this suite, which it passes like the adapter. Every test runs against both:
what the backend keeps, and what the store on top of it does with ciphertext that was altered, sealed under
another key, or copied to another name or service."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from edgeplane_common.errors import LimitExceeded, NotFound
from edgeplane_common.redis import create_redis
from edgeplane_common.secrets import (
    MemorySecretBackend,
    RedisSecretBackend,
    SecretBackend,
    SecretCipher,
    SecretStore,
    redis_key,
)
from edgeplane_common.settings import RedisSettings

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


class Server:
    """Where several services' backends keep their values, and raw access to them (as an attacker or an
    operator with the server in hand has)."""

    def backend(self, service: str) -> SecretBackend:
        raise NotImplementedError

    async def raw(self, service: str, name: str) -> bytes | None:
        raise NotImplementedError

    async def set_raw(self, service: str, name: str, blob: bytes) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        return None


class MemoryServer(Server):
    def __init__(self) -> None:
        self.tables: dict[str, dict[str, bytes]] = {}

    def backend(self, service: str) -> SecretBackend:
        return MemorySecretBackend(service, self.tables)

    async def raw(self, service: str, name: str) -> bytes | None:
        return self.tables.get(service, {}).get(name)

    async def set_raw(self, service: str, name: str, blob: bytes) -> None:
        self.tables.setdefault(service, {})[name] = blob


class RedisServer(Server):
    def __init__(self, url: str, client: aioredis.Redis) -> None:
        self.url = url
        self.client = client
        self.made: list[SecretBackend] = []

    def backend(self, service: str) -> SecretBackend:
        backend = RedisSecretBackend(create_redis(RedisSettings(url=SecretStr(self.url))), service)
        self.made.append(backend)
        return backend

    async def raw(self, service: str, name: str) -> bytes | None:
        value = await self.client.hget(redis_key(service), name)  # type: ignore[misc]
        return None if value is None else bytes(value)

    async def set_raw(self, service: str, name: str, blob: bytes) -> None:
        await self.client.hset(redis_key(service), name, blob)  # type: ignore[misc]

    async def close(self) -> None:
        for backend in self.made:
            await backend.close()
        await self.client.aclose()


@pytest.fixture(params=["redis", "memory"])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[Server]:
    s: Server
    if request.param == "memory":
        s = MemoryServer()
    else:
        url = request.getfixturevalue("redis_url")
        client = create_redis(RedisSettings(url=SecretStr(url)))
        await client.flushdb()
        s = RedisServer(url, client)
    yield s
    await s.close()


def secret_value() -> str:
    return "pa55-" + uuid.uuid4().hex


async def started(server: Server, service: str, key: bytes = KEY, **limits: int) -> SecretStore:
    """A service's store as it is after start (loaded)."""
    store = SecretStore(backend=server.backend(service), cipher=SecretCipher(key, service), **limits)
    await store.load()
    return store


# ------------------------------------------------------------------------------------------- the backend


async def test_a_backend_keeps_what_it_is_given_per_service(server: Server) -> None:
    a, b = server.backend("svc-a"), server.backend("svc-b")
    assert await a.load() == {}
    await a.write("db", b"one")
    await a.write("odd: *name?[x] é", b"\x00two")
    await a.write("db", b"three")  # replaced
    await b.write("db", b"other service")
    assert await a.load() == {"db": b"three", "odd: *name?[x] é": b"\x00two"}
    assert await server.backend("svc-a").load() == await a.load()  # another connection (a restart)
    assert await b.load() == {"db": b"other service"}
    assert await server.raw("svc-a", "db") == b"three"


# ------------------------------------------------------------------------------------------- the store


async def test_what_is_stored_is_ciphertext_and_survives_a_restart(server: Server) -> None:
    value = secret_value()
    store = await started(server, "app-http-export")
    await store.put("cloud", {"token": value})
    raw = await server.raw("app-http-export", "cloud")
    assert raw is not None
    assert value.encode() not in raw
    assert b"token" not in raw
    await store.put("cloud", {"token": value})
    assert await server.raw("app-http-export", "cloud") != raw  # a fresh nonce per write
    again = await started(server, "app-http-export")  # the service restarted
    assert again.get("cloud") == {"token": value}
    assert again.problem() is None


async def test_altered_or_moved_ciphertext_is_refused_by_name_and_the_rest_still_loads(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    values = {name: secret_value() for name in ("good", "tampered", "moved", "stolen")}
    opcua = await started(server, "device-opcua")
    for name in ("good", "tampered", "moved"):
        await opcua.put(name, {"password": values[name]})
    other = await started(server, "device-modbus")
    await other.put("stolen", {"password": values["stolen"]})

    blob = await server.raw("device-opcua", "tampered")
    assert blob is not None
    await server.set_raw("device-opcua", "tampered", blob[:-1] + bytes([blob[-1] ^ 0x01]))
    moved = await server.raw("device-opcua", "moved")
    assert moved is not None
    await server.set_raw("device-opcua", "renamed", moved)  # another name of the same service
    stolen = await server.raw("device-modbus", "stolen")
    assert stolen is not None
    await server.set_raw("device-opcua", "stolen", stolen)  # another service's ciphertext

    caplog.clear()
    store = await started(server, "device-opcua")
    assert store.names() == ["good", "moved"]
    assert store.get("good") == {"password": values["good"]}
    assert store.unreadable() == ["renamed", "stolen", "tampered"]
    with pytest.raises(NotFound, match="'tampered' is stored but cannot be decrypted"):
        store.get("tampered")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is None
    message = errors[0].getMessage()
    assert "cannot decrypt secret(s) 'renamed', 'stolen', 'tampered'" in message
    assert "SECURITY__SECRET_KEY_FILE" in message
    assert "'tampered'" in (store.problem() or "")

    # Posting it again replaces what could not be read.
    await store.put("tampered", {"password": "new"})
    assert store.get("tampered") == {"password": "new"}
    assert (await started(server, "device-opcua")).unreadable() == ["renamed", "stolen"]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not any(v in logged for v in values.values())


async def test_a_wrong_key_reads_nothing_and_says_which_secrets(server: Server) -> None:
    store = await started(server, "app-mqtt-export")
    await store.put("broker", {"username": "edge", "password": secret_value()})
    rotated = await started(server, "app-mqtt-export", key=OTHER_KEY)
    assert rotated.names() == []
    assert rotated.unreadable() == ["broker"]
    assert "cannot decrypt secret(s) 'broker'" in (rotated.problem() or "")
    # The right key again: nothing was lost.
    assert (await started(server, "app-mqtt-export")).names() == ["broker"]


async def test_limits_hold_with_a_backend_and_a_refused_write_stores_nothing(server: Server) -> None:
    store = await started(server, "svc", max_secrets=2, max_secret_bytes=16)
    await store.put("a", {"k": "1"})
    await server.set_raw("svc", "b", b"garbage")  # unreadable, but it holds a place
    store = await started(server, "svc", max_secrets=2, max_secret_bytes=16)
    with pytest.raises(LimitExceeded, match="maximum of 2 secrets"):
        await store.put("c", {"k": "3"})
    with pytest.raises(LimitExceeded, match="the maximum is 16 bytes"):
        await store.put("a", {"k": "x" * 16})
    assert await server.raw("svc", "c") is None
    assert store.get("a") == {"k": "1"}
    await store.put("b", {"k": "2"})  # replacing the unreadable one is allowed
    assert store.unreadable() == []


async def test_a_device_whose_password_cannot_be_decrypted_says_so(server: Server) -> None:
    from device_opcua.attributes import parse_protocols
    from device_opcua.security import credentials
    from edgeplane_common.errors import ContractInvalid

    store = await started(server, "device-opcua")
    await store.put("line-login", {"username": "operator", "password": secret_value()})
    conn = parse_protocols({"opcua": {"Endpoint": "opc.tcp://plc:4840", "SecretName": "line-login"}}, device="d")
    assert credentials(conn, store)[0] == "operator"
    rotated = await started(server, "device-opcua", key=OTHER_KEY)
    with pytest.raises(ContractInvalid, match="'line-login' is stored but cannot be decrypted with this service's key"):
        credentials(conn, rotated)
