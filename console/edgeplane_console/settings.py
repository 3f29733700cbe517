"""console settings: env vars `CONSOLE_*`, falling back to `EDGEPLANE_*` (NATS URL, auth token)."""

from __future__ import annotations

import os
from typing import ClassVar

from pydantic import Field, SecretStr, model_validator

from edgeplane_common.clients.gateway import APP_SERVICE_PORTS, DEFAULT_PORTS
from edgeplane_common.settings import HttpSettings, ServiceSettings
from edgeplane_common.tls import own_scheme


class ConsoleHttpSettings(HttpSettings):
    port: int = Field(4000, description="Web console port (EdgeX UI's default).")


class ConsoleSettings(ServiceSettings):
    env_prefix: ClassVar[str] = "CONSOLE_"

    service_name: str = Field("console", description="Name the service logs under.")
    http: ConsoleHttpSettings = Field(default_factory=ConsoleHttpSettings)
    gateway_host: str = Field(
        "127.0.0.1",
        description="Host the services listen on (one machine; compose uses `service_urls`), optionally with a "
        "scheme (`https://127.0.0.1`); without one: https when the console itself has a TLS certificate, else http.",
    )
    service_urls: dict[str, str] = Field(
        default_factory=dict,
        description='Base URL per service, overriding host and port, e.g. {"core-data": "http://core-data:59880"} '
        "(JSON). Services not named use `gateway_host` and their port (EDGEPLANE_<NAME>_PORT, as the launcher "
        "sets it, else EdgeX's default).",
    )
    shown_services: list[str] | None = Field(
        None,
        description="The services whose health, version and port the overview shows (JSON list), e.g. without "
        "the ones a gateway does not run; default: every one the console knows (app services are found by probing).",
    )
    app_service_urls: list[str] | None = Field(
        None,
        description="Base URLs of the app service instances (JSON list); default: ports 59700-59709 of "
        "`gateway_host` (shifted like the other ports), probed every refresh.",
    )
    refresh_interval: float = Field(3.0, gt=0, description="Seconds between two polls of the services' state.")
    request_timeout: float = Field(5.0, gt=0, description="Seconds to wait for a service to answer.")
    chart_interval: float = Field(
        0.5, gt=0, description="Seconds between two updates of a live chart in the browser (new points coalesced)."
    )
    chart_points: int = Field(600, gt=10, description="Points a live chart keeps per resource.")
    history_limit: int = Field(2000, gt=0, description="Readings one history query asks core-data for at most.")
    session_secret: SecretStr | None = Field(
        None,
        description="Secure mode: key that signs the browser's session cookie (default: a random one per start, "
        "so a restart logs everyone out, as the logins are kept in memory anyway).",
    )

    @property
    def metadata_url(self) -> str:
        """core-metadata's base URL: where users log in and, in secure mode, where the token keys are
        published (`/api/v3/key`) unless `SECURITY__JWKS_URL` says otherwise."""
        return self.service_url_map()["core-metadata"]

    def _port(self, name: str) -> int:
        variable = f"EDGEPLANE_{name.upper().replace('-', '_')}_PORT"
        return int(os.environ.get(variable) or DEFAULT_PORTS[name])

    def service_url_map(self) -> dict[str, str]:
        """Base URL of every service the console talks to (the console itself excluded)."""
        base = self._gateway_base()
        urls = {name: f"{base}:{self._port(name)}" for name in DEFAULT_PORTS if name != "console"}
        urls.update(self.service_urls)
        return urls

    def shown_service_urls(self) -> dict[str, str]:
        """Base URL of each service the overview shows."""
        urls = self.service_url_map()
        return urls if self.shown_services is None else {name: urls[name] for name in self.shown_services}

    @model_validator(mode="after")
    def _known_shown_services(self) -> ConsoleSettings:
        known = self.service_url_map()
        unknown = [name for name in self.shown_services or () if name not in known]
        if unknown:
            raise ValueError(f"shown_services: unknown services {unknown} (known: {sorted(known)})")
        return self

    def app_service_url_list(self) -> list[str]:
        if self.app_service_urls is not None:
            return list(self.app_service_urls)
        # Under `edgeplane up --port-offset N` every port moves by N: core-metadata's tells by how much.
        offset = self._port("core-metadata") - DEFAULT_PORTS["core-metadata"]
        base = self._gateway_base()
        return [f"{base}:{port + offset}" for port in APP_SERVICE_PORTS]

    def _gateway_base(self) -> str:
        # One secure directory configures every service or none: a console with a certificate talks to
        # services that have theirs.
        if "://" in self.gateway_host:
            return self.gateway_host.rstrip("/")
        return f"{own_scheme(self.tls)}://{self.gateway_host}"
