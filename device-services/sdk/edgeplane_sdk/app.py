"""Composition root shared by every device service: bus, metadata client, runtime, REST app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from edgeplane_common.bootstrap import ServiceBootstrap
from edgeplane_common.bus import MessageBus
from edgeplane_common.bus.nats import NatsMessageBus
from edgeplane_common.clients import MetadataClient
from edgeplane_common.http import create_service_app, serve
from edgeplane_sdk.api import router
from edgeplane_sdk.driver import ProtocolDriver
from edgeplane_sdk.runtime import DeviceServiceRuntime
from edgeplane_sdk.settings import DeviceServiceSettings


def create_device_service_app(
    settings: DeviceServiceSettings,
    driver: ProtocolDriver,
    *,
    version: str,
    bus: MessageBus | None = None,
    metadata: MetadataClient | None = None,
    default_res_dir: Path | None = None,
) -> FastAPI:
    """A device service around `driver`. Adapters not given are built from `settings` and owned by the app;
    a given `bus` (connected) or `metadata` client is the caller's: never connected or closed here."""
    # Start order: NATS, then the runtime (waits for core-metadata, registers, provisions, starts the driver
    # and subscribes); teardown is the reverse.
    boot = ServiceBootstrap(settings.service_name)
    if bus is None:
        bus = NatsMessageBus(settings.nats, name=settings.service_name, tls=settings.tls)
        boot.connect("NATS", bus.connect, close=bus.close)
    if metadata is None:
        token = settings.client_token()
        metadata = MetadataClient(settings.metadata_url, token=token, ca_file=settings.tls.ca_file)
        boot.close("core-metadata client", metadata.close)
    runtime = DeviceServiceRuntime(settings, driver, bus, metadata, default_res_dir=default_res_dir)
    boot.step("runtime", runtime.start, stop=runtime.stop)
    boot.readiness.probe("core-metadata", metadata.ping)

    app = create_service_app(
        settings,
        version=version,
        title=f"edgeplane {settings.service_name}",
        routers=[router],
        bootstrap=boot,
        bus=bus,
    )
    app.state.runtime = runtime
    runtime.secrets = app.state.secrets
    app.state.discoveries = {}
    return app


def run_device_service(
    settings: DeviceServiceSettings, driver: ProtocolDriver, *, version: str, default_res_dir: Path | None = None
) -> None:
    serve(
        settings, lambda: create_device_service_app(settings, driver, version=version, default_res_dir=default_res_dir)
    )
