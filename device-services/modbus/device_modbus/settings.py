"""device-modbus settings: env vars `DEVICE_MODBUS_*`, falling back to `EDGEPLANE_*`."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from edgeplane_common.settings import HttpSettings
from edgeplane_sdk.settings import DeviceServiceSettings


class DeviceModbusHttpSettings(HttpSettings):
    # A subclass default, not `HttpSettings(port=...)` in a factory: with a factory, setting one nested
    # variable (e.g. the host) would rebuild HttpSettings and lose the port.
    port: int = Field(59901, description="REST API port.")


class DeviceModbusSettings(DeviceServiceSettings):
    env_prefix: ClassVar[str] = "DEVICE_MODBUS_"

    service_name: str = Field("device-modbus", description="Name the service registers and logs under.")
    http: DeviceModbusHttpSettings = Field(default_factory=DeviceModbusHttpSettings)
    max_gap: int = Field(
        16, description="Unused registers a coalesced read may span between two resources before splitting it."
    )
