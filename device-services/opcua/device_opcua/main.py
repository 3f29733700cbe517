"""device-opcua composition root."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from device_opcua import __version__
from device_opcua.driver import OpcuaDriver
from device_opcua.settings import DeviceOpcuaSettings
from edgeplane_common.bus import MessageBus
from edgeplane_common.clients import MetadataClient
from edgeplane_sdk.app import create_device_service_app, run_device_service

RES_DIR = Path(__file__).parent / "res"


def _driver(settings: DeviceOpcuaSettings) -> OpcuaDriver:
    # Passwords come from the service's secret store (POST /api/v3/secret), which the SDK hands the driver.
    return OpcuaDriver(
        keepalive=settings.keepalive,
        max_backoff=settings.max_backoff,
        subscriptions=settings.subscriptions,
        discovery_endpoints=settings.discovery_endpoints,
    )


def create_app(
    settings: DeviceOpcuaSettings | None = None,
    *,
    bus: MessageBus | None = None,
    metadata: MetadataClient | None = None,
) -> FastAPI:
    settings = settings or DeviceOpcuaSettings()
    return create_device_service_app(
        settings, _driver(settings), version=__version__, bus=bus, metadata=metadata, default_res_dir=RES_DIR
    )


def run() -> None:
    settings = DeviceOpcuaSettings()
    run_device_service(settings, _driver(settings), version=__version__, default_res_dir=RES_DIR)
