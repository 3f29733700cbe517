"""Issue 15 item 6 with real services in secure mode: `edgeplane login` / `logout` and the stored token the
other commands send (core-metadata served on a port, the CLI as a user runs it, in a subprocess), and the
console's capabilities read from the services' own OpenAPI documents (what their middleware enforces)."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from edgeplane import login as logins
from edgeplane_common.auth.roles import RoutePolicy
from edgeplane_common.clients.gateway import DEFAULT_PORTS
from edgeplane_console.application.access import ACTIONS, Access
from tests.integration.test_secure_mode import ADMIN_PASSWORD, SecureStack, other_services, secure

__all__ = ["secure"]  # the fixture, shared with test_secure_mode


def _offset(stack: SecureStack) -> int:
    return int(stack.url.rsplit(":", 1)[1]) - DEFAULT_PORTS["core-metadata"]


async def edgeplane(
    config: Path, *args: str, password: str | None = None, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """`python -m edgeplane ARGS` with its config dir in `config`; (exit code, stdout, stderr)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("EDGEPLANE_")}
    environ |= {"XDG_CONFIG_HOME": str(config), "COLUMNS": "200", **(env or {})}
    if password is not None:
        environ["EDGEPLANE_PASSWORD"] = password
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edgeplane", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL, env=environ,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_login_stores_a_private_token_that_the_other_commands_send(secure: SecureStack, tmp_path: Path) -> None:
    gw = ["--url", "http://127.0.0.1", f"--port-offset={_offset(secure)}"]
    token_file = tmp_path / "edgeplane" / "token"

    code, _, err = await edgeplane(tmp_path, "device", "list", *gw)
    assert code == 1, err
    assert "missing bearer token" in err
    assert "edgeplane login" in err

    code, _, err = await edgeplane(tmp_path, "login", *gw, "--username", "admin", password="not-it")
    assert code == 1
    assert "wrong user name or password" in err
    assert not token_file.exists()

    code, out, err = await edgeplane(tmp_path, "login", *gw, "--username", "admin", password=ADMIN_PASSWORD)
    assert code == 0, err
    assert "as admin (admin)" in out
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    stored = json.loads(token_file.read_text())
    assert stored["metadata_url"] == secure.url
    assert ADMIN_PASSWORD not in token_file.read_text()

    code, out, err = await edgeplane(tmp_path, "device", "list", *gw, "--json")
    assert code == 0, err
    assert json.loads(out) == []
    code, out, err = await edgeplane(tmp_path, "user", "list", "--metadata-url", secure.url)
    assert code == 0, err
    assert "admin" in out

    # Another gateway is never sent this one's token.
    code, _, err = await edgeplane(tmp_path, "device", "list", "--url", "http://127.0.0.1", "--port-offset=1")
    assert code != 0
    assert stored["token"] not in err

    code, out, _ = await edgeplane(tmp_path, "logout")
    assert code == 0
    assert "logged out" in out
    assert not token_file.exists()
    code, _, err = await edgeplane(tmp_path, "device", "list", *gw)
    assert code == 1
    assert "log in" in err
    code, out, _ = await edgeplane(tmp_path, "logout")
    assert code == 0
    assert "not logged in" in out


async def test_a_viewer_reads_but_is_refused_writes_in_words(secure: SecureStack, tmp_path: Path) -> None:
    async with secure.client() as md:
        r = await md.post(
            "/api/v3/user",
            headers=secure.auth("admin"),
            json={"username": "vera", "role": "viewer", "password": "v-pw-1234"},
        )
        assert r.status_code == 201, r.text
    gw = ["--url", "http://127.0.0.1", f"--port-offset={_offset(secure)}"]
    code, out, err = await edgeplane(tmp_path, "login", *gw, "--username", "vera", password="v-pw-1234")
    assert code == 0, err
    assert "(viewer)" in out
    code, _, err = await edgeplane(tmp_path, "device", "list", *gw)
    assert code == 0, err
    code, _, err = await edgeplane(tmp_path, "device", "delete", "pump", *gw)
    assert code == 1
    assert "role 'viewer' may not DELETE" in err
    assert "your role does not allow this" in err


async def test_an_expired_stored_token_asks_to_log_in_again(
    secure: SecureStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv(logins.TOKEN_FILE_ENV, raising=False)
    expired = secure.issuer.issue("admin", "admin", ttl=-60)
    logins.save(secure.url, "http://127.0.0.1", _offset(secure), expired)
    gw = ["--url", "http://127.0.0.1", f"--port-offset={_offset(secure)}"]
    code, _, err = await edgeplane(tmp_path, "device", "list", *gw)
    assert code == 1
    assert "expired" in err
    assert "log in again" in err
    assert "edgeplane login" in err
    code, _, err = await edgeplane(tmp_path, "user", "list", "--metadata-url", secure.url)
    assert code == 1
    assert "expired" in err


def _route_exists(document: dict[str, Any], method: str, path: str) -> bool:
    policy = RoutePolicy()
    for template, operations in document["paths"].items():
        if method.lower() in operations:
            policy.declare(method, template, "x")
    return policy.needed(method, path) == "x"


async def test_console_capabilities_come_from_the_services_route_roles(secure: SecureStack) -> None:
    apps = other_services(f"{secure.url}/api/v3/key")
    documents: dict[str, dict[str, Any]] = {}
    async with secure.client() as md:
        documents["core-metadata"] = (await md.get("/api/v3/openapi.json", headers=secure.auth("viewer"))).json()
    for name in ("core-command", "rules-engine"):
        transport = httpx.ASGITransport(app=apps[name])
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{name}") as client:
            documents[name] = (await client.get("/api/v3/openapi.json", headers=secure.auth("viewer"))).json()

    # Every action names a route its service really has.
    for action, (service, method, path) in ACTIONS.items():
        assert _route_exists(documents[service], method, path), action

    async def fetch(service: str) -> dict[str, Any]:
        return documents[service]

    access = Access()
    await access.load(fetch)
    assert access.capabilities("viewer").allowed == frozenset()
    assert access.capabilities("operator").allowed == {"command.read", "command.write", "rule.start", "rule.stop"}
    assert access.capabilities("admin").allowed == frozenset(ACTIONS)
