"""`make run ARGS=--secure` end to end: `python -m edgeplane up --secure` as a subprocess on free ports.

What the issue's secure mode must still do, all of it through the generated configuration: Modbus and OPC UA
readings reach core-data, a command writes the PLC, a rule acts, an export delivers; and what it must refuse:
REST without a token or over plain HTTP or without trusting the CA, a viewer's write, NATS and Redis without
credentials. No secret the launcher generated appears in any log.
"""

from __future__ import annotations

import json
import re
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
import redis

from edgeplane.services import by_name
from tests.support.native import (
    DATA_TIMEOUT_S,
    DEVICE,
    WRITABLE,
    WRITABLE_REGISTER,
    NativeStack,
    edgeplane_up,
    holding_register,
    launcher_env,
)

RULE = "demo-avg-temperature"  # publishes an alert every 10 s window (res/ of the rules engine)
OPCUA_DEVICE = "demo-line"


class _Receiver(BaseHTTPRequestHandler):
    bodies: list[bytes]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        type(self).bodies.append(self.rfile.read(length))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[str, list[bytes]]]:
    """A real HTTP server the app-http-export instance posts to."""
    handler = type("Receiver", (_Receiver,), {"bodies": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/ingest", handler.bodies
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, receiver: tuple[str, list[bytes]], monkeymodule: pytest.MonkeyPatch
) -> Iterator[NativeStack]:
    monkeymodule.setenv("APP_HTTP_EXPORT_URL", receiver[0])
    monkeymodule.delenv("EDGEPLANE_ADMIN_PASSWORD", raising=False)
    with edgeplane_up(tmp_path_factory.mktemp("secure-stack"), "--secure") as stack:
        stack.ready_s = stack.wait_ready()
        yield stack


@pytest.fixture(scope="module")
def monkeymodule() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def _secure_dir(stack: NativeStack) -> Path:
    return stack.data / "secure"


def _ca(stack: NativeStack) -> str:
    return str(_secure_dir(stack) / "ca.pem")


def _url(stack: NativeStack, name: str) -> str:
    return by_name(name).url(stack.offset, scheme="https")


def _client(stack: NativeStack, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    verify = ssl.create_default_context(cafile=_ca(stack))
    return httpx.Client(verify=verify, headers=headers, timeout=10, trust_env=False)


def _admin_password(stack: NativeStack) -> str:
    match = re.search(r"first admin: user 'admin', password (\S+) \(shown once\)", stack.output.read_text())
    assert match, stack.log()
    return match.group(1)


def _login(stack: NativeStack, username: str, password: str) -> str:
    with _client(stack) as client:
        response = client.post(
            f"{_url(stack, 'core-metadata')}/api/v3/auth/login", json={"username": username, "password": password}
        )
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


@pytest.fixture(scope="module")
def admin(stack: NativeStack) -> str:
    return _login(stack, "admin", _admin_password(stack))


def _eventually(what: str, check: Any, stack: NativeStack, timeout: float = DATA_TIMEOUT_S * 2) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout:.0f} s (last: {last!r})\n{stack.log()}")


def test_every_rest_service_serves_https_only_and_is_trusted_through_the_ca(stack: NativeStack) -> None:
    for name in ("core-metadata", "core-data", "core-command", "device-modbus", "device-opcua", "rules-engine"):
        with _client(stack) as client:
            assert client.get(f"{_url(stack, name)}/api/v3/ping").status_code == 200
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{_url(stack, name)}/api/v3/ping", timeout=10, trust_env=False)
        with pytest.raises(httpx.HTTPError):  # plain HTTP on the TLS port
            httpx.get(f"{by_name(name).url(stack.offset)}/api/v3/ping", timeout=10, trust_env=False)


def test_rest_needs_a_token_and_a_strong_enough_role(stack: NativeStack, admin: str) -> None:
    metadata = _url(stack, "core-metadata")
    with _client(stack) as anonymous:
        assert anonymous.get(f"{metadata}/api/v3/device/all").status_code == 401
    with _client(stack, admin) as client:
        created = client.post(
            f"{metadata}/api/v3/user", json={"username": "vic", "role": "viewer", "password": "viewer-password-1"}
        )
        assert created.status_code == 201, created.text
    viewer = _login(stack, "vic", "viewer-password-1")
    command = f"{_url(stack, 'core-command')}/api/v3/device/name/{DEVICE}/{WRITABLE}"
    with _client(stack, viewer) as client:
        assert client.get(f"{metadata}/api/v3/device/all").status_code == 200
        assert client.put(command, json={WRITABLE: "7"}).status_code == 403


def test_the_console_verifies_tokens_with_the_keys_it_fetches_over_https(stack: NativeStack, admin: str) -> None:
    # Its own API checks tokens like every service; the keys come from core-metadata, trusted through the CA.
    console = _url(stack, "console")
    with _client(stack) as anonymous:
        assert anonymous.get(f"{console}/api/v3/config").status_code == 401
    with _client(stack, admin) as client:
        response = client.get(f"{console}/api/v3/config")
    assert response.status_code == 200, response.text


def test_modbus_and_opcua_readings_reach_core_data(stack: NativeStack, admin: str) -> None:
    core_data = _url(stack, "core-data")
    with _client(stack, admin) as client:
        for device in (DEVICE, OPCUA_DEVICE):

            def count(device: str = device) -> int:
                response = client.get(f"{core_data}/api/v3/reading/count/device/name/{device}")
                return int(response.json()["count"]) if response.status_code == 200 else 0

            _eventually(f"readings of {device} in core-data", count, stack)


def test_a_command_through_core_command_writes_the_plc(stack: NativeStack, admin: str) -> None:
    url = f"{_url(stack, 'core-command')}/api/v3/device/name/{DEVICE}/{WRITABLE}"
    sim_port = by_name("modbus-sim").http_port(stack.offset)
    with _client(stack, admin) as client:
        _eventually("the demo PLC answering", lambda: client.get(url).status_code == 200, stack)
        target = (holding_register(sim_port, WRITABLE_REGISTER) + 123) % 3000
        write = client.put(url, json={WRITABLE: str(target)})
        assert write.status_code == 200, write.text
    assert holding_register(sim_port, WRITABLE_REGISTER) == target


def test_a_rule_acts(stack: NativeStack, admin: str) -> None:
    url = f"{_url(stack, 'rules-engine')}/api/v3/rule/id/{RULE}/status"
    with _client(stack, admin) as client:

        def fired() -> int:
            status = client.get(url).json()["status"]
            assert status["actionFailures"] == 0, status
            return int(status["actionsFired"])

        _eventually(f"rule {RULE} firing its action", fired, stack)

        # Every demo rule runs, the ones commanding the PLC too (they may have been loaded before the PLC
        # was provisioned: they start once core-metadata announces it).
        def all_running() -> bool:
            rules = client.get(f"{_url(stack, 'rules-engine')}/api/v3/rule/all").json()["rules"]
            return bool(rules) and all(r["status"] == "running" for r in rules)

        _eventually("every demo rule running", all_running, stack)


def test_an_export_delivers(stack: NativeStack, receiver: tuple[str, list[bytes]]) -> None:
    _, bodies = receiver
    _eventually("a batch posted by app-http-export", lambda: len(bodies) > 0, stack)
    batch = json.loads(bodies[0])
    assert isinstance(batch, list)
    assert batch[0]["readings"]


async def test_nats_refuses_a_client_without_credentials(stack: NativeStack) -> None:
    # Trusting the CA, so what refuses it is the missing user, not the TLS handshake.
    tls = ssl.create_default_context(cafile=_ca(stack))
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(
            stack.nats_url(), tls=tls, connect_timeout=5, max_reconnect_attempts=0, allow_reconnect=False
        )


def test_events_tail_needs_the_viewer_user(stack: NativeStack) -> None:
    argv = [sys.executable, "-m", "edgeplane", "events", "tail", "--nats-url", stack.nats_url()]
    argv += ["--device", DEVICE, "--count", "1", "--timeout", "60", "--json"]
    env = launcher_env() | {"EDGEPLANE_TLS__CA_FILE": _ca(stack)}
    refused = subprocess.run(argv, capture_output=True, text=True, timeout=90, env=env, check=False)
    assert refused.returncode == 1, refused.stderr
    assert "refused the login" in refused.stderr
    assert "--secure-dir" in refused.stderr
    argv += ["--secure-dir", str(_secure_dir(stack))]
    tail = subprocess.run(argv, capture_output=True, text=True, timeout=90, env=launcher_env(), check=False)
    assert tail.returncode == 0, tail.stderr
    event = json.loads(tail.stdout.splitlines()[0])
    assert event["deviceName"] == DEVICE
    assert event["readings"]


def test_redis_refuses_the_default_user(stack: NativeStack) -> None:
    state = stack.state()
    url = next(s["url"] for s in state["servers"] if s["name"] == "redis")
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        with pytest.raises(redis.exceptions.AuthenticationError, match="authenticated"):
            client.get("md:anything")
    finally:
        client.close()


def test_no_generated_secret_appears_in_any_log(stack: NativeStack) -> None:
    secure_dir = _secure_dir(stack)
    secrets = {_admin_password(stack)}
    for env_file in (secure_dir / "env").glob("*.env"):
        for line in env_file.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.endswith(("PASSWORD", "SERVICE_TOKEN")):
                secrets.add(value.strip("'"))
    assert len(secrets) > 10  # the admin's, and each service's token and passwords
    logs = "\n".join(p.read_text() for p in (stack.data / "logs").glob("*.log"))
    assert logs
    leaked = [s[:6] + "..." for s in secrets if s in logs]
    assert leaked == []


def test_sigterm_stops_everything(stack: NativeStack) -> None:
    stack.stop()
