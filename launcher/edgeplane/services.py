"""The one list of edgeplane services.

Everything that needs to know which services exist reads `SERVICES`: the launcher (`edgeplane up`),
the configuration reference generator (`scripts/gen_config_docs.py`) and, later, the docker-compose
check. Adding a service is one `Service(...)` entry here.
"""

from __future__ import annotations

from dataclasses import dataclass

PING_PATH = "/api/v3/ping"
"""Every service answers GET on this path with 200 once it is ready."""


@dataclass(frozen=True)
class Infra:
    """A server the services share (NATS, Redis) and the variable that points services at it."""

    name: str
    label: str
    default_port: int
    url_env: str
    """Shared variable every service reads for this server's URL (its own prefix overrides it)."""


@dataclass(frozen=True)
class Service:
    name: str
    """Service name as EdgeX spells it; also the log file name and the compose service name."""
    module: str
    """Import package run as `python -m <module>`."""
    project: str
    """Workspace folder holding the service's pyproject.toml (the compose build context)."""
    port: int
    """Default REST port (EdgeX's default for the service)."""
    settings: str | None
    """Import path `package.module.Class` of the service's settings class (for docs/configuration.md)."""
    description: str
    needs_nats: bool = True
    needs_redis: bool = True
    args: tuple[str, ...] = ()
    """Extra arguments after `python -m <module>`; `{port}` is replaced by the service's port."""
    health: str = "http"
    """`http`: ready when GET <url>/api/v3/ping answers 200; `tcp`: ready when the port accepts connections."""

    @property
    def env_prefix(self) -> str:
        """Prefix of the service's own environment variables, its name in upper case: `CORE_METADATA_`
        (`CORE_METADATA_HTTP__PORT`)."""
        return f"{self.name.upper().replace('-', '_')}_"

    @property
    def shared_port_env(self) -> str:
        """`EDGEPLANE_<NAME>_PORT`, given to every service so one can find another (e.g. a demo device
        file naming the simulator's port as `${EDGEPLANE_MODBUS_SIM_PORT:-5020}`)."""
        return f"{SHARED_ENV_PREFIX}{self.env_prefix}PORT"

    @property
    def port_env(self) -> str:
        return f"{self.env_prefix}HTTP__PORT"

    def http_port(self, offset: int = 0) -> int:
        return self.port + offset

    def url(self, offset: int = 0, host: str = "127.0.0.1", scheme: str = "http") -> str:
        """`scheme` https: the service has a TLS certificate (secure mode)."""
        return f"{scheme}://{host}:{self.http_port(offset)}"

    def ping_url(self, offset: int = 0, host: str = "127.0.0.1", scheme: str = "http") -> str:
        if self.health == "tcp":
            return f"tcp://{host}:{self.http_port(offset)}"
        return self.url(offset, host, scheme) + PING_PATH


NATS = Infra(name="nats", label="NATS", default_port=4222, url_env="EDGEPLANE_NATS__URL")
REDIS = Infra(name="redis", label="Redis", default_port=6379, url_env="EDGEPLANE_REDIS__URL")
INFRA: tuple[Infra, ...] = (NATS, REDIS)

SHARED_ENV_PREFIX = "EDGEPLANE_"
LOG_JSON_ENV = "EDGEPLANE_LOG_JSON"
PORT_OFFSET_ENV = "EDGEPLANE_PORT_OFFSET"


def _app_export(name: str, port: int, settings_class: str, description: str) -> Service:
    """One instance of the app-services package (`python -m app_services --instance <name>`)."""
    return Service(
        name=name,
        module="app_services",
        project="app-services",
        port=port,
        settings=f"app_services.settings.{settings_class}",
        description=description,
        needs_redis=False,
        args=("--instance", name),
    )


