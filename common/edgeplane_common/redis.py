"""The Redis client every store adapter shares: one bounded pool, retries on connection trouble.

Services start before Redis in compose and must ride out Redis restarts: connection errors and timeouts
are retried with capped exponential backoff by redis-py itself (`Retry`), idle connections are checked
before reuse (`health_check_interval`), and `wait_for_redis` holds start-up until Redis answers.

Secure mode: each service logs in as its own ACL user (`username`/`password`, which override any in the URL),
and a `rediss://` URL is TLS verified against the CA the service trusts (`tls.ca_file`, else the system's).
"""

from __future__ import annotations

import logging
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from edgeplane_common.bootstrap import Action, ServiceBootstrap, connect_with_retry
from edgeplane_common.settings import RedisSettings, TlsSettings

logger = logging.getLogger(__name__)

HEALTH_CHECK_INTERVAL_S = 15
"""A connection idle for longer is PINGed before reuse, so a Redis restart is noticed before a command."""
CONNECT_TIMEOUT_S = 5.0
POOL_WAIT_S = 10.0
"""How long a command waits for a free pooled connection before failing."""
COMMAND_RETRIES = 3


def connection_options(settings: RedisSettings, tls: TlsSettings | None = None) -> dict[str, Any]:
    """redis-py's keyword arguments for the credentials and TLS the settings give (none in open mode)."""
    options: dict[str, Any] = {}
    if settings.username:
        options["username"] = settings.username
    if settings.password is not None:
        options["password"] = settings.password.get_secret_value()
    url = settings.url.get_secret_value()
    if url.startswith("rediss://"):
        # Verify the server against our CA and its name (redis-py's defaults: required, hostname checked).
        options["ssl_cert_reqs"] = "required"
        if tls is not None and tls.ca_file:
            options["ssl_ca_certs"] = tls.ca_file
    return options


def create_redis(settings: RedisSettings, tls: TlsSettings | None = None) -> aioredis.Redis:
    """A client owning a blocking pool of `settings.max_connections` connections.

    Blocking pool: under load callers wait for a connection instead of failing with "too many connections".
    Close it with `await client.aclose()`."""
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.url.get_secret_value(),
        **connection_options(settings, tls),
        max_connections=settings.max_connections,
        timeout=POOL_WAIT_S,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        retry=Retry(
            ExponentialBackoff(cap=2.0, base=0.1),
            COMMAND_RETRIES,
            supported_errors=(RedisConnectionError, RedisTimeoutError),
        ),
    )
    return aioredis.Redis.from_pool(pool)


def redis_address(client: aioredis.Redis) -> str:
    """`host:port/db` of the client's server, never the password (the URL may carry one)."""
    kw = client.connection_pool.connection_kwargs
    if "path" in kw:
        return f"unix:{kw['path']}"
    return f"{kw.get('host', 'localhost')}:{kw.get('port', 6379)}/{kw.get('db', 0)}"


REDIS_RETRYABLE = (RedisError, OSError, TimeoutError)
"""What waiting for Redis retries: it may still be starting, or loading its data."""
START_WAIT_S = 60.0
"""How long a service's start-up waits for Redis before it gives up (and its supervisor restarts it)."""


def connect_redis(
    boot: ServiceBootstrap, client: aioredis.Redis, *, close: Action, timeout: float = START_WAIT_S
) -> None:
    """Add "wait until Redis answers" to a service's start steps, and a PING to its readiness probes; `close`
    (the store owning `client`) is called on teardown."""
    name = f"Redis at {redis_address(client)}"
    boot.connect(name, client.ping, close=close, timeout=timeout, retry_on=REDIS_RETRYABLE)

    async def answers() -> None:
        await client.ping()

    boot.readiness.probe(name, answers)


async def wait_for_redis(client: aioredis.Redis, timeout: float = 30.0) -> None:
    """PING until Redis answers or `timeout` passes (ServiceUnavailable naming host:port, never the password).

    Logs the wait once, not once per try. A service's bootstrap does the same as its `connect` step."""
    where = f"Redis at {redis_address(client)}"
    await connect_with_retry(where, client.ping, timeout=timeout, retry_on=REDIS_RETRYABLE, log=logger)


__all__ = [
    "REDIS_RETRYABLE",
    "START_WAIT_S",
    "connect_redis",
    "connection_options",
    "create_redis",
    "redis_address",
    "wait_for_redis",
]
