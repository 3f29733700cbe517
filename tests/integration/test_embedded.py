"""The embedded servers (what the test fixtures and the launcher run) and the clients' behaviour when a
server is late, restarts or is gone."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from edgeplane_common.bus.envelope import MessageEnvelope
from edgeplane_common.bus.nats import NatsMessageBus
from edgeplane_common.embedded import EmbeddedNats, EmbeddedRedis, PortBusyError, free_port, port_in_use
from edgeplane_common.errors import ServiceUnavailable
from edgeplane_common.redis import create_redis, wait_for_redis
from edgeplane_common.settings import NatsSettings, RedisSettings


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def listener() -> Iterator[int]:
    """A port something else is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_servers_start_on_free_ports_and_stop(tmp_path: Path) -> None:
    nats_server = EmbeddedNats(data_dir=tmp_path / "nats")
    redis_server = EmbeddedRedis(data_dir=tmp_path / "redis")
    with nats_server, redis_server:
        assert nats_server.port != redis_server.port
        assert nats_server.url == f"nats://127.0.0.1:{nats_server.port}"
        assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
        pids = [nats_server.pid, redis_server.pid]
        assert all(pid is not None and _alive(pid) for pid in pids)
        for server in (nats_server, redis_server):
            socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
    assert nats_server.pid is None
    assert redis_server.pid is None
    assert not any(_alive(pid) for pid in pids if pid is not None)
    assert not port_in_use("127.0.0.1", nats_server.port)
    # Server output goes to the data dir, not to our stdout.
    assert "Server is ready" in (tmp_path / "nats" / "nats.log").read_text()
    assert "Ready to accept connections" in (tmp_path / "redis" / "redis.log").read_text()


@pytest.mark.parametrize("kind", [EmbeddedNats, EmbeddedRedis])
def test_killed_server_is_reaped_and_starts_again_on_its_port(
    tmp_path: Path, kind: type[EmbeddedNats] | type[EmbeddedRedis]
) -> None:
    """What the launcher's supervisor does with a server that died: poll (reap, exit code), start again."""
    with kind(data_dir=tmp_path / "srv") as server:
        first = server.pid
        assert first is not None
        assert server.poll() is None
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while (code := server.poll()) is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert code == -signal.SIGKILL
        assert not _alive(first), "reaped: no zombie left behind"
        server.start()
        assert server.pid not in (None, first)
        assert server.poll() is None
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
    log = server.log_path.read_text()
    assert log.count(f"starting {server.kind} on 127.0.0.1:{server.port}") == 2, log


@pytest.mark.parametrize("server_cls", [EmbeddedNats, EmbeddedRedis])
def test_taken_port_is_refused_before_spawning(
    server_cls: type[EmbeddedNats | EmbeddedRedis], listener: int, tmp_path: Path
) -> None:
    server = server_cls(port=listener, data_dir=tmp_path)
    with pytest.raises(PortBusyError, match=f"port {listener} .* on 127.0.0.1 is already in use"):
        server.start()
    assert server.pid is None
    assert not server.log_path.exists()  # nothing was spawned


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert 0 < port < 65536
    assert not port_in_use("127.0.0.1", port)


async def test_redis_data_survives_restart(tmp_path: Path) -> None:
    server = EmbeddedRedis(data_dir=tmp_path)
    await asyncio.to_thread(server.start)
    try:
        client = create_redis(RedisSettings(url=SecretStr(server.url)))
        await client.set("edgeplane:test", "kept")
        await client.hset("edgeplane:hash", mapping={"a": "1", "b": "2"})
        await client.aclose()

        await asyncio.to_thread(server.stop)  # SIGTERM: the AOF is fsynced on shutdown
        await asyncio.to_thread(server.start)

        client = create_redis(RedisSettings(url=SecretStr(server.url)))
        await wait_for_redis(client, timeout=10)
        assert await client.get("edgeplane:test") == b"kept"
        assert await client.hgetall("edgeplane:hash") == {b"a": b"1", b"b": b"2"}
        await client.aclose()
    finally:
        await asyncio.to_thread(server.stop)
    assert any((tmp_path / "appendonlydir").iterdir())


