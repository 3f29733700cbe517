"""The bounded secret store behind POST /api/v3/secret (in memory: open mode), the AES-GCM sealing of the
encrypted one, and its key file. The encrypted store over Redis (and the fake backend, with the same suite):
tests/contract/test_secret_store_contract.py."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import httpx
import pytest

from edgeplane_common.errors import LimitExceeded, NotFound
from edgeplane_common.http import create_service_app
from edgeplane_common.secrets import (
    SecretCipher,
    SecretKeyError,
    SecretStore,
    SecretUnreadable,
    load_key,
    open_secret_store,
)
from edgeplane_common.settings import ServiceSettings

KEY = bytes(range(32))


async def test_put_then_get_returns_a_copy() -> None:
    store = SecretStore()
    await store.put("mqtt", {"username": "edge", "password": "s3cr3t"})
    got = store.get("mqtt")
    assert got == {"username": "edge", "password": "s3cr3t"}
    got["password"] = "changed"
    assert store.get("mqtt")["password"] == "s3cr3t"
    assert "s3cr3t" not in repr(store)


def test_an_unknown_secret_is_not_found() -> None:
    with pytest.raises(NotFound, match="no secret named 'nope'"):
        SecretStore().get("nope")


async def test_the_number_of_secrets_is_capped_but_replacing_one_is_allowed() -> None:
    store = SecretStore(max_secrets=2)
    await store.put("a", {"k": "1"})
    await store.put("b", {"k": "2"})
    with pytest.raises(LimitExceeded, match="maximum of 2 secrets") as info:
        await store.put("c", {"k": "3"})
    assert info.value.status_code == 413
    await store.put("a", {"k": "replaced"})
    assert store.names() == ["a", "b"]
    assert store.get("a") == {"k": "replaced"}


async def test_the_size_of_one_secret_is_capped_and_a_refused_write_changes_nothing() -> None:
    store = SecretStore(max_secret_bytes=8)
    await store.put("a", {"key": "12345"})  # exactly 8 bytes
    with pytest.raises(LimitExceeded, match="9 bytes; the maximum is 8 bytes"):
        await store.put("a", {"key": "123456"})
    assert store.get("a") == {"key": "12345"}


async def test_post_secret_writes_the_store_and_answers_413_past_the_cap() -> None:
    app = create_service_app(ServiceSettings(), version="0", title="t", routers=[])
    app.state.secrets = SecretStore(max_secrets=1)

    def body(name: str) -> dict[str, object]:
        return {"apiVersion": "v3", "secretName": name, "secretData": [{"key": "password", "value": "s3cr3t"}]}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
        assert (await client.post("/api/v3/secret", json=body("db"))).status_code == 201
        assert app.state.secrets.get("db") == {"password": "s3cr3t"}
        refused = await client.post("/api/v3/secret", json=body("another"))
        assert refused.status_code == 413
        assert "maximum of 1 secrets" in refused.json()["message"]
        documented = app.openapi()["paths"]["/api/v3/secret"]["post"]["responses"]
        assert {"400", "413", "503"} <= set(documented)


def test_without_a_key_file_the_store_is_in_memory_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="edgeplane_common")
    app = create_service_app(ServiceSettings(service_name="svc"), version="0", title="t", routers=[])
    assert not app.state.secrets.encrypted
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("secrets: ")]
    assert said == ["secrets: in process memory only, lost at restart (no SECURITY__SECRET_KEY_FILE: open mode)"]


# ------------------------------------------------------------------------------------------- sealing


def test_a_sealed_secret_opens_only_under_its_key_service_and_name() -> None:
    cipher = SecretCipher(KEY, "app-http-export")
    blob = cipher.seal("cloud", {"token": "s3cret-value"})
    assert b"s3cret-value" not in blob
    assert b"token" not in blob
    assert cipher.open("cloud", blob) == {"token": "s3cret-value"}
    # A fresh random nonce per write: the same secret sealed twice differs.
    assert cipher.seal("cloud", {"token": "s3cret-value"}) != blob
    refusals = [
        (SecretCipher(bytes(32), "app-http-export"), "cloud", blob),  # another key
        (SecretCipher(KEY, "device-opcua"), "cloud", blob),  # another service
        (cipher, "other", blob),  # another name
        (cipher, "cloud", blob[:-1] + bytes([blob[-1] ^ 1])),  # the tag altered
        (cipher, "cloud", blob[:20] + bytes([blob[20] ^ 1]) + blob[21:]),  # the ciphertext altered
        (cipher, "cloud", b"\x02" + blob[1:]),  # an unknown format
        (cipher, "cloud", b"\x01short"),
    ]
    for other, name, value in refusals:
        with pytest.raises(SecretUnreadable):
            other.open(name, value)
    assert "s3cret" not in repr(cipher)
    assert KEY.hex() not in repr(cipher)


def test_names_cannot_be_shifted_between_service_and_secret_name() -> None:
    # ("a", "b:c") and ("a:b", "c") must not share associated data.
    blob = SecretCipher(KEY, "a").seal("b:c", {"k": "v"})
    with pytest.raises(SecretUnreadable):
        SecretCipher(KEY, "a:b").open("c", blob)


# ------------------------------------------------------------------------------------------- key file


def test_the_key_file_holds_32_raw_bytes_or_64_hex_digits(tmp_path: Path) -> None:
    raw, hexed = tmp_path / "raw.key", tmp_path / "hex.key"
    raw.write_bytes(KEY)
    hexed.write_text(KEY.hex() + "\n")
    for path in (raw, hexed):
        path.chmod(0o600)
        assert load_key(path) == KEY


def test_an_unusable_key_file_is_a_clear_error(tmp_path: Path) -> None:
    short = tmp_path / "short.key"
    short.write_bytes(b"0123")
    with pytest.raises(SecretKeyError, match=r"short.key: not a 32-byte key \(raw, or 64 hex digits\)"):
        load_key(short)
    with pytest.raises(SecretKeyError, match=r"SECURITY__SECRET_KEY_FILE .*missing.key: cannot read it"):
        load_key(tmp_path / "missing.key")


def test_a_key_file_others_can_read_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "open.key"
    path.write_bytes(KEY)
    os.chmod(path, 0o644)
    load_key(path)
    assert any("chmod 600" in r.getMessage() for r in caplog.records)


def test_a_service_name_that_would_widen_the_key_prefix_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    path.write_bytes(KEY)
    path.chmod(0o600)
    for name in ("core-data:x", "core*", "a b"):
        settings = ServiceSettings(service_name=name, security={"secret_key_file": str(path)})  # type: ignore[arg-type]
        with pytest.raises(SecretKeyError, match="cannot prefix its secret-store keys"):
            open_secret_store(settings)
