"""Per-device security: Basic256Sha256 SignAndEncrypt (and Aes256Sha256RsaPss Sign) with username/password from
the service's secret store or an environment variable; a wrong password or an untrusted server certificate
gives a clear error once and the device DOWN; passwords appear nowhere."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from cryptography.x509.oid import ExtendedKeyUsageOID

from device_opcua.sim import OpcuaSimulator, parse_config
from tests.support.opcua import Stack, add_device, opcua_device, opcua_stack, operating_state, readings
from tests.support.stack import wait_until

PASSWORD = "s3cret-Pa55"
SIM = {
    "name": "secure line",
    "path": "/secure",
    "namespaces": ["urn:edgeplane:sim"],
    "security": {
        "policies": ["Basic256Sha256_SignAndEncrypt", "Aes256Sha256RsaPss_Sign"],
        "certificate": "server-cert.der",
        "private_key": "server-key.pem",
    },
    "users": [{"username": "operator", "password": PASSWORD}],
    "objects": [{"name": "Line1", "variables": [{"name": "Recipe", "type": "String", "value": "PVC-200"}]}],
}
PROFILE = {
    "apiVersion": "v3",
    "profile": {
        "name": "Secure-Line",
        "deviceResources": [
            {
                "name": "Recipe",
                "attributes": {"nodeId": "ns=2;s=Line1.Recipe"},
                "properties": {"valueType": "String", "readWrite": "R"},
            }
        ],
    },
}


@pytest.fixture(scope="module")
async def sim(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[OpcuaSimulator]:
    async with OpcuaSimulator(parse_config(SIM, tmp_path_factory.mktemp("sim")), "127.0.0.1", 0) as s:
        yield s


@pytest.fixture(scope="module")
async def client_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("client")
    cert, key = folder / "client-cert.der", folder / "client-key.pem"
    await setup_self_signed_certificate(
        key,
        cert,
        "urn:edgeplane:test-client",
        socket.gethostname(),
        [ExtendedKeyUsageOID.CLIENT_AUTH],
        {"organizationName": "edgeplane tests"},
    )
    return cert, key


@pytest.fixture
async def stack(nats_url: str, redis_url: str) -> AsyncIterator[Stack]:
    async with opcua_stack(nats_url, redis_url, profiles=[]) as s:
        r = await s.metadata.post("/api/v3/deviceprofile", json=[PROFILE])
        assert r.json()[0]["statusCode"] == 201, r.text
        yield s


def secure_device(name: str, sim: OpcuaSimulator, cert: tuple[Path, Path], **protocol: str) -> dict[str, object]:
    props = {
        "SecurityPolicy": "Basic256Sha256",
        "SecurityMode": "SignAndEncrypt",
        "CertFile": str(cert[0]),
        "KeyFile": str(cert[1]),
        "TrustedCerts": str(sim.certificate),
        "Username": "operator",
        **protocol,
    }
    return opcua_device(name, "Secure-Line", sim.url, protocol=props)


async def post_secret(stack: Stack, name: str, password: str) -> None:
    body = {
        "apiVersion": "v3",
        "secretName": name,
        "secretData": [{"key": "username", "value": "operator"}, {"key": "password", "value": password}],
    }
    r = await stack.opcua.post("/api/v3/secret", json=body)
    assert r.status_code == 201, r.text


async def test_sign_and_encrypt_with_password_from_the_secret_store(
    stack: Stack, sim: OpcuaSimulator, client_cert: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await post_secret(stack, "line-login", PASSWORD)
    await add_device(stack, secure_device("secure", sim, client_cert, SecretName="line-login"))
    r = await wait_until(lambda: _read(stack, "secure"), timeout=15)
    assert readings(r)["Recipe"]["value"] == "PVC-200"
    # Another policy and mode on the same server, per device; the password from an environment variable.
    os.environ["EDGEPLANE_TEST_OPCUA_PW"] = PASSWORD
    try:
        body = secure_device(
            "pss",
            sim,
            client_cert,
            SecurityPolicy="Aes256Sha256RsaPss",
            SecurityMode="Sign",
            PasswordEnv="EDGEPLANE_TEST_OPCUA_PW",
        )
        await add_device(stack, body)
        r = await wait_until(lambda: _read(stack, "pss"), timeout=15)
        assert readings(r)["Recipe"]["value"] == "PVC-200"
    finally:
        del os.environ["EDGEPLANE_TEST_OPCUA_PW"]
    assert len(stack.app.state.runtime.driver.sessions) == 2  # security is per device: two sessions

    config = (await stack.opcua.get("/api/v3/config")).text
    device = (await stack.metadata.get("/api/v3/device/name/secure")).text
    assert PASSWORD not in config
    assert PASSWORD not in device
    leaks = [(r.name, r.getMessage()[:300]) for r in caplog.records if PASSWORD in r.getMessage()]
    assert not leaks, leaks


async def _read(stack: Stack, name: str) -> object:
    r = await stack.opcua.get(f"/api/v3/device/name/{name}/Recipe")
    return r if r.status_code == 200 else None


async def test_wrong_password_and_untrusted_certificate_give_clear_errors_and_down(
    stack: Stack, sim: OpcuaSimulator, client_cert: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await post_secret(stack, "wrong", "not-the-password")
    await add_device(stack, secure_device("wrong-pw", sim, client_cert, SecretName="wrong"))
    await wait_until(lambda: _state_is(stack, "wrong-pw", "DOWN"), timeout=15)
    down = [r.getMessage() for r in caplog.records if "wrong-pw marked DOWN" in r.getMessage()]
    assert len(down) == 1, down
    assert "login refused (BadUserAccessDenied)" in down[0], down

    # The server's certificate is not in the device's trust list: refused before any login.
    other = client_cert[0]  # a certificate that is not the server's
    await post_secret(stack, "right", PASSWORD)
    await add_device(stack, secure_device("untrusted", sim, client_cert, SecretName="right", TrustedCerts=str(other)))
    await wait_until(lambda: _state_is(stack, "untrusted", "DOWN"), timeout=15)
    down = [r.getMessage() for r in caplog.records if "untrusted marked DOWN" in r.getMessage()]
    assert len(down) == 1, down
    assert "BadCertificateUntrusted" in down[0], down

    # A secret that is missing: a clear message naming it (never a value).
    await add_device(stack, secure_device("no-secret", sim, client_cert, SecretName="nope"))
    await wait_until(lambda: _state_is(stack, "no-secret", "DOWN"), timeout=15)
    down = [r.getMessage() for r in caplog.records if "no-secret marked DOWN" in r.getMessage()]
    assert "secret 'nope' not found" in down[0]
    assert all("not-the-password" not in r.getMessage() and PASSWORD not in r.getMessage() for r in caplog.records)


async def _state_is(stack: Stack, name: str, state: str) -> bool:
    return await operating_state(stack, name) == state


async def test_the_password_is_stored_encrypted_and_used_after_a_restart(
    nats_url: str,
    redis_url: str,
    sim: OpcuaSimulator,
    client_cert: tuple[Path, Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    key = tmp_path / "device-opcua.key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o600)
    # Database 1: the stack helper empties database 0 (core-metadata's) at each start.
    secrets_url = redis_url.rsplit("/", 1)[0] + "/1"
    raw = aioredis.from_url(secrets_url)
    await raw.flushdb()
    store = {"redis": {"url": secrets_url}, "security": {"secret_key_file": str(key)}}
    try:
        async with opcua_stack(nats_url, redis_url, profiles=[], **store) as stack:
            await post_secret(stack, "line-login", PASSWORD)
        stored = await raw.hget("secrets:device-opcua:store", "line-login")  # type: ignore[misc]
        assert stored is not None
        assert PASSWORD.encode() not in stored
        # device-opcua restarted: the device connects with the password it finds in the store.
        async with opcua_stack(nats_url, redis_url, profiles=[], **store) as stack:
            r = await stack.metadata.post("/api/v3/deviceprofile", json=[PROFILE])
            assert r.json()[0]["statusCode"] == 201, r.text
            await add_device(stack, secure_device("after-restart", sim, client_cert, SecretName="line-login"))
            r = await wait_until(lambda: _read(stack, "after-restart"), timeout=15)
            assert readings(r)["Recipe"]["value"] == "PVC-200"
    finally:
        await raw.flushdb()
        await raw.aclose()
    leaks = [(r.name, r.getMessage()[:300]) for r in caplog.records if PASSWORD in r.getMessage()]
    assert not leaks, leaks
