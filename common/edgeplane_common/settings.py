"""Env-first service settings (pydantic-settings).

Every service reads `<SERVICE>_...` variables (e.g. `CORE_METADATA_HTTP__PORT=59881`) and falls back to the
shared `EDGEPLANE_...` ones (e.g. `EDGEPLANE_NATS__URL`), so one variable can point the whole stack at
NATS or Redis. Nested keys use `__`. Secrets are `SecretStr` and redacted in `/api/v3/config`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

SHARED_PREFIX = "EDGEPLANE_"


class HttpSettings(BaseModel):
    host: str = Field("0.0.0.0", description="Interface the REST API listens on.")
    port: int = Field(0, description="REST API port (each service has its EdgeX default).")
    max_request_size: int = Field(
        4 * 1024 * 1024, description="Largest request body accepted, in bytes; larger answers 413."
    )
    auth_token: SecretStr | None = Field(
        None, description="When set, every route but /api/v3/ping needs `Authorization: Bearer <token>`."
    )


class NatsSettings(BaseModel):
    url: str = Field("nats://127.0.0.1:4222", description="NATS server URL(s), comma separated.")
    user: str | None = Field(None, description="NATS user name.")
    password: SecretStr | None = Field(None, description="NATS password.")
    token: SecretStr | None = Field(None, description="NATS auth token.")
    connect_timeout: float = Field(5.0, description="Seconds to wait for each connection attempt.")
    request_timeout: float = Field(5.0, description="Seconds to wait for a reply to a bus request.")


class RedisSettings(BaseModel):
    url: SecretStr = Field(
        SecretStr("redis://127.0.0.1:6379/0"),
        description="Redis URL (may carry a password, hence secret).",
    )
    max_connections: int = Field(32, description="Connection pool size.")


class ServiceSettings(BaseSettings):
    """Base for every service's settings; subclasses set `service_name`, env prefix and port."""

    env_prefix: ClassVar[str] = ""

    model_config = SettingsConfigDict(env_nested_delimiter="__", extra="ignore", case_sensitive=False)

    service_name: str = Field("edgeplane", description="Name the service registers and logs under.")
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR.")
    log_json: bool = Field(True, description="Log JSON lines (false: plain text for a terminal).")
    http: HttpSettings = Field(default_factory=HttpSettings)
    nats: NatsSettings = Field(default_factory=NatsSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Service-specific variables win over the shared EDGEPLANE_ ones.
        own = EnvSettingsSource(settings_cls, env_prefix=cls.env_prefix, env_nested_delimiter="__")
        shared = EnvSettingsSource(settings_cls, env_prefix=SHARED_PREFIX, env_nested_delimiter="__")
        return (init_settings, own, shared, file_secret_settings)

    def redacted(self) -> dict[str, Any]:
        """The settings as JSON with every secret replaced by '**********'."""
        return self.model_dump(mode="json")
