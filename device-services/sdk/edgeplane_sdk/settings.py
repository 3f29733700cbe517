"""Settings every device service shares; a service subclasses with its own prefix, name and port."""

from __future__ import annotations

from pydantic import BaseModel, Field

from edgeplane_common.settings import ServiceSettings


class DeviceSettings(BaseModel):
    down_after_failures: int = Field(
        3, description="Consecutive failed reads/writes after which a device is marked DOWN in core-metadata."
    )
    max_cmd_ops: int = Field(256, description="Most resources one command may read or write.")


class DeviceServiceSettings(ServiceSettings):
    metadata_url: str = Field("http://127.0.0.1:59881", description="core-metadata's base URL.")
    base_address: str | None = Field(
        None,
        description="URL other services use to reach this service (default http(s)://<host>:<port>: https with a TLS "
        "certificate).",
    )
    res_dir: str | None = Field(
        None, description="Folder with profiles/ and devices/ to provision at start (default: the built-in res/)."
    )
    provision: bool = Field(True, description="Provision the res/ profiles and devices into core-metadata at start.")
    device: DeviceSettings = Field(default_factory=DeviceSettings)
    command_queue_group: bool = Field(
        True, description="Share bus command requests among replicas of this service (NATS queue group)."
    )
