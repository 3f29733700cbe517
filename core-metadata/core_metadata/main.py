"""core-metadata composition root: the one place adapters are built and wired to the use cases."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from fastapi import FastAPI

from core_metadata import __version__
from core_metadata.api import devices, profiles, services, uom, watchers
from core_metadata.api.common import Managers
from core_metadata.application.devices import DeviceManager
from core_metadata.application.ports import MetadataStore
from core_metadata.application.profiles import ProfileManager
from core_metadata.application.services import DeviceServiceManager
from core_metadata.application.watchers import ProvisionWatcherManager
from core_metadata.infrastructure.redis_store import RedisMetadataStore
from core_metadata.messaging.system_events import BusSystemEventPublisher
from core_metadata.messaging.validation import BusDeviceValidator
from core_metadata.settings import CoreMetadataSettings
from edgeplane_common.bus import MessageBus
from edgeplane_common.bus.nats import NatsMessageBus
from edgeplane_common.http import create_service_app, serve
from edgeplane_common.redis import create_redis, wait_for_redis

log = logging.getLogger(__name__)


def load_uom(path: str | None) -> dict[str, Any]:
    text = Path(path).read_text() if path else resources.files("core_metadata").joinpath("res/uom.yaml").read_text()
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def create_app(
    settings: CoreMetadataSettings | None = None,
    *,
    store: MetadataStore | None = None,
    bus: MessageBus | None = None,
) -> FastAPI:
    settings = settings or CoreMetadataSettings()
    own_store, own_bus = store is None, bus is None
    bus = bus or NatsMessageBus(settings.nats, name=settings.service_name)
    redis_client = create_redis(settings.redis) if store is None else None
    store = store or RedisMetadataStore(redis_client)  # type: ignore[arg-type]

    lock = asyncio.Lock()
    publisher = BusSystemEventPublisher(bus)
    validator = BusDeviceValidator(
        bus,
        timeout=settings.validation.timeout,
        reject_when_unavailable=settings.validation.reject_when_unavailable,
    )
    common: dict[str, Any] = {"lock": lock, "max_result_count": settings.max_result_count}
    managers = Managers(
        devices=DeviceManager(store, publisher, validator, **common),
        profiles=ProfileManager(store, publisher, strict_changes=settings.strict_profile_changes, **common),
        services=DeviceServiceManager(store, publisher, **common),
        watchers=ProvisionWatcherManager(store, publisher, **common),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if redis_client is not None:
            await wait_for_redis(redis_client, timeout=60)
        if own_bus:
            await bus.connect()
        log.info("core-metadata ready on port %s", settings.http.port)
        try:
            yield
        finally:
            if own_bus:
                await bus.close()
            if own_store:
                await store.close()

    app = create_service_app(
        settings,
        version=__version__,
        title="edgeplane core-metadata",
        routers=[
            devices.router,
            profiles.router,
            profiles.resource_router,
            services.router,
            watchers.router,
            uom.router,
        ],
        lifespan=lifespan,
    )
    app.state.managers = managers
    app.state.uom = load_uom(settings.uom_file)
    return app


def run() -> None:
    settings = CoreMetadataSettings()
    serve(settings, lambda: create_app(settings))
