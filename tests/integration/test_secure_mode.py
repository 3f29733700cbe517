"""Secure mode end to end over HTTP: core-metadata (real Redis and NATS, served on a port) issues tokens and
publishes its keys; every service verifies them locally. Every route of every service's served OpenAPI
document is checked: 401 without a token, 403 with a role too weak for it; ping and health stay open."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import redis.asyncio as aioredis
import uvicorn
from fastapi import FastAPI

from app_services.main import create_app as create_app_service
from app_services.settings import AppServiceSettings
from core_command.main import create_app as create_core_command
from core_command.settings import CoreCommandSettings
from core_data.main import create_app as create_core_data
from core_data.settings import CoreDataSettings
from core_metadata.main import create_app as create_core_metadata
from device_modbus.main import create_app as create_device_modbus
from device_modbus.settings import DeviceModbusSettings
from device_opcua.main import create_app as create_device_opcua
from device_opcua.settings import DeviceOpcuaSettings
from device_virtual.main import create_app as create_device_virtual
from device_virtual.settings import DeviceVirtualSettings
from edgeplane_common.auth import TokenIssuer, load_or_create_signing_key
from edgeplane_common.auth.roles import ROLE_EXTENSION
from edgeplane_common.embedded import free_port
from edgeplane_common.http.app import server_config
from rules_engine.main import create_app as create_rules_engine
from rules_engine.settings import RulesEngineSettings
from tests.support.metadata import metadata_settings

ADMIN_PASSWORD = "first-admin-pw"
OPEN = {"/api/v3/ping", "/api/v3/health", "/api/v3/key", "/api/v3/auth/login"}
WEAKER = {"viewer": "nobody", "operator": "viewer", "admin": "operator"}


@dataclass
class SecureStack:
    url: str
    issuer: TokenIssuer
    server: uvicorn.Server

    def token(self, role: str, subject: str = "tester") -> str:
        """A service token with `role`: verified like any token, and not tied to a stored user."""
        return self.issuer.issue(subject, role, ttl=300, kind="service")

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role)}"}

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=30)


@pytest.fixture
async def secure(tmp_path: Path, nats_url: str, redis_url: str) -> AsyncIterator[SecureStack]:
    r = aioredis.from_url(redis_url)
    await r.flushdb()
    await r.aclose()
    key_file = tmp_path / "keys" / "token-signing.pem"
    settings = metadata_settings(
        nats_url,
        redis_url,
        security={
            "enabled": True,
            "signing_key_file": str(key_file),
            "admin_password": ADMIN_PASSWORD,
            "login_failure_delay": 0.01,
            "login_max_failures": 3,
        },
    )
    app = create_core_metadata(settings)
    port = free_port()
    server = uvicorn.Server(server_config(app, "127.0.0.1", port))
    task = asyncio.create_task(server.serve())
    for _ in range(400):
        if server.started or task.done():
            break
        await asyncio.sleep(0.05)
    assert server.started
    try:
        yield SecureStack(f"http://127.0.0.1:{port}", TokenIssuer(load_or_create_signing_key(key_file)), server)
    finally:
        server.should_exit = True
        await task


def other_services(jwks_url: str) -> dict[str, FastAPI]:
    """Each service's app in secure mode (no lifespan: the token check comes before any dependency)."""
    sec = {"security": {"enabled": True, "jwks_url": jwks_url}}
    return {
        "core-data": create_core_data(CoreDataSettings.model_validate(sec)),
        "core-command": create_core_command(CoreCommandSettings.model_validate(sec)),
        "rules-engine": create_rules_engine(RulesEngineSettings.model_validate(sec)),
        "device-modbus": create_device_modbus(DeviceModbusSettings.model_validate(sec)),
        "device-opcua": create_device_opcua(DeviceOpcuaSettings.model_validate(sec)),
        "device-virtual": create_device_virtual(DeviceVirtualSettings.model_validate(sec)),
        "app-http-export": create_app_service(
            AppServiceSettings.model_validate({**sec, "service_name": "app-http-export"}), environ={}
        ),
    }


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


async def _check_every_route(name: str, client: httpx.AsyncClient, stack: SecureStack) -> tuple[int, list[str]]:
    doc = await client.get("/api/v3/openapi.json", headers=stack.auth("viewer"))
    assert doc.status_code == 200, (name, doc.text)
    assert (await client.get("/api/v3/openapi.json")).status_code == 401
    checked, problems = 0, []
    for path, ops in doc.json()["paths"].items():
        for method, op in ops.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            url, verb = _concrete(path), method.upper()
            if path in OPEN:
                r = await client.request(verb, url)
                if r.status_code in (401, 403):
                    problems.append(f"{name} {verb} {path}: open route answered {r.status_code}")
                continue
            checked += 1
            r = await client.request(verb, url)
            body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
            if r.status_code != 401 or body.get("statusCode") != 401 or body.get("apiVersion") != "v3":
                problems.append(f"{name} {verb} {path} without a token: {r.status_code} {r.text[:120]}")
            needed = op.get(ROLE_EXTENSION) or ("viewer" if verb == "GET" else "admin")
            r = await client.request(verb, url, headers=stack.auth(WEAKER[needed]))
            if r.status_code != 403 or r.json().get("statusCode") != 403:
                problems.append(f"{name} {verb} {path} as {WEAKER[needed]}: {r.status_code} {r.text[:120]}")
    return checked, problems


