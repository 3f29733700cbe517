"""Fuzzing core-metadata, core-data and core-command against EdgeX's OWN OpenAPI documents (v4.0.2): no 5xx.

Our own documents are fuzzed in depth elsewhere (test_metadata_fuzz.py); here the requests come from the
documents EdgeX clients are written against, read in place from the reference files (skipped when absent).
Only `not_a_server_error` is checked: our bodies are validated against EdgeX's schemas operation by
operation in test_*_openapi.py, and EdgeX's documents leave out statuses EdgeX itself answers.

The documents are not strictly valid (see /work/shared/design.md); schemathesis 4's `from_dict` never checks
a document against the OpenAPI meta-schema, so they load as they are, and the one fix-up made in memory
(`_fixed_up`) only points the operations at the app under test. The apps run in-process (schemathesis' ASGI transport) on the test session's real Redis and NATS; each
service on its own Redis database, so what the metadata fuzz creates never reaches the others. core-command
needs a core-metadata and a device service to talk to: they run on real HTTP in a background thread
(`BackgroundStack`), holding the device the documents' examples name (Random-Boolean-Device), served by an
in-memory driver, so the examples phase reaches a real device.

Bounded for CI: a fixed seed, MAX_EXAMPLES per operation, no coverage or stateful phase, no example database.
What the run found is fixed and pinned by the exact requests at the end of this module.
"""

from __future__ import annotations

import asyncio
import copy
import os
import threading
from collections.abc import Awaitable, Iterator
from concurrent.futures import Future
from contextlib import AsyncExitStack
from typing import Any, TypeVar

import httpx
import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.python import asgi

from core_command.main import create_app as create_command_app
from core_command.settings import CoreCommandSettings
from core_data.main import create_app as create_data_app
from core_metadata.main import create_app as create_metadata_app
from edgeplane_common.embedded import free_port
from edgeplane_common.models import Device
from edgeplane_sdk.app import create_device_service_app
from edgeplane_sdk.driver import CommandRequest, CommandValue, ProtocolDriver
from edgeplane_sdk.settings import DeviceServiceSettings
from tests.support.core_data import core_data_settings
from tests.support.metadata import metadata_settings
from tests.support.openapi import load_spec
from tests.support.reference import MISSING_REASON, REFERENCE
from tests.support.stack import serve, wait_until

if REFERENCE is None:
    pytest.skip(MISSING_REASON, allow_module_level=True)

DOCS = REFERENCE / "edgex-openapi" / "v4.0.2"
PREFIX = "/api/v3"
# A fixed seed: the same requests every run, so a failure is reproducible. Both can be raised to explore
# (EDGEPLANE_FUZZ_SEED, EDGEPLANE_FUZZ_EXAMPLES); CI keeps the defaults.
MAX_EXAMPLES = int(os.environ.get("EDGEPLANE_FUZZ_EXAMPLES", "5"))
FUZZ_SEED = int(os.environ.get("EDGEPLANE_FUZZ_SEED", "20261127"))
CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": FUZZ_SEED,
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "database": "none"},
        "phases": {
            "examples": {"enabled": True},
            "fuzzing": {
                "enabled": True,
                "extra-data-sources": {"responses": False},
                "error-feedback": {"enabled": False},
            },
            "coverage": {"enabled": False},
            "stateful": {"enabled": False},
        },
    }
)
# One Redis database per service under test: the metadata fuzz creates and deletes what it likes.
DB = {"core-metadata": 1, "core-data": 2, "core-command": 3}
SERVICE = "device-virtual"  # the documents' examples
DEVICE = "Random-Boolean-Device"
PROFILE = "Random-Boolean-Device"
T = TypeVar("T")


def _fixed_up(raw: dict[str, Any]) -> dict[str, Any]:
    """The document as schemathesis needs it: `servers` name EdgeX's localhost ports; the app under test is
    called in-process, so only the path prefix of that URL is kept."""
    doc = copy.deepcopy(raw)
    doc["servers"] = [{"url": PREFIX}]
    return doc


def _schema(service: str) -> Any:
    return schemathesis.openapi.from_dict(_fixed_up(load_spec(DOCS / f"{service}.yaml")), config=CONFIG)


METADATA_SCHEMA = _schema("core-metadata")
DATA_SCHEMA = _schema("core-data")
COMMAND_SCHEMA = _schema("core-command")


def _db(url: str, service: str) -> str:
    """`url` on the service's own database, emptied."""
    own = url.rsplit("/", 1)[0] + f"/{DB[service]}"
    client = redis.Redis.from_url(own)
    client.flushdb()
    client.close()
    return own


