"""Issue 15 item 6, the parts without servers: the CLI's token store, the console's sessions and redirects,
the gateway client's per-user view, and the middleware leaving the console's pages to its own login."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgeplane import login as logins
from edgeplane_common.auth import LocalKeys, TokenIssuer, TokenVerifier
from edgeplane_common.clients.gateway import Endpoints, GatewayClient
from edgeplane_common.errors import RemoteError, ServiceUnavailable
from edgeplane_common.http import create_service_app
from edgeplane_common.settings import ServiceSettings
from edgeplane_console.application.access import ACTIONS, Capabilities
from edgeplane_console.ui.auth import Sessions, Viewer, login_error, login_url, safe_next

ISSUER = TokenIssuer(Ed25519PrivateKey.generate())


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv(logins.TOKEN_FILE_ENV, raising=False)
    return tmp_path / "edgeplane" / "token"


def test_the_stored_token_is_private_and_sent_only_to_its_gateway(config: Path) -> None:
    token = ISSUER.issue("ann", "operator", ttl=600)
    stored = logins.save("http://gw:59881/", "http://gw", 0, token)
    assert (stored.username, stored.role) == ("ann", "operator")
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o700
    assert logins.token_for("http://gw:59881") == token
    assert logins.token_for("http://other:59881") is None
    assert logins.token_for("http://gw:60881") is None
    assert logins.remove() == stored
    assert not config.exists()
    assert logins.token_for("http://gw:59881") is None
    assert logins.remove() is None


def test_an_expired_stored_token_says_to_log_in_again(config: Path) -> None:
    logins.save("http://gw:59881", "http://gw", 3, ISSUER.issue("ann", "viewer", ttl=-5))
    with pytest.raises(
        logins.LoginExpired, match=r"log in again with `edgeplane login --url http://gw --port-offset 3`"
    ):
        logins.token_for("http://gw:59881")


def test_a_damaged_token_file_counts_as_no_login(config: Path) -> None:
    config.parent.mkdir(parents=True)
    config.write_text("not json")
    assert logins.load() is None
    assert logins.token_for("http://gw:59881") is None


def test_after_the_login_only_paths_of_this_console() -> None:
    assert safe_next("/devices/demo-plc?charts=A") == "/devices/demo-plc?charts=A"
    for bad in ("https://evil.example", "//evil.example/x", "/\\evil", "javascript:alert(1)", ""):
        assert safe_next(bad) == "/"
    assert login_url("/rules", "expired") == "/login?next=%2Frules&reason=expired"


def test_login_errors_in_words() -> None:
    assert login_error(RemoteError("wrong user name or password", 401)) == "wrong user name or password"
    assert "too many failed logins" in login_error(RemoteError("try again in 300 s", 429))
    assert "cannot be reached" in login_error(ServiceUnavailable("core-metadata at http://x is unreachable"))


def test_sessions_forget_expired_logins() -> None:
    client = GatewayClient(Endpoints({}))
    sessions = Sessions()
    old = Viewer(client, Capabilities.everything(), "ann", "admin", time.time() - 1, session="a")
    new = Viewer(client, Capabilities.everything(), "bob", "viewer", time.time() + 60, session="b")
    assert old.expired()
    assert not new.expired()
    sessions.put(old)
    sessions.put(new)
    assert sessions.get("a") is None
    assert sessions.get("b") is new
    sessions.drop("b")
    assert len(sessions) == 0
    assert not Viewer(client, Capabilities.everything()).expired()  # open mode never expires


def test_capabilities_know_only_the_console_actions() -> None:
    can = Capabilities(frozenset({"command.write"}))
    assert can("command.write")
    assert not can("device.delete")
    with pytest.raises(KeyError):
        can("device.explode")
    assert Capabilities.everything().allowed == frozenset(ACTIONS)


async def test_a_user_view_of_the_gateway_client_sends_the_users_token() -> None:
    seen: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"devices": [], "totalCount": 0})

    client = GatewayClient(
        Endpoints({"core-metadata": "http://md"}), token="service-token", transport=httpx.MockTransport(answer)
    )
    await client.devices()
    await client.as_user("user-token").devices()
    await client.devices()
    await client.close()
    assert seen == ["Bearer service-token", "Bearer user-token", "Bearer service-token"]


async def test_secure_mode_leaves_self_guarded_paths_to_the_app() -> None:
    settings = ServiceSettings.model_validate({"service_name": "console", "security": {"enabled": True}})
    app = create_service_app(
        settings,
        version="0",
        title="t",
        routers=[],
        verifier=TokenVerifier(LocalKeys({ISSUER.kid: ISSUER.public_key})),
        self_guarded=lambda path: not path.startswith("/api/"),
    )

    @app.get("/devices")
    async def page() -> dict[str, str]:
        return {"page": "devices"}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c") as c:
        assert (await c.get("/devices")).status_code == 200
        assert (await c.get("/api/v3/version")).status_code == 401
        ok = await c.get("/api/v3/version", headers={"Authorization": f"Bearer {ISSUER.issue('v', 'viewer', ttl=60)}"})
        assert ok.status_code == 200
