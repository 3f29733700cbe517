"""The one core-metadata client (edgeplane_common.clients.metadata) against a scripted core-metadata: names
quoted in paths, paging up to the total and past the end (416), EdgeX errors mapped once, registration
(POST, then PATCH on 409), batch item errors, the bearer token, and ping retries."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from edgeplane_common.clients import MetadataClient
from edgeplane_common.embedded import free_port
from edgeplane_common.errors import (
    CommunicationError,
    EdgeError,
    NotFound,
    RangeNotSatisfiable,
    RemoteError,
    ServiceUnavailable,
)
from edgeplane_common.models import DeviceService, OperatingState

Route = Callable[[httpx.Request], httpx.Response]


def dev(name: str, service: str = "svc") -> dict[str, Any]:
    return {"name": name, "serviceName": service, "profileName": "P", "adminState": "UNLOCKED"}


def answer(status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"})


class Metadata:
    """Records requests; answers from `route`."""

    def __init__(self, route: Route) -> None:
        self.route = route
        self.requests: list[httpx.Request] = []

    def client(self, **kw: Any) -> MetadataClient:
        def handle(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return self.route(request)

        return MetadataClient("http://md:59881/", transport=httpx.MockTransport(handle), **kw)

    @property
    def paths(self) -> list[str]:
        return [r.url.raw_path.decode() for r in self.requests]


async def test_names_are_quoted_in_paths_and_the_token_is_sent() -> None:
    md = Metadata(lambda r: answer(200, {"device": dev("d1"), "profile": {"name": "P"}}))
    client = md.client(token="s3cret")
    await client.device("a/b c?x=1")  # a name core-metadata would refuse must still not change the path
    await client.profile("p:1;v=2")
    await client.devices_of("svc/x")
    await client.close()
    assert md.paths[:2] == ["/api/v3/device/name/a%2Fb%20c%3Fx%3D1", "/api/v3/deviceprofile/name/p%3A1%3Bv%3D2"]
    assert md.paths[2].startswith("/api/v3/device/service/name/svc%2Fx?")
    assert all(r.headers["Authorization"] == "Bearer s3cret" for r in md.requests)


async def test_all_devices_pages_until_the_total_and_stops_at_416() -> None:
    every = [dev(f"d{i}") for i in range(5)]

    def route(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        assert request.url.params["limit"] == "-1"  # as many as core-metadata's MaxResultCount allows
        if offset >= len(every):
            return answer(416, {"statusCode": 416, "message": f"offset {offset} is beyond"})
        return answer(200, {"devices": every[offset : offset + 2], "totalCount": len(every)})

    md = Metadata(route)
    client = md.client()
    assert [d.name for d in await client.all_devices()] == ["d0", "d1", "d2", "d3", "d4"]
    assert len(md.requests) == 3

    # A total that shrank while paging: the 416 past the end ends the list instead of failing it.
    every_then = list(every)
    md.route = lambda r: (
        answer(200, {"devices": every_then[:2], "totalCount": 9})
        if r.url.params["offset"] == "0"
        else answer(416, {"statusCode": 416, "message": "beyond"})
    )
    assert [d.name for d in await client.devices_of("svc")] == ["d0", "d1"]
    await client.close()


async def test_a_device_that_cannot_be_read_is_skipped_from_all_devices() -> None:
    md = Metadata(lambda r: answer(200, {"devices": [dev("ok"), {"name": "no service"}], "totalCount": 2}))
    client = md.client()
    assert [d.name for d in await client.all_devices()] == ["ok"]
    await client.close()


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [
        (404, NotFound, "device 'x' does not exist"),
        (416, RangeNotSatisfiable, "beyond"),
        (400, RemoteError, "core-metadata refused the request for device 'x': beyond"),
        (423, RemoteError, "core-metadata refused the request for device 'x': beyond"),
        (503, ServiceUnavailable, "core-metadata is unavailable: beyond"),
        (500, CommunicationError, "core-metadata answered 500 for device 'x': beyond"),
    ],
)
async def test_edgex_errors_are_mapped_once(status: int, error: type[EdgeError], message: str) -> None:
    client = Metadata(
        lambda r: answer(status, {"apiVersion": "v3", "statusCode": status, "message": "beyond"})
    ).client()
    with pytest.raises(error) as caught:
        await client.device("x")
    assert caught.value.message == message
    assert caught.value.status_code == (status if status != 500 else 502)
    await client.close()


async def test_core_metadata_unreachable_is_service_unavailable() -> None:
    client = MetadataClient(f"http://127.0.0.1:{free_port()}", timeout=1)
    with pytest.raises(ServiceUnavailable, match=r"core-metadata at http://127\.0\.0\.1:\d+ is unreachable"):
        await client.devices(0, 10)
    with pytest.raises(ServiceUnavailable, match=r"did not answer within 0\.3s"):
        await client.wait_ready(timeout=0.3)
    await client.close()


async def test_wait_ready_retries_until_core_metadata_answers() -> None:
    pings = iter([503, 503, 200])
    md = Metadata(lambda r: answer(next(pings), {"apiVersion": "v3"}))
    client = md.client()
    await client.wait_ready(timeout=30)
    assert md.paths == ["/api/v3/ping"] * 3
    await client.close()


async def test_register_service_adds_then_patches_an_existing_one() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return answer(207, [{"apiVersion": "v3", "statusCode": 409, "message": "exists"}])
        return answer(207, [{"apiVersion": "v3", "statusCode": 200}])

    md = Metadata(route)
    client = md.client()
    await client.register_service(DeviceService(name="svc", base_address="http://here:1", labels=["a"]))
    assert [r.method for r in md.requests] == ["POST", "PATCH"]
    patch = json.loads(md.requests[1].content)
    assert patch == [{"apiVersion": "v3", "service": {"name": "svc", "baseAddress": "http://here:1", "labels": ["a"]}}]

    md.route = lambda r: answer(207, [{"apiVersion": "v3", "statusCode": 400, "message": "bad address"}])
    with pytest.raises(RemoteError, match="bad address") as caught:
        await client.register_service(DeviceService(name="svc", base_address="nope"))
    assert caught.value.status_code == 400
    await client.close()


async def test_batch_items_map_their_own_status() -> None:
    results = iter(
        [
            [{"apiVersion": "v3", "statusCode": 201, "id": "id-1"}],
            [{"apiVersion": "v3", "statusCode": 409, "message": "device d1 already exists"}],
            [{"apiVersion": "v3", "statusCode": 404, "message": "profile P does not exist"}],
            [{"apiVersion": "v3", "statusCode": 200}],
        ]
    )
    md = Metadata(lambda r: answer(207, next(results)))
    client = md.client()
    assert await client.add_device(dev("d1")) == "id-1"
    with pytest.raises(RemoteError, match="already exists") as caught:
        await client.add_device(dev("d1"))
    assert caught.value.status_code == 409
    with pytest.raises(NotFound, match="profile P does not exist"):
        await client.add_device(dev("d1"))
    await client.set_operating_state("d 1", OperatingState.DOWN)
    assert md.paths[0] == "/api/v3/device?bypassValidation=true"
    assert json.loads(md.requests[-1].content) == [
        {"apiVersion": "v3", "device": {"name": "d 1", "operatingState": "DOWN"}}
    ]
    await client.close()


async def test_provision_watchers_of_a_service() -> None:
    watcher = {
        "name": "w1",
        "serviceName": "svc",
        "identifiers": {"Address": "^10\\."},
        "discoveredDevice": {"profileName": "P", "adminState": "UNLOCKED"},
    }
    md = Metadata(lambda r: answer(200, {"provisionWatchers": [watcher], "totalCount": 1}))
    client = md.client()
    (got,) = await client.provision_watchers_of("svc")
    assert (got.name, got.discovered_device.profile_name) == ("w1", "P")
    assert md.paths[0].startswith("/api/v3/provisionwatcher/service/name/svc?")
    await client.close()


async def test_a_closed_client_opens_new_connections_with_the_same_settings() -> None:
    """The client is built with its app but closed with the app's lifespan, which may run again (an ASGI test
    harness runs one per test): the next request must not fail with "the client has been closed"."""
    md = Metadata(lambda r: answer(200, {"device": dev("d1")}))
    client = md.client(token="s3cret")
    await client.device("d1")
    await client.close()
    assert (await client.device("d1")).name == "d1"
    assert [r.headers["Authorization"] for r in md.requests] == ["Bearer s3cret"] * 2
    assert md.paths == ["/api/v3/device/name/d1"] * 2
    await client.close()
