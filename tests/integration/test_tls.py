"""TLS on the REST APIs (issue 15 item 2), over real loopback connections: core-metadata (real NATS and Redis,
secure mode) serves HTTPS with a certificate from `edgeplane certs init`'s CA. A client that does not trust
the CA cannot connect; every client of the project given the CA can (metadata client, gateway client, token
keys, healthcheck, launcher ping, the `edgeplane` API and user commands). A bad certificate stops a service
at start with one line naming the file."""

from __future__ import annotations

import asyncio
import os
import ssl
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import pytest
import redis.asyncio as aioredis

from core_metadata.main import create_app as create_core_metadata
from edgeplane.secure import tls as certs
from edgeplane.services import SERVICES, by_name
from edgeplane.supervisor import http_ping, readiness
from edgeplane_common.auth import JwksKeys
from edgeplane_common.clients import MetadataClient
from edgeplane_common.clients.gateway import Endpoints, GatewayClient
from edgeplane_common.embedded import free_port
from edgeplane_common.errors import ServiceUnavailable
from edgeplane_common.healthcheck import check
from edgeplane_common.http.app import server_config
from edgeplane_common.settings import TlsSettings
from edgeplane_common.tls import client_verify
from tests.support.metadata import metadata_settings
from tests.support.stack import serve

ADMIN_PASSWORD = "tls-admin-pw"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class TlsStack:
    url: str
    port: int
    secure_dir: Path

    @property
    def ca(self) -> str:
        return str(self.secure_dir / certs.CA_CERT)


@pytest.fixture(scope="module")
def secure_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secure")
    certs.init(path, SERVICES, hosts=[])
    return path


@pytest.fixture
async def stack(secure_dir: Path, tmp_path: Path, nats_url: str, redis_url: str) -> AsyncIterator[TlsStack]:
    r = aioredis.from_url(redis_url)
    await r.flushdb()
    await r.aclose()
    cert, key = certs.leaf_paths(secure_dir, "core-metadata")
    settings = metadata_settings(
        nats_url,
        redis_url,
        security={
            "enabled": True,
            "signing_key_file": str(tmp_path / "token-signing.pem"),
            "admin_password": ADMIN_PASSWORD,
            "login_failure_delay": 0.01,
        },
        tls={"cert_file": str(cert), "key_file": str(key)},
    )
    async with serve(create_core_metadata(settings), tls=settings.tls) as url:
        yield TlsStack(url, int(url.rsplit(":", 1)[1]), secure_dir)


async def test_a_client_not_trusting_the_ca_cannot_connect(stack: TlsStack) -> None:
    async with httpx.AsyncClient() as client:  # the default trust store
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get(stack.url + "/api/v3/ping")
    # Nor one that speaks plain HTTP to the port: HTTPS only.
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.HTTPError):
            await client.get(f"http://127.0.0.1:{stack.port}/api/v3/ping")
    # The project's clients without the CA fail the same way, with the failure in words.
    plain = MetadataClient(stack.url)
    with pytest.raises(ServiceUnavailable):
        await plain.ping()
    await plain.close()
    # (blocking calls in a thread: the server runs in this event loop)
    assert "CERTIFICATE_VERIFY_FAILED" in (await asyncio.to_thread(check, stack.url + "/api/v3/ping") or "")
    assert not await asyncio.to_thread(http_ping, stack.url + "/api/v3/ping")


async def test_a_client_trusting_the_ca_connects_and_the_name_is_checked(stack: TlsStack) -> None:
    async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=stack.ca)) as client:
        assert (await client.get(stack.url + "/api/v3/ping")).status_code == 200
        # The certificate names localhost and core-metadata too, not any name.
        assert (await client.get(f"https://localhost:{stack.port}/api/v3/ping")).status_code == 200
    other_ca = certs.ensure(stack.secure_dir.parent / "other", ["core-metadata"], hosts=[])
    assert other_ca.created
    other = str(stack.secure_dir.parent / "other" / certs.CA_CERT)
    async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=other)) as client:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get(stack.url + "/api/v3/ping")


