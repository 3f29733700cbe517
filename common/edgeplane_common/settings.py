"""Env-first service settings (pydantic-settings).

Every service reads `<SERVICE>_...` variables (e.g. `CORE_METADATA_HTTP__PORT=59881`) and falls back to the
shared `EDGEPLANE_...` ones (e.g. `EDGEPLANE_NATS__URL`), so one variable can point the whole stack at
NATS or Redis. Nested keys use `__`. Secrets are `SecretStr` and redacted in `/api/v3/config`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

SHARED_PREFIX = "EDGEPLANE_"
ENV_FILE_VAR = "EDGEPLANE_ENV_FILE"
"""A dotenv file of further settings (`edgeplane secure init` writes one per service: its credentials and the
paths of its keys). The service's own variables, then the shared ones, each from the environment first."""


class HttpSettings(BaseModel):
    host: str = Field("0.0.0.0", description="Interface the REST API listens on.")
    port: int = Field(0, description="REST API port (each service has its EdgeX default).")
    max_request_size: int = Field(
        4 * 1024 * 1024, description="Largest request body accepted, in bytes; larger answers 413."
    )
    auth_token: SecretStr | None = Field(
        None, description="When set, every route but /api/v3/ping needs `Authorization: Bearer <token>`."
    )


class SecuritySettings(BaseModel):
    enabled: bool = Field(
        False,
        description="Secure mode: every route but ping, health, the token keys and login needs a signed token "
        "(`Authorization: Bearer <JWT>`) whose role allows the request. Replaces `HTTP__AUTH_TOKEN`.",
    )
    jwks_url: str | None = Field(
        None,
        description="Where the token-verification keys are published (default: `<metadata_url>/api/v3/key`).",
    )
    service_token: SecretStr | None = Field(
        None,
        description="This service's own token for its calls to other services (`edgeplane token service NAME`).",
    )
    secret_key_file: str | None = Field(
        None,
        description="This service's own 32-byte secret-store key (`edgeplane secure init` writes one per service): "
        "secrets (`POST /api/v3/secret`) are then kept encrypted in Redis under `secrets:<service-name>:`; "
        "unset, they stay in process memory only and are lost at restart.",
    )


class TlsSettings(BaseModel):
    ca_file: str | None = Field(
        None,
        description="CA certificate(s) (PEM) this service trusts for its connections to the other services, NATS "
        "and Redis (`edgeplane certs init` creates one); unset: the system's trust store.",
    )
    cert_file: str | None = Field(
        None, description="This service's certificate (PEM); when set with `key_file`, the REST API is HTTPS only."
    )
    key_file: str | None = Field(None, description="Private key (PEM) of `cert_file`.")


class NatsSettings(BaseModel):
    url: str = Field("nats://127.0.0.1:4222", description="NATS server URL(s), comma separated.")
    user: str | None = Field(None, description="NATS user name.")
    password: SecretStr | None = Field(None, description="NATS password.")
    token: SecretStr | None = Field(None, description="NATS auth token.")
    connect_timeout: float = Field(5.0, description="Seconds to wait for each connection attempt.")
    request_timeout: float = Field(5.0, description="Seconds to wait for a reply to a bus request.")
    max_deliver: int = Field(
        5,
        ge=1,
        description="Deliveries after which an event whose handling keeps failing (not for a transient reason "
        "such as the store being down) is dead-lettered instead of redelivered.",
    )
    events_max_age: float = Field(
        24 * 3600.0,
        gt=0,
        description="Seconds the events stream (EDGEX_EVENTS) keeps an event; older ones are dropped.",
    )
    events_max_bytes: int = Field(
        1024**3, gt=0, description="Bytes the events stream keeps at most; the oldest events are dropped first."
    )
    deadletter_max_age: float = Field(
        7 * 24 * 3600.0, gt=0, description="Seconds the dead-letter stream (EDGEX_DEADLETTER) keeps a message."
    )
    deadletter_max_bytes: int = Field(
        64 * 1024**2, gt=0, description="Bytes the dead-letter stream keeps at most (oldest dropped first)."
    )


class RedisSettings(BaseModel):
    url: SecretStr = Field(
        SecretStr("redis://127.0.0.1:6379/0"),
        description="Redis URL (may carry a password, hence secret); `rediss://` for TLS (verified against "
        "`tls.ca_file`).",
    )
    username: str | None = Field(
        None, description="Redis ACL user (secure mode: the service's own); overrides one in the URL."
    )
    password: SecretStr | None = Field(None, description="Password of `username`; overrides one in the URL.")
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
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    tls: TlsSettings = Field(default_factory=TlsSettings)

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
        env_file = os.environ.get(ENV_FILE_VAR)
        if not env_file:
            return (init_settings, own, shared, file_secret_settings)
        if not Path(env_file).is_file():
            # A typo here would silently start a service without its credentials.
            raise ValueError(f"{ENV_FILE_VAR}={env_file}: no such file")

        def from_file(prefix: str) -> DotEnvSettingsSource:
            return DotEnvSettingsSource(settings_cls, env_file=env_file, env_prefix=prefix, env_nested_delimiter="__")

        # The more specific name wins first, then the environment over the file: the service's own
        # `CORE_DATA_REDIS__URL` in its file beats a stack-wide `EDGEPLANE_REDIS__URL` in the environment.
        return (init_settings, own, from_file(cls.env_prefix), shared, from_file(SHARED_PREFIX), file_secret_settings)

    def client_token(self) -> str | None:
        """The bearer token this service sends to the others: its service token in secure mode, else the
        shared `HTTP__AUTH_TOKEN` if any."""
        chosen = self.security.service_token if self.security.enabled else self.http.auth_token
        return chosen.get_secret_value() if chosen is not None else None

    def redacted(self) -> dict[str, Any]:
        """The settings as JSON with every secret replaced by '**********', and the password (or token) in
        any URL-valued setting too (`nats://user:pass@host` shows as `nats://user:**********@host`)."""
        data: dict[str, Any] = _redact_urls(self.model_dump(mode="json"))
        return data


REDACTED = "**********"


def redact_url(value: str) -> str:
    """`value` with the secret part of each URL's userinfo replaced (comma-separated URLs each)."""
    if "@" not in value or "://" not in value:
        return value
    return ",".join(_redact_one(part) for part in value.split(","))


def _redact_one(url: str) -> str:
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return REDACTED
    if "@" not in parts.netloc:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user, sep, _secret = userinfo.partition(":")
    # `nats://token@host`: a lone userinfo is a token, secret as a password is.
    safe = f"{user}:{REDACTED}" if sep else REDACTED
    return urlunsplit(parts._replace(netloc=f"{safe}@{host}"))


def _redact_urls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _redact_urls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_urls(v) for v in value]
    if isinstance(value, str):
        return redact_url(value)
    return value