class BackgroundStack:
    """An event loop in a thread, for servers the app under test talks to over real HTTP while schemathesis
    drives that app on its own loop thread."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fuzz-stack", daemon=True)
        self._thread.start()
        self.stack = AsyncExitStack()

    def run(self, coro: Awaitable[T], timeout: float = 60) -> T:
        async def wrapped() -> T:
            return await coro

        fut: Future[T] = asyncio.run_coroutine_threadsafe(wrapped(), self._loop)
        return fut.result(timeout)

    def close(self) -> None:
        self.run(self.stack.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


class BooleanDriver(ProtocolDriver):
    """Every resource holds a value it returns and takes (the documents' example device is a Bool one)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {"Bool": True}

    async def handle_read_commands(
        self, device: Device, protocols: dict[str, dict[str, Any]], requests: list[CommandRequest]
    ) -> list[CommandValue]:
        return [CommandValue(r.resource_name, r.value_type, self.values.get(r.resource_name, False)) for r in requests]

    async def handle_write_commands(
        self,
        device: Device,
        protocols: dict[str, dict[str, Any]],
        requests: list[CommandRequest],
        values: list[CommandValue],
    ) -> None:
        for v in values:
            self.values[v.resource_name] = v.value


BOOL_PROFILE = {
    "name": PROFILE,
    "manufacturer": "edgeplane",
    "model": "fuzz",
    "deviceResources": [
        {"name": "Bool", "properties": {"valueType": "Bool", "readWrite": "RW", "defaultValue": "true"}},
        {"name": "EnableRandomization_Bool", "properties": {"valueType": "Bool", "readWrite": "W"}},
    ],
    "deviceCommands": [
        {
            "name": "WriteBoolValue",
            "readWrite": "W",
            "resourceOperations": [{"deviceResource": "Bool"}, {"deviceResource": "EnableRandomization_Bool"}],
        }
    ],
}


async def _start_command_backends(stack: AsyncExitStack, nats_url: str, redis_url: str) -> str:
    """core-metadata and a device service holding DEVICE, on real HTTP; returns core-metadata's URL."""
    md_url = await stack.enter_async_context(serve(create_metadata_app(metadata_settings(nats_url, redis_url))))
    md = await stack.enter_async_context(httpx.AsyncClient(base_url=md_url + PREFIX))
    r = await md.post("/deviceprofile", json=[{"apiVersion": "v3", "profile": BOOL_PROFILE}])
    assert r.json()[0]["statusCode"] == 201, r.text
    ds_port = free_port()
    ds_settings = DeviceServiceSettings.model_validate(
        {
            "service_name": SERVICE,
            "nats": {"url": nats_url},
            "metadata_url": md_url,
            "provision": False,
            "http": {"host": "127.0.0.1", "port": ds_port},
        }
    )
    ds_url = await stack.enter_async_context(
        serve(create_device_service_app(ds_settings, BooleanDriver(), version="fuzz"), ds_port)
    )
    device = {
        "name": DEVICE,
        "serviceName": SERVICE,
        "profileName": PROFILE,
        "adminState": "UNLOCKED",
        "operatingState": "UP",
        "protocols": {"other": {"Address": "fuzz"}},
    }
    r = await md.post("/device", json=[{"apiVersion": "v3", "device": device}])
    assert r.json()[0]["statusCode"] == 201, r.text
    async with httpx.AsyncClient(base_url=ds_url + PREFIX) as ds:

        async def served() -> bool:
            return (await ds.get(f"/device/name/{DEVICE}/Bool")).status_code == 200

        await wait_until(served, timeout=15)
    return md_url


@pytest.fixture(scope="module")
def apps(nats_url: str, redis_url: str) -> Iterator[dict[str, Any]]:
    """The three apps under test; schemathesis starts their lifespans on its loop thread."""
    background = BackgroundStack()
    try:
        md_url = background.run(_start_command_backends(background.stack, nats_url, _db(redis_url, "core-command")))
        command_settings = CoreCommandSettings.model_validate(
            {"nats": {"url": nats_url}, "metadata_url": md_url, "command": {"timeout": 2.0}}
        )
        yield {
            "core-metadata": create_metadata_app(metadata_settings(nats_url, _db(redis_url, "core-metadata"))),
            "core-data": create_data_app(core_data_settings(nats_url, _db(redis_url, "core-data"))),
            "core-command": create_command_app(command_settings),
        }
        asgi.shutdown_lifespans()
    finally:
        background.close()


def test_documents_are_the_expected_ones() -> None:
    counts = {
        name: len(list(s.get_all_operations()))
        for name, s in [
            ("core-metadata", METADATA_SCHEMA),
            ("core-data", DATA_SCHEMA),
            ("core-command", COMMAND_SCHEMA),
        ]
    }
    assert counts == {"core-metadata": 46, "core-data": 24, "core-command": 8}


def _fuzz(case: schemathesis.Case, app: Any) -> None:
    response = case.call(app=app)
    case.validate_response(response, checks=[not_a_server_error], transport_kwargs={"app": app})


@METADATA_SCHEMA.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_core_metadata_edgex_fuzz(case: schemathesis.Case, apps: dict[str, Any]) -> None:
    _fuzz(case, apps["core-metadata"])


@DATA_SCHEMA.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_core_data_edgex_fuzz(case: schemathesis.Case, apps: dict[str, Any]) -> None:
    _fuzz(case, apps["core-data"])


@COMMAND_SCHEMA.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_core_command_edgex_fuzz(case: schemathesis.Case, apps: dict[str, Any]) -> None:
    _fuzz(case, apps["core-command"])


# The run's findings as exact requests, whatever the seed draws.


def test_core_command_serves_after_its_lifespan_ran_again(apps: dict[str, Any]) -> None:
    """schemathesis ends an app's lifespan after each test and starts it again for the next: core-command's
    core-metadata client was built with the app but closed with the first lifespan, so every request after it
    answered 500 ("the client has been closed")."""
    app = apps["core-command"]
    for _ in range(2):
        with asgi.get_client(app) as client:
            r = client.get(f"{PREFIX}/device/name/{DEVICE}")
            assert r.status_code == 200, r.text
            r = client.get(f"{PREFIX}/device/name/{DEVICE}/Bool")
            assert r.status_code == 200, r.text
        asgi.shutdown_lifespans()
