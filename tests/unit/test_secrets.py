"""The bounded in-memory secret store behind POST /api/v3/secret."""

from __future__ import annotations

import httpx
import pytest

from edgeplane_common.errors import LimitExceeded, NotFound
from edgeplane_common.http import create_service_app
from edgeplane_common.secrets import SecretStore
from edgeplane_common.settings import ServiceSettings


def test_put_then_get_returns_a_copy() -> None:
    store = SecretStore()
    store.put("mqtt", {"username": "edge", "password": "s3cr3t"})
    got = store.get("mqtt")
    assert got == {"username": "edge", "password": "s3cr3t"}
    got["password"] = "changed"
    assert store.get("mqtt")["password"] == "s3cr3t"
    assert "s3cr3t" not in repr(store)


def test_an_unknown_secret_is_not_found() -> None:
    with pytest.raises(NotFound, match="no secret named 'nope'"):
        SecretStore().get("nope")


def test_the_number_of_secrets_is_capped_but_replacing_one_is_allowed() -> None:
    store = SecretStore(max_secrets=2)
    store.put("a", {"k": "1"})
    store.put("b", {"k": "2"})
    with pytest.raises(LimitExceeded, match="maximum of 2 secrets") as info:
        store.put("c", {"k": "3"})
    assert info.value.status_code == 413
    store.put("a", {"k": "replaced"})
    assert store.names() == ["a", "b"]
    assert store.get("a") == {"k": "replaced"}


def test_the_size_of_one_secret_is_capped_and_a_refused_write_changes_nothing() -> None:
    store = SecretStore(max_secret_bytes=8)
    store.put("a", {"key": "12345"})  # exactly 8 bytes
    with pytest.raises(LimitExceeded, match="9 bytes; the maximum is 8 bytes"):
        store.put("a", {"key": "123456"})
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
        assert {"400", "413"} <= set(documented)
