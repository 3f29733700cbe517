"""device-opcua settings: env vars `DEVICE_OPCUA_*`, falling back to `EDGEPLANE_*`."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from edgeplane_common.settings import HttpSettings
from edgeplane_sdk.settings import DeviceServiceSettings


class DeviceOpcuaHttpSettings(HttpSettings):
    # A subclass default (not a factory), so setting one nested variable keeps the port.
    port: int = Field(59997, description="REST API port.")


class DeviceOpcuaSettings(DeviceServiceSettings):
    env_prefix: ClassVar[str] = "DEVICE_OPCUA_"

    service_name: str = Field("device-opcua", description="Name the service registers and logs under.")
    http: DeviceOpcuaHttpSettings = Field(default_factory=DeviceOpcuaHttpSettings)
    keepalive: float = Field(
        1.0, description="Seconds between keep-alive probes of each OPC UA session; a dead one is found in about two."
    )
    max_backoff: float = Field(10.0, description="Longest wait in seconds between two reconnect attempts.")
    subscriptions: bool = Field(
        True, description="Serve autoEvents of nodeId resources with OPC UA subscriptions instead of polling."
    )
    discovery_endpoints: list[str] = Field(
        default_factory=list,
        description="opc.tcp:// endpoints that POST /api/v3/discovery browses; provision watchers match them.",
    )
