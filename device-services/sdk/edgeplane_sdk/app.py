"""Composition root shared by every device service: bus, metadata client, runtime, REST app."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from edgeplane_common.bus import MessageBus
from edgeplane_common.bus.nats import NatsMessageBus
from edgeplane_common.http import create_service_app, serve
from edgeplane_sdk.api import router
from edgeplane_sdk.driver import ProtocolDriver
from edgeplane_sdk.metadata_client import MetadataClient
from edgeplane_sdk.runtime import DeviceServiceRuntime
from edgeplane_sdk.settings import DeviceServiceSettings

log = logging.getLogger(__name__)


def create_device_service_app(
    settings: DeviceServiceSettings,
    driver: ProtocolDriver,
    *,
    version: str,
    bus: MessageBus | None = None,
    metadata: MetadataClient | None = None,
    default_res_dir: Path | None = None,
) -> FastAPI:
    own_bus = bus is None
    bus = bus or NatsMessageBus(settings.nats, name=settings.service_name)
    token = settings.http.auth_token.get_secret_value() if settings.http.auth_token else None
    metadata = metadata or MetadataClient(settings.metadata_url, token=token)
    runtime = DeviceServiceRuntime(settings, driver, bus, metadata, default_res_dir=default_res_dir)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if own_bus:
            await bus.connect()
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()
            await metadata.close()
            if own_bus:
                await bus.close()

    app = create_service_app(
        settings, version=version, title=f"edgeplane {settings.service_name}", routers=[router], lifespan=lifespan
    )
    app.state.runtime = runtime
    app.state.discoveries = {}
    return app


def run_device_service(
    settings: DeviceServiceSettings, driver: ProtocolDriver, *, version: str, default_res_dir: Path | None = None
) -> None:
    serve(
        settings, lambda: create_device_service_app(settings, driver, version=version, default_res_dir=default_res_dir)
    )