async def test_every_route_of_every_service_needs_a_token_and_a_strong_enough_role(secure: SecureStack) -> None:
    problems: list[str] = []
    async with secure.client() as md:
        checked, found = await _check_every_route("core-metadata", md, secure)
        assert checked >= 30, checked
        problems += found
    for name, app in other_services(f"{secure.url}/api/v3/key").items():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}") as client:
            checked, found = await _check_every_route(name, client, secure)
            assert checked >= 5, (name, checked)
            problems += found
            assert (await client.get("/api/v3/ping")).status_code == 200
            assert (await client.get("/api/v3/health")).status_code in (200, 503)
            # A good enough role passes (the keys were fetched from core-metadata's JWKS).
            assert (await client.get("/api/v3/version", headers=secure.auth("viewer"))).status_code == 200
    assert not problems, "\n".join(problems)


async def test_operators_send_commands_and_start_rules_viewers_do_not(secure: SecureStack) -> None:
    apps = other_services(f"{secure.url}/api/v3/key")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=apps["core-command"]), base_url="http://cc") as cc:
        for method in ("GET", "PUT"):
            url = "/api/v3/device/name/pump/Mode"
            assert (await cc.request(method, url, headers=secure.auth("viewer"))).status_code == 403
            r = await cc.request(method, url, headers=secure.auth("operator"), json={"Mode": "1"})
            assert r.status_code not in (401, 403), r.text
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=apps["rules-engine"]), base_url="http://re") as re_:
        assert (await re_.post("/api/v3/rule/id/r1/start", headers=secure.auth("viewer"))).status_code == 403
        r = await re_.post("/api/v3/rule/id/r1/stop", headers=secure.auth("operator"))
        assert r.status_code not in (401, 403), r.text
        # Creating a rule stays an admin's.
        assert (await re_.post("/api/v3/rule", headers=secure.auth("operator"), json={})).status_code == 403


async def _login(client: httpx.AsyncClient, user: str, password: str) -> httpx.Response:
    return await client.post("/api/v3/auth/login", json={"username": user, "password": password})


async def test_users_log_in_act_within_their_role_and_lose_access_when_removed(secure: SecureStack) -> None:
    async with secure.client() as md:
        keys = (await md.get("/api/v3/key")).json()
        assert [k["kid"] for k in keys["keys"]] == [secure.issuer.kid]
        r = await _login(md, "admin", ADMIN_PASSWORD)
        assert r.status_code == 200, r.text
        admin = {"Authorization": f"Bearer {r.json()['token']}"}
        assert jwt.get_unverified_header(r.json()["token"])["kid"] == secure.issuer.kid
        r = await md.post(
            "/api/v3/user", headers=admin, json={"username": "vic", "role": "viewer", "password": "vic-pw-12"}
        )
        assert r.status_code == 201, r.text
        listed = (await md.get("/api/v3/user/all", headers=admin)).json()
        assert {u["username"]: u["role"] for u in listed["users"]} == {"admin": "admin", "vic": "viewer"}
        assert "vic-pw-12" not in str(listed)
        assert "argon2" not in str(listed)

        vic = {"Authorization": f"Bearer {(await _login(md, 'vic', 'vic-pw-12')).json()['token']}"}
        assert (await md.get("/api/v3/device/all", headers=vic)).status_code == 200
        assert (await md.post("/api/v3/device", headers=vic, json=[])).status_code == 403
        assert (await md.get("/api/v3/user/all", headers=vic)).status_code == 403

        assert (await md.delete("/api/v3/user/name/vic", headers=admin)).status_code == 200
        r = await md.get("/api/v3/device/all", headers=vic)
        assert r.status_code == 401
        assert "no longer exists" in r.json()["message"]
        assert (await _login(md, "vic", "vic-pw-12")).status_code == 401


