"""device-virtual settings: env vars `DEVICE_VIRTUAL_*`, falling back to `EDGEPLANE_*`."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from edgeplane_common.settings import HttpSettings
from edgeplane_sdk.settings import DeviceServiceSettings


class DeviceVirtualHttpSettings(HttpSettings):
    # A subclass default, not `HttpSettings(port=...)` in a factory: with a factory, setting one nested
    # variable (e.g. the host) would rebuild HttpSettings and lose the port.
    port: int = Field(59900, description="REST API port.")


class DeviceVirtualSettings(DeviceServiceSettings):
    env_prefix: ClassVar[str] = "DEVICE_VIRTUAL_"

    service_name: str = Field("device-virtual", description="Name the service registers and logs under.")
    http: DeviceVirtualHttpSettings = Field(default_factory=DeviceVirtualHttpSettings)
    binary_size: int = Field(64, ge=1, le=16 * 2**20, description="Bytes of a random Binary reading.")
    array_length: int = Field(5, ge=0, le=4096, description="Elements of a random array reading (EdgeX uses 5).")
