"""core-metadata settings: env vars `CORE_METADATA_*`, falling back to `EDGEPLANE_*`."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, Field, SecretStr

from edgeplane_common.settings import HttpSettings, SecuritySettings, ServiceSettings


class ValidationSettings(BaseModel):
    timeout: float = Field(5.0, description="Seconds to wait for a device service to validate a device.")
    reject_when_unavailable: bool = Field(
        False,
        description="Answer 503 when the owning device service is not running, instead of storing the "
        "device unvalidated.",
    )


class CoreMetadataHttpSettings(HttpSettings):
    # A subclass default, not `HttpSettings(port=...)` in a factory: with a factory, setting one nested
    # variable (e.g. the host) would rebuild HttpSettings and lose the port.
    port: int = Field(59881, description="REST API port.")


class CoreMetadataSecuritySettings(SecuritySettings):
    signing_key_file: str | None = Field(
        None,
        description="Ed25519 private key (PEM) that signs tokens; created (mode 0600) when missing. Required in "
        "secure mode.",
    )
    token_ttl: float = Field(900.0, gt=0, description="Seconds a user's token stays valid after login.")
    admin_user: str = Field("admin", description="Name of the first admin, created when there is no user yet.")
    admin_password: SecretStr | None = Field(
        None, description="Password of the first admin; without it no user is created at start."
    )
    login_failure_delay: float = Field(1.0, ge=0, description="Seconds a failed login waits before answering 401.")
    login_max_failures: int = Field(
        5, ge=1, description="Failed logins per user or address within the window before further ones answer 429."
    )
    login_failure_window: float = Field(300.0, gt=0, description="Seconds failed logins are remembered.")


class CoreMetadataSettings(ServiceSettings):
    env_prefix: ClassVar[str] = "CORE_METADATA_"

    service_name: str = Field("core-metadata", description="Name the service registers and logs under.")
    http: CoreMetadataHttpSettings = Field(default_factory=CoreMetadataHttpSettings)
    max_result_count: int = Field(1024, description="Most items one GET returns (limit=-1 means this many).")
    strict_profile_changes: bool = Field(
        False, description="Refuse (423) changes to, or deletion of, profiles that devices use."
    )
    max_upload_size: int = Field(
        2 * 1024 * 1024, description="Largest device-profile file accepted by uploadfile, in bytes."
    )
    max_profile_nodes: int = Field(
        250_000,
        description="Most YAML nodes a profile file may expand to (every use of an alias or merge key counts).",
    )
    max_profile_resources: int = Field(
        5_000, description="Most deviceResources, and most deviceCommands, in one device profile."
    )
    uom_file: str | None = Field(None, description="Units-of-measure YAML served by /api/v3/uom (built-in default).")
    validation: ValidationSettings = Field(default_factory=ValidationSettings)
    security: CoreMetadataSecuritySettings = Field(default_factory=CoreMetadataSecuritySettings)
