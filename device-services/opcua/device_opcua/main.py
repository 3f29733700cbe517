"""device-opcua composition root."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from device_opcua import __version__
from device_opcua.driver import OpcuaDriver
from device_opcua.settings import DeviceOpcuaSettings
from edgeplane_common.bus import MessageBus
from edgeplane_common.clients import MetadataClient
from edgeplane_common.http import serve
from edgeplane_sdk.app import create_device_service_app

RES_DIR = Path(__file__).parent / "res"


def create_app(
    settings: DeviceOpcuaSettings | None = None,
    *,
    bus: MessageBus | None = None,
    metadata: MetadataClient | None = None,
) -> FastAPI:
    settings = settings or DeviceOpcuaSettings()
    driver = OpcuaDriver(
        keepalive=settings.keepalive,
        max_backoff=settings.max_backoff,
        subscriptions=settings.subscriptions,
        discovery_endpoints=settings.discovery_endpoints,
    )
    app = create_device_service_app(
        settings, driver, version=__version__, bus=bus, metadata=metadata, default_res_dir=RES_DIR
    )
    # Passwords come from the service's own secret store (POST /api/v3/secret), looked up at each connect.
    driver.secrets = app.state.secrets
    return app


def run() -> None:
    settings = DeviceOpcuaSettings()
    serve(settings, lambda: create_app(settings))
