"""GET /api/v3/version of every service (all are built by create_service_app)."""

from __future__ import annotations

import httpx

from edgeplane_common import EDGEX_VERSION
from edgeplane_common.http import create_service_app
from edgeplane_common.settings import ServiceSettings


async def test_version_is_the_edgex_release_and_service_version_ours() -> None:
    # EdgeX clients (and EdgeX's TAF InfoGET002) gate on `version` being an EdgeX 4.0 release.
    app = create_service_app(ServiceSettings(service_name="svc"), version="1.2.3", title="t", routers=[])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
        body = (await client.get("/api/v3/version")).json()
    assert body == {"apiVersion": "v3", "version": EDGEX_VERSION, "serviceName": "svc", "serviceVersion": "1.2.3"}
    assert EDGEX_VERSION.split(".")[:2] == ["4", "0"]
