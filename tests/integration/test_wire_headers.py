"""Response header names on the wire as EdgeX (Go's net/http) spells them: clients exist that compare them
exactly (EdgeX's TAF suites check `'Content-Type' in headers`), so lower-case names break them."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from edgeplane_common.http import create_service_app
from edgeplane_common.http.middleware import canonical_header
from edgeplane_common.settings import ServiceSettings
from tests.support.stack import serve


def test_header_names_are_canonicalised_like_go() -> None:
    assert canonical_header(b"content-type") == b"Content-Type"
    assert canonical_header(b"x-correlation-id") == b"X-Correlation-Id"
    assert canonical_header(b"CONTENT-LENGTH") == b"Content-Length"
    assert canonical_header(b"etag") == b"Etag"


async def _raw_get(port: int, path: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    return data


async def test_served_responses_spell_content_type_as_go_does() -> None:
    app = create_service_app(ServiceSettings(service_name="wire-test"), version="0", title="t", routers=[])
    async with serve(app) as url:
        port = urlsplit(url).port
        assert port is not None
        ok = await _raw_get(port, "/api/v3/ping")
        missing = await _raw_get(port, "/api/v3/no-such-route")
    for raw in (ok, missing):
        head = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        names = [line.split(b":", 1)[0] for line in head[1:]]
        assert b"Content-Type: application/json" in head, head
        assert b"X-Correlation-Id" in names
        assert b"Date" in names
        assert all(n[:1].isupper() for n in names), names
