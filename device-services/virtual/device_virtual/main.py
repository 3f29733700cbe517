"""device-virtual composition root."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from device_virtual import __version__
from device_virtual.driver import VirtualDriver
from device_virtual.settings import DeviceVirtualSettings
from edgeplane_common.bus import MessageBus
from edgeplane_common.clients import MetadataClient
from edgeplane_sdk.app import create_device_service_app, run_device_service

RES_DIR = Path(__file__).parent / "res"


def _driver(settings: DeviceVirtualSettings) -> VirtualDriver:
    return VirtualDriver(binary_size=settings.binary_size, array_length=settings.array_length)


def create_app(
    settings: DeviceVirtualSettings | None = None,
    *,
    bus: MessageBus | None = None,
    metadata: MetadataClient | None = None,
) -> FastAPI:
    settings = settings or DeviceVirtualSettings()
    return create_device_service_app(
        settings, _driver(settings), version=__version__, bus=bus, metadata=metadata, default_res_dir=RES_DIR
    )


def run() -> None:
    settings = DeviceVirtualSettings()
    run_device_service(settings, _driver(settings), version=__version__, default_res_dir=RES_DIR)
