"""core-data composition root: the one place adapters are built and wired to the use cases."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI

from core_data import __version__
from core_data.api import events, readings
from core_data.api.common import Managers
from core_data.application.events import EventManager
from core_data.application.ports import EventStore, MetadataSource
from core_data.application.readings import ReadingManager
from core_data.application.retention import RetentionPolicy, RetentionService
from core_data.infrastructure.redis_store import RedisEventStore
from core_data.messaging.ingest import BusEventPublisher, EventIngestor
from core_data.settings import KB, CoreDataSettings
from edgeplane_common.bootstrap import ServiceBootstrap
from edgeplane_common.bus import MessageBus
from edgeplane_common.bus.nats import NatsMessageBus
from edgeplane_common.clients import MetadataClient
from edgeplane_common.durations import parse_duration, parse_retention_duration
from edgeplane_common.http import create_service_app, serve
from edgeplane_common.redis import connect_redis, create_redis


def create_app(
    settings: CoreDataSettings | None = None,
    *,
    store: EventStore | None = None,
    bus: MessageBus | None = None,
    metadata: MetadataSource | None = None,
) -> FastAPI:
    """The core-data app. Adapters not given are built from `settings` and owned by the app (connected at
    start, closed at stop); a given `store`, `bus` or `metadata` is the caller's (a bus connected already)."""
    settings = settings or CoreDataSettings()
    # Start order: Redis (waited for, with a timeout), then in the background NATS and the events consumer
    # (core-data answers REST while NATS is still away); teardown is the reverse.
    boot = ServiceBootstrap(settings.service_name, started_message=f"core-data ready on port {settings.http.port}")
    readiness = boot.readiness
    if store is None:
        redis_client = create_redis(settings.redis, settings.tls)
        store = RedisEventStore(redis_client)
        connect_redis(boot, redis_client, close=store.close)
    if metadata is None:
        token = settings.client_token()
        metadata = MetadataClient(settings.metadata_url, token=token, ca_file=settings.tls.ca_file)
        boot.close("core-metadata client", metadata.close)
    connect_bus: Callable[[], Awaitable[None]] | None = None
    if bus is None:
        bus = NatsMessageBus(settings.nats, name=settings.service_name, tls=settings.tls)
        boot.close("NATS", bus.close)
        connect_bus = bus.connect

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
    boot.close("event writer", event_manager.close)
    boot.close("events consumer", ingestor.stop)

    async def connect_nats() -> None:
        if connect_bus is not None:
            await connect_bus()
            readiness.up("NATS")

    if connect_bus is not None and (ingest.enabled or settings.publish_rest_events):
        readiness.expect("NATS")
    if ingest.enabled:

        async def start_ingest() -> None:
            await connect_nats()
            await ingestor.run()  # retries until the stream and its consumers are there

        boot.task("events consumer", start_ingest, ready=True)
        readiness.probe("events consumer", ingestor.problem)
    elif connect_bus is not None and settings.publish_rest_events:
        boot.task("NATS connect", connect_nats)
    if r.enabled:
        interval = parse_duration(r.interval)
        if interval > 0:
            boot.task("retention", lambda: retention.run_forever(interval))

    app = create_service_app(
        settings,
        version=__version__,
        title="edgeplane core-data",
        routers=[events.router, readings.router],
        bootstrap=boot,
        bus=bus,
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
