"""The web console in secure mode, in a real browser (Debian's Chromium through Playwright), against the real
stack (`edgeplane up` on free ports with every service in secure mode): the login page, a wrong password's
error, a viewer who sees no control that changes anything, an operator who writes a setpoint, logout.

Screenshots: `login.png`, `device-viewer.png`, `device-operator.png` under the console artifacts folder."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import psutil
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgeplane_common.auth import TokenIssuer, load_or_create_signing_key
from edgeplane_common.clients.gateway import DEFAULT_PORTS
from tests.support.browser import by_id, field, shot
from tests.support.native import DEVICE, NativeStack, edgeplane_up, free_offset, wait_for_device_up

ADMIN_PASSWORD = "console-admin-pw"
USERS = {"vic": ("viewer", "vic-pw-1234"), "olga": ("operator", "olga-pw-1234")}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NativeStack]:
    root = tmp_path_factory.mktemp("console-secure")
    key = root / "token-signing.pem"
    # The key exists before the start so that the services' token can be made first (as `secure init` does).
    service_token = TokenIssuer(load_or_create_signing_key(key)).issue(
        "edgeplane-test", "service", ttl=3600, kind="service"
    )
    offset = free_offset()
    env = {
        "EDGEPLANE_SECURITY__ENABLED": "true",
        "EDGEPLANE_SECURITY__SERVICE_TOKEN": service_token,
        "EDGEPLANE_SECURITY__JWKS_URL": f"http://127.0.0.1:{DEFAULT_PORTS['core-metadata'] + offset}/api/v3/key",
        "CORE_METADATA_SECURITY__SIGNING_KEY_FILE": str(key),
        "CORE_METADATA_SECURITY__ADMIN_PASSWORD": ADMIN_PASSWORD,
        "CORE_METADATA_SECURITY__LOGIN_FAILURE_DELAY": "0.05",
    }
    with edgeplane_up(root, offset=offset, env=env) as stack:
        stack.wait_ready()
        admin = {"Authorization": f"Bearer {login(stack, 'admin', ADMIN_PASSWORD)}"}
        for name, (role, password) in USERS.items():
            r = httpx.post(
                f"{stack.url('core-metadata')}/api/v3/user",
                json={"username": name, "role": role, "password": password},
                headers=admin,
                timeout=10,
                trust_env=False,
            )
            assert r.status_code == 201, r.text
        wait_for_device_up(stack, admin)
        yield stack


def login(stack: NativeStack, user: str, password: str) -> str:
    r = httpx.post(
        f"{stack.url('core-metadata')}/api/v3/auth/login",
        json={"username": user, "password": password},
        timeout=10,
        trust_env=False,
    )
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def log_in(page: Any, user: str, password: str) -> None:
    field(page, "login-username").fill(user)
    field(page, "login-password").fill(password)
    by_id(page, "login-submit").click()


def test_pages_ask_for_a_login_and_a_wrong_password_is_said_in_words(page: Any) -> None:
    page.goto(f"/devices/{DEVICE}")
    page.wait_for_url("**/login?**")
    log_in(page, "vic", "not-the-password")
    by_id(page, "login-error").get_by_text("wrong user name or password").wait_for()
    assert "/login" in page.url
    shot(page, "login")
    log_in(page, "vic", USERS["vic"][1])
    # Back where the user wanted to go.
    by_id(page, "operating-state").get_by_text("state: UP").wait_for()
    assert page.url.endswith(f"/devices/{DEVICE}")
    assert "token" not in page.url


def test_a_viewer_sees_no_control_that_changes_anything(page: Any) -> None:
    page.goto("/login")
    log_in(page, "vic", USERS["vic"][1])
    by_id(page, "whoami").get_by_text("vic (viewer)").wait_for()
    page.goto(f"/devices/{DEVICE}")
    by_id(page, "operating-state").get_by_text("state: UP").wait_for()
    by_id(page, "command-result").wait_for(state="attached")
    page.get_by_text("SpeedSetpoint", exact=True).first.wait_for()
    for control in ("write-SpeedSetpoint", "read-SpeedSetpoint", "input-SpeedSetpoint-SpeedSetpoint", "lock"):
        assert by_id(page, control).count() == 0, control
    assert page.get_by_role("button", name="Delete").count() == 0
    assert page.get_by_role("button", name="Edit").count() == 0
    shot(page, "device-viewer")
    page.goto("/devices")
    by_id(page, "devices").get_by_role("link", name=DEVICE).wait_for()
    assert by_id(page, "add-device").count() == 0
    page.goto("/rules")
    by_id(page, "page-title").wait_for()
    assert by_id(page, "new-rule").count() == 0
    page.goto("/profiles")
    by_id(page, "editing").wait_for()
    assert by_id(page, "upload").count() == 0
    assert by_id(page, "save-profile").count() == 0


def test_an_operator_writes_a_setpoint_but_edits_nothing_and_logs_out(page: Any, stack: NativeStack) -> None:
    page.goto("/login")
    log_in(page, "olga", USERS["olga"][1])
    by_id(page, "whoami").get_by_text("olga (operator)").wait_for()
    page.goto(f"/devices/{DEVICE}")
    by_id(page, "operating-state").get_by_text("state: UP").wait_for()
    assert by_id(page, "lock").count() == 0
    assert page.get_by_role("button", name="Delete").count() == 0
    field(page, "input-SpeedSetpoint-SpeedSetpoint").fill("1717")
    by_id(page, "write-SpeedSetpoint").click()
    by_id(page, "command-result").get_by_text("written SpeedSetpoint=1717").wait_for()
    by_id(page, "read-SpeedSetpoint").click()
    by_id(page, "command-result").get_by_text("SpeedSetpoint = 1717").wait_for()
    shot(page, "device-operator")
    by_id(page, "logout").click()
    by_id(page, "login-reason").get_by_text("You are logged out.").wait_for()
    page.goto(f"/devices/{DEVICE}")
    page.wait_for_url("**/login?**")


def _maps_cryptography(pid: int) -> bool:
    """Whether the process has cryptography's native binding loaded (PyJWT's EdDSA needs it)."""
    return any("cryptography" in m.path for m in psutil.Process(pid).memory_maps(grouped=True))


def test_a_page_session_loads_no_token_library_until_the_console_api_gets_a_token(
    page: Any, stack: NativeStack
) -> None:
    """The login reads the token's claims (it comes straight from core-metadata); the console's own API still
    verifies every token, with the token classes loaded on the first one. Kept last in the module: no other
    test here calls the console's API with a token."""
    console = stack.pids()["console"]
    page.goto("/login")
    log_in(page, "olga", USERS["olga"][1])
    by_id(page, "whoami").get_by_text("olga (operator)").wait_for()
    page.goto(f"/devices/{DEVICE}")
    by_id(page, "operating-state").get_by_text("state: UP").wait_for()
    by_id(page, "read-SpeedSetpoint").click()  # a call for the user, with the user's token
    by_id(page, "command-result").get_by_text("SpeedSetpoint =").wait_for()
    assert not _maps_cryptography(console)

    api = f"{stack.url('console')}/api/v3/config"
    key = stack.data.parent / "token-signing.pem"  # the fixture's signing key
    forged = TokenIssuer(Ed25519PrivateKey.generate()).issue("admin", "admin", ttl=60)
    expired = TokenIssuer(load_or_create_signing_key(key)).issue("admin", "admin", ttl=-60)
    for token, reason in ((forged, "unknown key"), (expired, "expired")):
        r = httpx.get(api, headers={"Authorization": f"Bearer {token}"}, timeout=10, trust_env=False)
        assert r.status_code == 401, r.text
        assert reason in r.json()["message"]
    valid = login(stack, "olga", USERS["olga"][1])
    r = httpx.get(api, headers={"Authorization": f"Bearer {valid}"}, timeout=10, trust_env=False)
    assert r.status_code == 200, r.text
    assert _maps_cryptography(console)
