"""The encrypted secret store on real services and the real Redis-compatible server: what Redis holds is
ciphertext, a secret posted before a restart reaches its consumer after it, a wrong key is one clear error
(the service runs on), Redis down at start is waited for, the ACL prefix is all a service needs, and no
secret value appears in logs, /api/v3/config, /metrics or error bodies."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from pydantic import SecretStr
from redis.exceptions import NoPermissionError

from app_services.main import create_app as create_app_service
from app_services.settings import AppServiceSettings
from edgeplane_common.bus import MessageEnvelope, Topics
from edgeplane_common.bus.nats import NatsMessageBus
from edgeplane_common.embedded import EmbeddedRedis, free_port
from edgeplane_common.errors import ServiceUnavailable
from edgeplane_common.http import create_service_app
from edgeplane_common.redis import create_redis
from edgeplane_common.secrets import RedisSecretBackend, SecretCipher, SecretStore, redis_key
from edgeplane_common.settings import RedisSettings, ServiceSettings
from tests.support.apps import event, reading, write_pipeline
from tests.support.export_targets import running_app
from tests.support.stack import wait_until

PIPELINE = """Trigger: {Type: edgex-messagebus, SubscribeTopics: "events/device/DSVC/#"}
Writable:
  Pipeline:
    ExecutionOrder: "Transform, HTTPExport"
    Functions:
      Transform: {Parameters: {Type: json}}
      HTTPExport:
        Parameters:
          Url: "URL/ingest"
          HeaderName: X-Token
          SecretName: cloud
          SecretValueKey: token
  StoreAndForward: {RetryInterval: 50ms, MaxRetryInterval: 200ms}
"""


def key_file(tmp_path: Path, name: str = "svc.key", key: bytes | None = None) -> Path:
    path = tmp_path / name
    path.write_bytes(key if key is not None else uuid.uuid4().bytes * 2)
    path.chmod(0o600)
    return path


def secret_body(name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v3",
        "secretName": name,
        "secretData": [{"key": k, "value": v} for k, v in data.items()],
    }


class Receiver:
    """A local HTTP endpoint recording the X-Token header of what it is sent."""

    def __init__(self) -> None:
        self.port = free_port()
        self.tokens: list[str | None] = []
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.tokens.append(request.headers.get("X-Token"))
        return web.Response(status=200)

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def all_logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured record as a handler would write it: message, arguments and traceback."""
    lines = []
    for r in caplog.records:
        lines.append(f"{r.name} {r.getMessage()} {r.args!r}")
        if r.exc_info:
            lines.append(logging.Formatter().formatException(r.exc_info))
    return "\n".join(lines)


async def test_an_export_secret_is_stored_encrypted_and_reaches_the_export_after_a_restart(
    bus: NatsMessageBus, nats_url: str, redis_url: str, redis_client: aioredis.Redis, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    value = "tok-" + uuid.uuid4().hex
    dsvc = f"dev-{uuid.uuid4().hex[:8]}"
    name = f"app-secret-{uuid.uuid4().hex[:6]}"
    async with Receiver() as receiver:
        path = write_pipeline(
            tmp_path, PIPELINE.replace("DSVC", dsvc).replace("URL", f"http://127.0.0.1:{receiver.port}")
        )
        settings = AppServiceSettings.model_validate(
            {
                "service_name": name,
                "pipeline_file": str(path),
                "nats": {"url": nats_url},
                "redis": {"url": redis_url},
                "security": {"secret_key_file": str(key_file(tmp_path))},
            }
        )
        async with running_app(create_app_service(settings, environ={})) as client:
            created = await client.post("/api/v3/secret", json=secret_body("cloud", token=value))
            assert created.status_code == 201, created.text
            # Bad input: 400 and 413 with a message, never the value.
            bad = await client.post("/api/v3/secret", json={"secretName": "cloud", "secretData": [{"value": value}]})
            assert bad.status_code == 400, bad.text
            big = await client.post("/api/v3/secret", json=secret_body("big", token=value + "x" * 70_000))
            assert big.status_code == 413, big.text
            assert value not in bad.text + big.text
            for path_ in ("/api/v3/config", "/metrics", "/api/v3/health", "/api/v3/status"):
                assert value not in (await client.get(path_)).text, path_
        raw = await redis_client.hget(redis_key(name), "cloud")  # type: ignore[misc]
        assert raw is not None
        assert value.encode() not in raw
        assert b"token" not in raw
        assert await redis_client.hget(redis_key(name), "big") is None  # type: ignore[misc]

        # The service restarts (its own NATS connection each time): the export gets its header from the
        # stored secret.
        app = create_app_service(settings, environ={})
        async with running_app(app) as client:
            await wait_until(lambda: app.state.app_service.trigger.subscriptions, timeout=20)
            topic = Topics.events(dsvc, "Pump", "pump-1", "Flow")
            await bus.publish_durable(
                topic, MessageEnvelope(payload=event("pump-1", [reading("Flow", "1")]), content_type="application/json")
            )
            await wait_until(lambda: receiver.tokens, timeout=20)
            assert receiver.tokens[0] == value
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("secrets: encrypted")]
    assert said[-1].endswith(f"key {redis_key(name)}; 1 loaded")
    assert value not in all_logged(caplog)


