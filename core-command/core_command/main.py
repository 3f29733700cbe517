"""core-command composition root: the one place adapters are built and wired to the use case."""

from __future__ import annotations

from fastapi import FastAPI

from core_command import __version__
from core_command.api import commands
from core_command.application.commands import CommandManager
from core_command.application.ports import MetadataSource
from core_command.settings import CoreCommandSettings
from edgeplane_common.bootstrap import ServiceBootstrap
from edgeplane_common.bus import MessageBus
from edgeplane_common.bus.nats import NatsMessageBus
from edgeplane_common.clients import CachedMetadata, CacheUpdater, MetadataClient, SystemEventListener
from edgeplane_common.clients.commands import BusCommandRelay
from edgeplane_common.http import create_service_app, serve


def create_app(
    settings: CoreCommandSettings | None = None,
    *,
    metadata: MetadataSource | None = None,
    bus: MessageBus | None = None,
) -> FastAPI:
    """`metadata`: where devices and profiles come from (default: core-metadata over REST at
    `settings.metadata_url`, owned by the app); `bus`: a connected bus (default: NATS, connected and closed
    by the app). Given adapters are the caller's: never connected or closed here."""
    settings = settings or CoreCommandSettings()
    cache_state = f"on, ttl {settings.cache.ttl:g}s" if settings.cache.enabled else "off"
    boot = ServiceBootstrap(
        settings.service_name,
        started_message=(
            f"core-command ready on port {settings.http.port} (core-metadata at {settings.metadata_url}, "
            f"command timeout {settings.command.timeout:g}s, cache {cache_state})"
        ),
    )
    # Start order: NATS, then the system-event listener that keeps the cache fresh; teardown is the reverse.
    if metadata is None:
        token = settings.client_token()
        metadata = MetadataClient(
            settings.metadata_url, token=token, timeout=settings.metadata_timeout, ca_file=settings.tls.ca_file
        )
        boot.close("core-metadata client", metadata.close)
        boot.readiness.probe("core-metadata", metadata.ping)
    source: MetadataSource = metadata
    if bus is None:
        bus = NatsMessageBus(settings.nats, name=settings.service_name, tls=settings.tls)
        boot.connect("NATS", bus.connect, close=bus.close)
    cache = CachedMetadata(source, ttl=settings.cache.ttl) if settings.cache.enabled else None
    if cache is not None:
        listener = SystemEventListener(bus, CacheUpdater(cache))
        boot.step("system events", listener.start, stop=listener.stop)
    manager = CommandManager(
        cache or source,
        BusCommandRelay(bus, timeout=settings.command.timeout),
        service_url=settings.service_url(),
    )

    app = create_service_app(
        settings,
        version=__version__,
        title="edgeplane core-command",
        routers=[commands.router],
        bootstrap=boot,
        bus=bus,
    )
    app.state.commands = manager
    app.state.metadata_cache = cache
    return app


def run() -> None:
    settings = CoreCommandSettings()
    serve(settings, lambda: create_app(settings))
