"""core-data composition root: the one place adapters are built and wired to the use cases."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from core_data import __version__
from core_data.api import events, readings
from core_data.api.common import Managers
from core_data.application.durations import parse_retention_duration
from core_data.application.events import EventManager
from core_data.application.ports import EventStore, MetadataSource
from core_data.application.readings import ReadingManager
from core_data.application.retention import RetentionPolicy, RetentionService
from core_data.infrastructure.metadata_client import HttpMetadataSource
from core_data.infrastructure.redis_store import RedisEventStore
from core_data.messaging.ingest import BusEventPublisher, EventIngestor
from core_data.settings import KB, CoreDataSettings
from edgeplane_common.bus import MessageBus
from edgeplane_common.bus.nats import NatsMessageBus
from edgeplane_common.durations import parse_duration
from edgeplane_common.http import create_service_app, serve
from edgeplane_common.redis import create_redis, wait_for_redis

log = logging.getLogger(__name__)


def create_app(
    settings: CoreDataSettings | None = None,
    *,
    store: EventStore | None = None,
    bus: MessageBus | None = None,
    metadata: MetadataSource | None = None,
) -> FastAPI:
    """The core-data app. Adapters not given are built from `settings` and owned (closed) by the app;
    a given `bus` is expected to be connected already."""
    settings = settings or CoreDataSettings()
    own_store, own_bus, own_metadata = store is None, bus is None, metadata is None
    bus = bus or NatsMessageBus(settings.nats, name=settings.service_name)
    redis_client = create_redis(settings.redis) if store is None else None
    store = store or RedisEventStore(redis_client)  # type: ignore[arg-type]
    token = settings.http.auth_token.get_secret_value() if settings.http.auth_token else None
    metadata = metadata or HttpMetadataSource(settings.metadata_url, token=token)

    ingest = settings.ingest
    event_manager = EventManager(
        store,
        max_result_count=settings.max_result_count,
        max_batch=ingest.max_batch,
        linger=ingest.linger_ms / 1000,
        persist=settings.persist_data,
        publisher=BusEventPublisher(bus) if settings.publish_rest_events else None,
    )
    reading_manager = ReadingManager(store, max_result_count=settings.max_result_count)
    r = settings.retention
    retention = RetentionService(
        store,
        metadata,
        RetentionPolicy(
            max_cap=r.default_max_cap,
            min_cap=r.default_min_cap,
            duration_ns=parse_retention_duration(r.default_duration),
        ),
    )
    ingestor = EventIngestor(bus, event_manager, ingest)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if redis_client is not None:
            await wait_for_redis(redis_client, timeout=60)
        tasks: list[asyncio.Task[None]] = []

        async def start_ingest() -> None:
            if own_bus:
                await bus.connect()
            await ingestor.run()

        if ingest.enabled:
            tasks.append(asyncio.create_task(start_ingest(), name="core-data ingest start"))
        elif own_bus and settings.publish_rest_events:
            tasks.append(asyncio.create_task(bus.connect(), name="core-data bus connect"))
        if r.enabled:
            interval = parse_duration(r.interval)
            if interval > 0:
                tasks.append(asyncio.create_task(retention.run_forever(interval), name="core-data retention"))
        log.info("core-data ready on port %s", settings.http.port)
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await ingestor.stop()
            await event_manager.close()
            if own_bus:
                await bus.close()
            if own_metadata:
                await metadata.close()
            if own_store:
                await store.close()

    app = create_service_app(
        settings,
        version=__version__,
        title="edgeplane core-data",
        routers=[events.router, readings.router],
        lifespan=lifespan,
    )
    app.state.managers = Managers(events=event_manager, readings=reading_manager)
    app.state.max_event_bytes = settings.max_event_size * KB
    app.state.retention = retention
    app.state.ingestor = ingestor
    return app


def run() -> None:
    settings = CoreDataSettings()
    serve(settings, lambda: create_app(settings))


__all__ = ["create_app", "run"]