async def test_a_wrong_key_at_start_is_one_clear_error_and_the_service_runs_on(
    redis_url: str, redis_client: aioredis.Redis, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    value = "pw-" + uuid.uuid4().hex

    def settings(key: Path) -> ServiceSettings:
        return ServiceSettings.model_validate(
            {"service_name": "device-x", "redis": {"url": redis_url}, "security": {"secret_key_file": str(key)}}
        )

    async with running_app(
        create_service_app(settings(key_file(tmp_path, "old.key")), version="0", title="t", routers=[])
    ) as client:
        assert (await client.post("/api/v3/secret", json=secret_body("plc-login", password=value))).status_code == 201
    caplog.clear()
    # The key file was replaced (rotated without moving the secrets): the service still starts.
    app = create_service_app(settings(key_file(tmp_path, "new.key")), version="0", title="t", routers=[])
    async with running_app(app) as client:
        health = await client.get("/api/v3/health")
        assert health.status_code == 503
        (check,) = [c for n, c in health.json()["checks"].items() if n.startswith("secret store")]
        assert "cannot decrypt secret(s) 'plc-login'" in check["message"]
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert [r.getMessage().split(" with ")[0] for r in errors] == ["secrets: cannot decrypt secret(s) 'plc-login'"]
        assert all(r.exc_info is None for r in caplog.records)  # no traceback anywhere
        # Posting the secret again (under the new key) is the way back.
        assert (await client.post("/api/v3/secret", json=secret_body("plc-login", password=value))).status_code == 201
        assert (await client.get("/api/v3/health")).status_code == 200
        assert app.state.secrets.get("plc-login") == {"password": value}
    assert value not in all_logged(caplog)


async def test_redis_down_at_start_is_waited_for_and_down_later_answers_503(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    value = "pw-" + uuid.uuid4().hex
    port = free_port()
    settings = ServiceSettings.model_validate(
        {
            "service_name": "device-y",
            "redis": {"url": f"redis://127.0.0.1:{port}/0"},
            "security": {"secret_key_file": str(key_file(tmp_path))},
        }
    )
    app = create_service_app(settings, version="0", title="t", routers=[])
    server = EmbeddedRedis(port=port, data_dir=tmp_path / "redis")
    try:
        async with contextlib.AsyncExitStack() as stack:
            starting = asyncio.create_task(stack.enter_async_context(running_app(app)))
            await wait_until(
                lambda: any("waiting for secret store" in r.getMessage() for r in caplog.records), timeout=20
            )
            assert not starting.done()
            await asyncio.to_thread(server.start)
            client = await asyncio.wait_for(starting, timeout=60)
            assert (await client.get("/api/v3/health")).status_code == 200
            await asyncio.to_thread(server.stop)
            down = await client.post("/api/v3/secret", json=secret_body("plc-login", password=value))
            assert down.status_code == 503, down.text
            assert "cannot store secret 'plc-login'" in down.json()["message"]
            assert value not in down.text
            with pytest.raises(Exception, match="no secret named"):
                app.state.secrets.get("plc-login")  # a refused write changes nothing
    finally:
        server.stop()
    assert value not in all_logged(caplog)


async def test_the_key_prefix_is_all_a_service_s_redis_acl_grants(redis_url: str, redis_client: aioredis.Redis) -> None:
    user, password = f"svc-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    # As the Redis ACLs of secure mode grant it: this service's own prefix, the commands the store uses.
    await redis_client.execute_command(
        "ACL",
        "SETUSER",
        user,
        "on",
        f">{password}",
        "resetkeys",
        f"~secrets:{user}:*",
        "-@all",
        "+hgetall",
        "+hset",
        "+ping",
    )
    try:
        url = redis_url.replace("redis://", f"redis://{user}:{password}@")
        owner = create_redis(RedisSettings(url=SecretStr(url)))
        try:
            mine = SecretStore(backend=RedisSecretBackend(owner, user), cipher=SecretCipher(bytes(32), user))
            await mine.load()
            await mine.put("db", {"password": "x"})
            # Another service's secrets: the server refuses, our code does not have to.
            theirs = RedisSecretBackend(owner, "core-data")
            with pytest.raises(NoPermissionError):
                await theirs.load()
            with pytest.raises(ServiceUnavailable, match=r"cannot store secret 'db' .*NoPermissionError"):
                await theirs.write("db", b"x")
        finally:
            await owner.aclose()
    finally:
        await redis_client.execute_command("ACL", "DELUSER", user)


async def run_app_service(env: dict[str, str], log_path: Path, port: int, value: str | None) -> str:
    """Start `python -m app_services` (app-http-export), wait until healthy, post `value` as secret `cloud`
    if given, stop it with SIGTERM; its log output."""
    with log_path.open("wb") as log_file:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app_services", "--instance", "app-http-export",
            env=env, stdout=log_file, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:

                async def healthy() -> bool:
                    if proc.returncode is not None:
                        raise AssertionError(await asyncio.to_thread(log_path.read_text))
                    with contextlib.suppress(httpx.HTTPError):
                        return (await client.get("/api/v3/health")).status_code == 200
                    return False

                await wait_until(healthy, timeout=60, interval=0.2)
                if value is not None:
                    r = await client.post("/api/v3/secret", json=secret_body("cloud", token=value))
                    assert r.status_code == 201, r.text
                assert "SECRET_KEY_FILE" in (await client.get("/api/v3/config")).text.upper()
        finally:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 30)
    return await asyncio.to_thread(log_path.read_text)


async def test_a_service_process_keeps_its_secret_across_a_restart_and_never_logs_it(
    redis_url: str, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    """The real process (a disabled instance: no NATS needed) restarted, its own log output at DEBUG
    grepped for the value."""
    value = "proc-" + uuid.uuid4().hex
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDGEPLANE_", "APP_HTTP_EXPORT_"))}
    env.update(
        {
            "APP_HTTP_EXPORT_HTTP__HOST": "127.0.0.1",
            "APP_HTTP_EXPORT_HTTP__PORT": str(port),
            "APP_HTTP_EXPORT_LOG_LEVEL": "DEBUG",
            "APP_HTTP_EXPORT_REDIS__URL": redis_url,
            "APP_HTTP_EXPORT_SECURITY__SECRET_KEY_FILE": str(key_file(tmp_path)),
        }
    )
    first = await run_app_service(env, tmp_path / "first.log", port, value)
    second = await run_app_service(env, tmp_path / "second.log", port, None)
    assert "secrets: encrypted (AES-256-GCM)" in first
    assert "key secrets:app-http-export:store; 1 loaded" in second  # read back after the restart
    raw = await redis_client.hget(redis_key("app-http-export"), "cloud")  # type: ignore[misc]
    assert raw is not None
    assert value.encode() not in raw
    assert value not in first + second
