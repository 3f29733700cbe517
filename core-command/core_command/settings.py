"""core-command settings: env vars `CORE_COMMAND_*`, falling back to `EDGEPLANE_*`
(so `EDGEPLANE_METADATA_URL` points every service, this one included, at core-metadata)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, Field

from edgeplane_common.settings import HttpSettings, ServiceSettings
from edgeplane_common.tls import own_scheme


class CommandSettings(BaseModel):
    timeout: float = Field(
        5.0,
        gt=0,
        description="Seconds to wait for the owning device service to answer a command; then 503.",
    )


class CacheSettings(BaseModel):
    enabled: bool = Field(
        True,
        description="Keep devices and profiles in memory, updated by core-metadata's system events on the bus "
        "(false: ask core-metadata on every command).",
    )
    ttl: float = Field(
        60.0,
        ge=0,
        description="Seconds a cached device or profile is trusted without hearing of it; then it is fetched "
        "again. A safety net for system events lost while disconnected from NATS (0: no expiry).",
    )


class CoreCommandHttpSettings(HttpSettings):
    # A subclass default, not `HttpSettings(port=...)` in a factory: with a factory, setting one nested
    # variable (e.g. the host) would rebuild HttpSettings and lose the port.
    port: int = Field(59882, description="REST API port.")


class CoreCommandSettings(ServiceSettings):
    env_prefix: ClassVar[str] = "CORE_COMMAND_"

    service_name: str = Field("core-command", description="Name the service registers and logs under.")
    http: CoreCommandHttpSettings = Field(default_factory=CoreCommandHttpSettings)
    metadata_url: str = Field("http://127.0.0.1:59881", description="core-metadata's base URL.")
    metadata_timeout: float = Field(5.0, gt=0, description="Seconds to wait for core-metadata to answer.")
    base_address: str | None = Field(
        None,
        description="URL clients use to reach core-command; the `url` of every listed command "
        "(default http(s)://<host>:<port>, 127.0.0.1 when listening on all interfaces; https with a TLS certificate).",
    )
    command: CommandSettings = Field(default_factory=CommandSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)

    def service_url(self) -> str:
        if self.base_address:
            return self.base_address.rstrip("/")
        host = "127.0.0.1" if self.http.host in ("0.0.0.0", "::", "") else self.http.host
        return f"{own_scheme(self.tls)}://{host}:{self.http.port}"