async def test_failed_logins_are_delayed_counted_and_rate_limited(secure: SecureStack) -> None:
    async with secure.client() as md:
        for _ in range(3):
            r = await _login(md, "admin", "not-the-password")
            assert r.status_code == 401
            assert r.json() == {"apiVersion": "v3", "statusCode": 401, "message": "wrong user name or password"}
        r = await _login(md, "admin", ADMIN_PASSWORD)
        assert r.status_code == 429, r.text
        metrics = (await md.get("/metrics", headers=secure.auth("viewer"))).text
        assert 'edgeplane_login_failures_total{reason="bad_credentials"} 3.0' in metrics
        assert 'edgeplane_login_failures_total{reason="rate_limited"} 1.0' in metrics
        assert ADMIN_PASSWORD not in metrics
        config = (await md.get("/api/v3/config", headers=secure.auth("viewer"))).text
        assert ADMIN_PASSWORD not in config
        assert "adminPassword" in config or "admin_password" in config


def _bad_tokens(stack: SecureStack) -> dict[str, bytes]:
    import base64
    import json
    import time

    def b64(d: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")

    now = int(time.time())
    claims = {"iss": "edgeplane", "sub": "eve", "role": "admin", "kind": "service", "iat": now, "exp": now + 60}
    none_token = f"{b64({'alg': 'none', 'kid': stack.issuer.kid})}.{b64(claims)}."
    hs256 = jwt.encode(
        claims, "a-shared-secret-of-32-bytes-or-more", algorithm="HS256", headers={"kid": stack.issuer.kid}
    )
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    forged = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": stack.issuer.kid})
    expired = stack.issuer.issue("eve", "admin", ttl=-120, kind="service")
    return {
        "empty bearer": b"Bearer",
        "other scheme": b"Basic YWRtaW46YWRtaW4=",
        "no scheme": stack.token("admin").encode(),
        "garbage": b"Bearer \xff\xfe garbage",
        "oversized": b"Bearer " + b"a" * 20_000,
        "three dots": b"Bearer a.b.c",
        "alg none": f"Bearer {none_token}".encode(),
        "hs256 confusion": f"Bearer {hs256}".encode(),
        "forged": f"Bearer {forged}".encode(),
        "expired": f"Bearer {expired}".encode(),
    }


async def test_bad_authorization_headers_answer_401_never_500(secure: SecureStack) -> None:
    core_data = other_services(f"{secure.url}/api/v3/key")["core-data"]
    async with (
        secure.client() as md,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=core_data), base_url="http://cd") as cd,
    ):
        for client in (md, cd):
            for what, header in _bad_tokens(secure).items():
                r = await client.get("/api/v3/version", headers={"Authorization": header})  # type: ignore[dict-item]
                assert r.status_code == 401, (what, r.status_code, r.text)
                assert r.json()["statusCode"] == 401, what


async def test_secure_mode_is_off_by_default(metadata: httpx.AsyncClient) -> None:
    assert (await metadata.get("/api/v3/device/all")).status_code == 200
    assert (await metadata.post("/api/v3/auth/login", json={"username": "a", "password": "b"})).status_code == 404


async def test_cli_manages_users_and_mints_service_tokens(secure: SecureStack, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from edgeplane.cli import app as cli

    runner = CliRunner()
    env = {"EDGEPLANE_METADATA_URL": secure.url, "EDGEPLANE_PASSWORD": ADMIN_PASSWORD}

    def run(*args: str, password: str = ADMIN_PASSWORD) -> Any:
        return asyncio.to_thread(runner.invoke, cli, list(args), env={**env, "EDGEPLANE_PASSWORD": password})

    r = await run("user", "add", "olga", "--role", "operator", "--password", "olga-pw-1", "--as", "admin")
    assert r.exit_code == 0, r.output
    r = await run("user", "list", "--as", "admin")
    assert r.exit_code == 0, r.output
    assert "olga" in r.output
    assert "operator" in r.output
    r = await run("user", "add", "olga", "--role", "viewer", "--password", "olga-pw-1", "--as", "admin")
    assert r.exit_code == 1
    assert "already exists" in r.output
    r = await run("user", "add", "x", "--role", "root", "--password", "olga-pw-1", "--as", "admin")
    assert r.exit_code == 1
    r = await run("user", "list", "--as", "olga", password="olga-pw-1")  # an operator may not list users
    assert r.exit_code == 1
    assert "403" in r.output
    r = await run("user", "remove", "olga", "--as", "admin")
    assert r.exit_code == 0, r.output
    async with secure.client() as md:
        assert (await _login(md, "olga", "olga-pw-1")).status_code == 401

    key = tmp_path / "keys" / "token-signing.pem"
    r = await run("token", "service", "core-data", "--key", str(key))
    assert r.exit_code == 0, r.output
    service_token = r.output.strip()
    async with secure.client() as md:
        r = await md.post("/api/v3/deviceservice", headers={"Authorization": f"Bearer {service_token}"}, json=[])
        assert r.status_code not in (401, 403), r.text
    r = await run("token", "service", "core-data", "--key", str(tmp_path / "missing.pem"))
    assert r.exit_code == 1
