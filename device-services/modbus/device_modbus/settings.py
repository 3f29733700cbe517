"""device-modbus settings: env vars `DEVICE_MODBUS_*`, falling back to `EDGEPLANE_*`."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from edgeplane_common.settings import HttpSettings
from edgeplane_sdk.settings import DeviceServiceSettings


class DeviceModbusSettings(DeviceServiceSettings):
    env_prefix: ClassVar[str] = "DEVICE_MODBUS_"

    service_name: str = Field("device-modbus", description="Name the service registers and logs under.")
    http: HttpSettings = Field(default_factory=lambda: HttpSettings(port=59901))
    max_gap: int = Field(
        16, description="Unused registers a coalesced read may span between two resources before splitting it."
    )
