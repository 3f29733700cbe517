"""App-service settings. One runtime, several instances: `python -m app_services --instance app-http-export`
reads `APP_HTTP_EXPORT_*` variables (then the shared `EDGEPLANE_*` ones) and, unless `PIPELINE_FILE` says
otherwise, the pipeline `res/<instance>.yaml` shipped in this package."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from edgeplane_common.settings import HttpSettings, ServiceSettings

RES = Path(__file__).resolve().parent / "res"

INSTANCES: dict[str, int] = {
    "app-influx-export": 59702,
    "app-mqtt-export": 59703,
    "app-http-export": 59704,
}
"""The instances shipped (res/<name>.yaml) and their ports (EdgeX's where it has the same instance)."""
DEFAULT_PORT = 59700


def env_prefix(instance: str) -> str:
    """`app-http-export` -> `APP_HTTP_EXPORT_`."""
    return "".join(ch if ch.isalnum() else "_" for ch in instance).upper() + "_"


class AppHttpSettings(HttpSettings):
    port: int = Field(0, description="REST API port (0: the instance's default, 59700-59709).")


class AppServiceSettings(ServiceSettings):
    env_prefix: ClassVar[str] = "APP_SERVICE_"

    service_name: str = Field("app-service", description="Instance name: logs, durable consumer, buffer stream.")
    http: AppHttpSettings = Field(default_factory=AppHttpSettings)
    pipeline_file: str = Field(
        "", description="Pipeline YAML (EdgeX app-service-configurable shape); empty: res/<service_name>.yaml."
    )
    consumers: int = Field(1, ge=1, le=8, description="Pull consumers of the events stream.")
    fetch_batch: int = Field(256, ge=1, le=1000, description="Most events one pull fetches (and buffers) at once.")
    report_interval: float = Field(
        60.0, gt=0, description="A failing export is logged at once, then at most once per this many seconds."
    )

    def pipeline_path(self) -> Path:
        return Path(self.pipeline_file) if self.pipeline_file else RES / f"{self.service_name}.yaml"


class InfluxExportSettings(AppServiceSettings):
    """app-influx-export (res/app-influx-export.yaml)."""

    env_prefix: ClassVar[str] = "APP_INFLUX_EXPORT_"

    class Http(AppHttpSettings):
        port: int = Field(59702, description="REST API port.")

    service_name: str = Field("app-influx-export", description="Instance name: logs, durable consumer, buffer.")
    http: AppHttpSettings = Field(default_factory=Http)


class MqttExportSettings(AppServiceSettings):
    """app-mqtt-export (res/app-mqtt-export.yaml)."""

    env_prefix: ClassVar[str] = "APP_MQTT_EXPORT_"

    class Http(AppHttpSettings):
        port: int = Field(59703, description="REST API port.")

    service_name: str = Field("app-mqtt-export", description="Instance name: logs, durable consumer, buffer.")
    http: AppHttpSettings = Field(default_factory=Http)


class HttpExportSettings(AppServiceSettings):
    """app-http-export (res/app-http-export.yaml)."""

    env_prefix: ClassVar[str] = "APP_HTTP_EXPORT_"

    class Http(AppHttpSettings):
        port: int = Field(59704, description="REST API port.")

    service_name: str = Field("app-http-export", description="Instance name: logs, durable consumer, buffer.")
    http: AppHttpSettings = Field(default_factory=Http)


SHIPPED: dict[str, type[AppServiceSettings]] = {
    "app-influx-export": InfluxExportSettings,
    "app-mqtt-export": MqttExportSettings,
    "app-http-export": HttpExportSettings,
}


def load_settings(instance: str | None = None) -> AppServiceSettings:
    """The settings of `instance` from its own variables (`APP_<INSTANCE>_...`), its port defaulted; any
    instance name works (with its own pipeline file), the shipped ones have their own classes."""
    name = instance or "app-service"
    cls = SHIPPED.get(name)
    if cls is None:
        cls = type(
            f"{env_prefix(name).title().replace('_', '')}Settings",
            (AppServiceSettings,),
            {"env_prefix": env_prefix(name)},
        )
    settings = cls()
    if instance and settings.service_name == "app-service":
        settings.service_name = instance
    if settings.http.port == 0:
        settings.http.port = INSTANCES.get(settings.service_name, DEFAULT_PORT)
    return settings


__all__ = [
    "INSTANCES",
    "RES",
    "SHIPPED",
    "AppServiceSettings",
    "HttpExportSettings",
    "InfluxExportSettings",
    "MqttExportSettings",
    "env_prefix",
    "load_settings",
]
