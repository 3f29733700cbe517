"""Shared fixtures: one real nats-server and one Redis-compatible server per test session, on free loopback
ports, with their data under pytest's temporary directory (server logs: `<data_dir>/<name>.log`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from edgeplane_common.bus.nats import NatsMessageBus
from edgeplane_common.embedded import EmbeddedNats, EmbeddedRedis
from edgeplane_common.redis import create_redis, wait_for_redis
from edgeplane_common.settings import NatsSettings, RedisSettings
from tests.support.reference import MISSING_REASON, REFERENCE

# Modules built on the EdgeX reference files as a whole are not collected without them.
collect_ignore = [] if REFERENCE else ["contract/test_metadata_openapi.py", "integration/test_metadata_samples.py"]


def pytest_report_header() -> str:
    return f"EdgeX reference files: {REFERENCE}" if REFERENCE else f"WARNING: {MISSING_REASON}; those tests are skipped"


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    with EmbeddedNats(data_dir=tmp_path_factory.mktemp("nats")) as server:
        yield server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(data_dir=tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="session")
def nats_url(nats_server: EmbeddedNats) -> str:
    return nats_server.url


@pytest.fixture(scope="session")
def redis_url(redis_server: EmbeddedRedis) -> str:
    return redis_server.url


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[NatsMessageBus]:
    """A connected bus (short redelivery delay so nak tests stay quick), drained after the test."""
    bus = NatsMessageBus(NatsSettings(url=nats_url), name="pytest", redelivery_delay=0.1)
    # connect() waits forever for a missing server; a test should fail instead.
    async with asyncio.timeout(10):
        await bus.connect()
    yield bus
    await bus.close()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client on an empty database (FLUSHDB first); tests of one session share the server."""
    client = create_redis(RedisSettings(url=SecretStr(redis_url)))
    await wait_for_redis(client, timeout=10)
    await client.flushdb()
    yield client
    await client.aclose()
