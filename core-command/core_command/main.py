"""core-command composition root: the one place adapters are built and wired to the use case."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from core_command import __version__
from core_command.api import commands
from core_command.application.cache import CachedMetadata
from core_command.application.commands import CommandManager
from core_command.application.ports import MetadataSource
from core_command.infrastructure.metadata_client import MetadataHttpClient
from core_command.messaging.command_relay import BusCommandRelay
from core_command.messaging.system_events import SystemEventListener
from core_command.settings import CoreCommandSettings
from edgeplane_common.bus import MessageBus
from edgeplane_common.bus.nats import NatsMessageBus
from edgeplane_common.http import create_service_app, serve

log = logging.getLogger(__name__)


def create_app(
    settings: CoreCommandSettings | None = None,
    *,
    metadata: MetadataSource | None = None,
    bus: MessageBus | None = None,
) -> FastAPI:
    """`metadata`: where devices and profiles come from (default: core-metadata over REST at
    `settings.metadata_url`); `bus`: a connected bus (default: NATS, connected and closed by the app)."""
    settings = settings or CoreCommandSettings()
    own_bus, own_metadata = bus is None, metadata is None
    bus = bus or NatsMessageBus(settings.nats, name=settings.service_name)
    token = settings.http.auth_token.get_secret_value() if settings.http.auth_token else None
    source: MetadataSource = metadata or MetadataHttpClient(
        settings.metadata_url, token=token, timeout=settings.metadata_timeout
    )
    cache = CachedMetadata(source, ttl=settings.cache.ttl) if settings.cache.enabled else None
    listener = SystemEventListener(bus, cache) if cache is not None else None
    manager = CommandManager(
        cache or source,
        BusCommandRelay(bus, timeout=settings.command.timeout),
        service_url=settings.service_url(),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if own_bus:
            await bus.connect()
        if listener is not None:
            await listener.start()
        log.info(
            "core-command ready on port %s (core-metadata at %s, command timeout %gs, cache %s)",
            settings.http.port,
            settings.metadata_url,
            settings.command.timeout,
            f"on, ttl {settings.cache.ttl:g}s" if cache is not None else "off",
        )
        try:
            yield
        finally:
            if listener is not None:
                await listener.stop()
            if own_bus:
                await bus.close()
            if own_metadata:
                await source.close()

    app = create_service_app(
        settings,
        version=__version__,
        title="edgeplane core-command",
        routers=[commands.router],
        lifespan=lifespan,
    )
    app.state.commands = manager
    app.state.metadata_cache = cache
    return app


def run() -> None:
    settings = CoreCommandSettings()
    serve(settings, lambda: create_app(settings))