async def test_nats_stream_survives_restart(tmp_path: Path) -> None:
    server = EmbeddedNats(data_dir=tmp_path)
    await asyncio.to_thread(server.start)
    try:
        bus = NatsMessageBus(NatsSettings(url=server.url), name="restart-test")
        await bus.connect()
        await bus.ensure_stream("KEEP", ["keep.>"])
        for i in range(3):
            await bus.publish_durable("keep.e", MessageEnvelope(payload=i))
        await bus.close()

        await asyncio.to_thread(server.stop)
        await asyncio.to_thread(server.start)

        bus = NatsMessageBus(NatsSettings(url=server.url), name="restart-test")
        await bus.connect()
        got: list[object] = []

        async def collect(envelope: MessageEnvelope) -> None:
            got.append(envelope.payload)

        await bus.consume("KEEP", "reader", "keep.>", collect)
        async with asyncio.timeout(5):
            while True:
                if len(got) >= 3:
                    break
                await asyncio.sleep(0.02)
        assert got == [0, 1, 2]
        await bus.close()
    finally:
        await asyncio.to_thread(server.stop)


async def test_nats_bus_waits_for_late_server_and_rides_out_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="edgeplane_common.bus.nats")
    server = EmbeddedNats(port=free_port(), data_dir=tmp_path)
    # Credentials in the URL (this server has no auth and ignores them) must never reach the logs.
    url = f"nats://edge:s3cret@127.0.0.1:{server.port}"
    bus = NatsMessageBus(NatsSettings(url=url, connect_timeout=1), name="late-test")
    connecting = asyncio.create_task(bus.connect())
    try:
        await asyncio.sleep(2.5)  # more than one retry interval: several failed attempts
        assert not connecting.done()
        await asyncio.to_thread(server.start)
        async with asyncio.timeout(10):
            await connecting

        async def echo(envelope: MessageEnvelope) -> MessageEnvelope:
            return envelope.reply(envelope.payload)

        await bus.subscribe("late.echo", echo)
        assert (await bus.request("late.echo", MessageEnvelope(payload=1), timeout=2)).payload == 1

        # Restart the server on the same port: the client reconnects and restores the subscription.
        await asyncio.to_thread(server.stop)
        await asyncio.sleep(0.5)
        await asyncio.to_thread(server.start)
        async with asyncio.timeout(15):
            while True:
                try:
                    reply = await bus.request("late.echo", MessageEnvelope(payload=2), timeout=0.5)
                    break
                except ServiceUnavailable:
                    await asyncio.sleep(0.1)
        assert reply.payload == 2
    finally:
        connecting.cancel()
        await bus.close()
        await asyncio.to_thread(server.stop)

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    # Each outage is logged once when it starts and once when it ends, not once per attempt.
    assert sum("unreachable" in m for m in warnings) == 1, warnings
    assert sum("disconnected from NATS" in m for m in warnings) == 1, warnings
    assert any("still unreachable" in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any("after waiting" in m for m in infos)
    assert sum("reconnected to NATS" in m for m in infos) == 1
    assert not any("s3cret" in r.getMessage() for r in caplog.records)
    assert any(f"127.0.0.1:{server.port}" in m for m in warnings)


async def test_wait_for_redis_gives_up_naming_the_address_not_the_password() -> None:
    port = free_port()
    client = create_redis(RedisSettings(url=SecretStr(f"redis://:s3cret@127.0.0.1:{port}/2")))
    try:
        with pytest.raises(ServiceUnavailable, match=f"127.0.0.1:{port}/2") as info:
            await wait_for_redis(client, timeout=0.5)
        assert "s3cret" not in str(info.value)
    finally:
        await client.aclose()


async def test_wait_for_redis_waits_for_a_late_server(tmp_path: Path) -> None:
    server = EmbeddedRedis(port=free_port(), data_dir=tmp_path)
    client = create_redis(RedisSettings(url=SecretStr(server.url)))
    waiting = asyncio.create_task(wait_for_redis(client, timeout=15))
    try:
        await asyncio.sleep(0.5)
        assert not waiting.done()
        await asyncio.to_thread(server.start)
        async with asyncio.timeout(15):
            await waiting
        assert await client.ping()
    finally:
        waiting.cancel()
        await client.aclose()
        await asyncio.to_thread(server.stop)


async def test_redis_client_recovers_after_server_restart(tmp_path: Path) -> None:
    server = EmbeddedRedis(data_dir=tmp_path)
    await asyncio.to_thread(server.start)
    client = create_redis(RedisSettings(url=SecretStr(server.url)))
    try:
        await client.set("k", "v1")
        await asyncio.to_thread(server.stop)
        await asyncio.to_thread(server.start)
        # The pooled connection is dead; redis-py's Retry reconnects without the caller noticing.
        assert await client.get("k") == b"v1"
    finally:
        await client.aclose()
        await asyncio.to_thread(server.stop)