# Start order: a service comes after the ones it talks to at start.
SERVICES: tuple[Service, ...] = (
    Service(
        name="core-metadata",
        module="core_metadata",
        project="core-metadata",
        port=59881,
        settings="core_metadata.settings.CoreMetadataSettings",
        description="Device profiles, devices, device services and provision watchers.",
    ),
    Service(
        name="core-data",
        module="core_data",
        project="core-data",
        port=59880,
        settings="core_data.settings.CoreDataSettings",
        description="Events and readings: persisted in Redis from the events stream, queryable, with retention.",
    ),
    Service(
        name="modbus-sim",
        module="device_modbus.sim",
        project="device-services/modbus",
        port=5020,
        settings=None,
        description="Modbus PLC simulator serving the demo PLC (Modbus TCP, unit ids 1 and 2).",
        needs_nats=False,
        needs_redis=False,
        args=("--port", "{port}"),
        health="tcp",
    ),
    Service(
        name="device-modbus",
        module="device_modbus",
        project="device-services/modbus",
        port=59901,
        settings="device_modbus.settings.DeviceModbusSettings",
        description="Modbus TCP/RTU device service; provisions the demo PLC at start.",
        needs_redis=False,
    ),
    Service(
        name="opcua-sim",
        module="device_opcua.sim",
        project="device-services/opcua",
        port=4840,
        settings=None,
        description="OPC UA server simulator serving the demo line (opc.tcp, path /edgeplane/sim).",
        needs_nats=False,
        needs_redis=False,
        args=("--port", "{port}"),
        health="tcp",
    ),
    Service(
        name="device-opcua",
        module="device_opcua",
        project="device-services/opcua",
        port=59997,
        settings="device_opcua.settings.DeviceOpcuaSettings",
        description="OPC UA device service (reads, writes, methods, subscriptions); provisions the demo line.",
        needs_redis=False,
    ),
    Service(
        name="device-virtual",
        module="device_virtual",
        project="device-services/virtual",
        port=59900,
        settings="device_virtual.settings.DeviceVirtualSettings",
        description="Simulated devices (random or written values, as EdgeX device-virtual); provisions res/ devices.",
        needs_redis=False,
    ),
    Service(
        name="core-command",
        module="core_command",
        project="core-command",
        port=59882,
        settings="core_command.settings.CoreCommandSettings",
        description="REST read/write commands relayed over NATS to the owning device service.",
        needs_redis=False,
    ),
    Service(
        name="rules-engine",
        module="rules_engine",
        project="rules-engine",
        port=59720,
        settings="rules_engine.settings.RulesEngineSettings",
        description="Streaming SQL rules with windows over the events; actions drive devices, publish alerts, "
        "call webhooks. Runs the demo rules on the demo PLC.",
    ),
    _app_export(
        "app-influx-export",
        59702,
        "InfluxExportSettings",
        "Exports every reading to InfluxDB (INFLUXDB_V2_URL/ORG/TOKEN/BUCKET; disabled when unset).",
    ),
    _app_export(
        "app-mqtt-export",
        59703,
        "MqttExportSettings",
        "Exports events as JSON to an MQTT broker (APP_MQTT_EXPORT_BROKER; disabled when unset).",
    ),
    _app_export(
        "app-http-export",
        59704,
        "HttpExportSettings",
        "Exports batches of events as JSON over HTTP (APP_HTTP_EXPORT_URL; disabled when unset).",
    ),
    Service(
        name="console",
        module="edgeplane_console",
        project="console",
        port=4000,
        settings="edgeplane_console.settings.ConsoleSettings",
        description="Web console (EdgeX UI's port): live values and charts, commands, profiles, rules, exports; "
        "talks to the services' REST APIs and NATS only.",
        needs_redis=False,
    ),
)

METADATA_URL_ENV = "EDGEPLANE_METADATA_URL"
"""core-metadata's URL, for every service that reads metadata (device services, core-command, rules-engine)."""


class UnknownServiceError(KeyError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        known = ", ".join(s.name for s in SERVICES)
        return f"unknown service {self.name!r}; known services: {known}"


def by_name(name: str) -> Service:
    for service in SERVICES:
        if service.name == name:
            return service
    raise UnknownServiceError(name)


def select(names: list[str] | None) -> list[Service]:
    """The services named (in start order, each once), or all of them when `names` is empty."""
    if not names:
        return list(SERVICES)
    wanted = {by_name(n).name for n in names}
    return [s for s in SERVICES if s.name in wanted]