async def test_the_project_clients_verify_with_the_ca(stack: TlsStack) -> None:
    login = {"username": "admin", "password": ADMIN_PASSWORD}
    async with httpx.AsyncClient(verify=client_verify(stack.ca)) as client:
        token = (await client.post(stack.url + "/api/v3/auth/login", json=login)).json()["token"]

    metadata = MetadataClient(stack.url, token=token, ca_file=stack.ca)
    try:
        await metadata.ping()
        assert await metadata.devices(0, 10) == ([], 0)
    finally:
        await metadata.close()

    async with GatewayClient(Endpoints({"core-metadata": stack.url}), token=token, ca_file=stack.ca) as gateway:
        assert (await gateway.version("core-metadata"))["serviceName"] == "core-metadata"
        assert await gateway.profiles() == []

    # Every other service fetches the token keys from core-metadata over HTTPS.
    keys = JwksKeys(stack.url + "/api/v3/key", verify=client_verify(stack.ca))
    assert await keys.key(jwt.get_unverified_header(token)["kid"]) is not None

    assert await asyncio.to_thread(check, stack.url + "/api/v3/health", ca_file=stack.ca) is None
    assert await asyncio.to_thread(http_ping, stack.url + "/api/v3/ping", stack.ca)
    offset = stack.port - by_name("core-metadata").port
    ready = await asyncio.to_thread(readiness, by_name("core-metadata"), offset, stack.ca)
    assert ready.ready, ready.status


async def _edgeplane(*args: str, env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "edgeplane",
        *args,
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def test_the_command_line_verifies_with_the_ca(stack: TlsStack) -> None:
    trust = {"EDGEPLANE_TLS__CA_FILE": stack.ca, "EDGEPLANE_PASSWORD": ADMIN_PASSWORD}
    code, out = await _edgeplane("user", "list", "--metadata-url", stack.url, "--as", "admin", env=trust)
    assert code == 0, out
    assert "admin" in out
    offset = stack.port - by_name("core-metadata").port
    login = {"username": "admin", "password": ADMIN_PASSWORD}
    async with httpx.AsyncClient(verify=client_verify(stack.ca)) as client:
        token = (await client.post(stack.url + "/api/v3/auth/login", json=login)).json()["token"]
    listing = ("profile", "list", "--url", "https://127.0.0.1", f"--port-offset={offset}", "--token", token)
    code, out = await _edgeplane(*listing, env=trust)
    assert code == 0, out

    # Without the CA: refused with the reason, not a traceback.
    untrusted = {"EDGEPLANE_TLS__CA_FILE": "", "EDGEPLANE_PASSWORD": ADMIN_PASSWORD}
    code, out = await _edgeplane("user", "list", "--metadata-url", stack.url, "--as", "admin", env=untrusted)
    assert code == 1
    assert "CERTIFICATE_VERIFY_FAILED" in out
    assert "Traceback" not in out
    code, out = await _edgeplane(*listing, env={"EDGEPLANE_TLS__CA_FILE": ""})
    assert code == 4, out  # unavailable
    assert "Traceback" not in out
    code, out = await _edgeplane(*listing, env={"EDGEPLANE_TLS__CA_FILE": "/nonexistent/ca.pem"})
    assert code == 2
    assert "/nonexistent/ca.pem" in out


async def test_a_bad_certificate_stops_the_service_at_start_naming_the_file(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    cases = {
        "/nonexistent/core-metadata.pem": {"CORE_METADATA_TLS__CERT_FILE": "/nonexistent/core-metadata.pem"},
        str(garbage): {"CORE_METADATA_TLS__CERT_FILE": str(garbage)},
    }
    for named, env in cases.items():
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "core_metadata",
            env={
                **os.environ,
                "CORE_METADATA_TLS__KEY_FILE": str(tmp_path / "whatever.key"),
                "CORE_METADATA_HTTP__PORT": str(free_port()),
                "CORE_METADATA_LOG_JSON": "false",
                **env,
            },
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out = (await proc.communicate())[0].decode()
        assert proc.returncode == 1, out
        assert named in out
        assert "Traceback" not in out
        assert len([line for line in out.splitlines() if line.strip()]) == 1, out


def test_server_config_serves_https_only_with_a_certificate(secure_dir: Path) -> None:
    cert, key = certs.leaf_paths(secure_dir, "core-data")
    from fastapi import FastAPI

    app = FastAPI()
    plain = server_config(app, "127.0.0.1", 1)
    assert plain.ssl_certfile is None
    https = server_config(app, "127.0.0.1", 1, TlsSettings(cert_file=str(cert), key_file=str(key)))
    assert (https.ssl_certfile, https.ssl_keyfile) == (str(cert), str(key))
