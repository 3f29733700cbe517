"""device-modbus composition root."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from device_modbus import __version__
from device_modbus.driver import ModbusDriver
from device_modbus.settings import DeviceModbusSettings
from edgeplane_common.bus import MessageBus
from edgeplane_common.clients import MetadataClient
from edgeplane_sdk.app import create_device_service_app, run_device_service

RES_DIR = Path(__file__).parent / "res"


def create_app(
    settings: DeviceModbusSettings | None = None,
    *,
    bus: MessageBus | None = None,
    metadata: MetadataClient | None = None,
) -> FastAPI:
    settings = settings or DeviceModbusSettings()
    return create_device_service_app(
        settings,
        ModbusDriver(max_gap=settings.max_gap),
        version=__version__,
        bus=bus,
        metadata=metadata,
        default_res_dir=RES_DIR,
    )


def run() -> None:
    settings = DeviceModbusSettings()
    run_device_service(settings, ModbusDriver(max_gap=settings.max_gap), version=__version__, default_res_dir=RES_DIR)
