"""rules-engine settings: env vars `RULES_ENGINE_*`, falling back to `EDGEPLANE_*` (e.g. `EDGEPLANE_METADATA_URL`)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from edgeplane_common.settings import HttpSettings, ServiceSettings

RES_DIR = Path(__file__).parent / "res"


class RulesEngineHttpSettings(HttpSettings):
    # A subclass default, not `HttpSettings(port=...)` in a factory (setting the host would lose the port).
    port: int = Field(59720, description="REST API port.")


class RulesEngineSettings(ServiceSettings):
    env_prefix: ClassVar[str] = "RULES_ENGINE_"

    service_name: str = Field("rules-engine", description="Name the service registers and logs under.")
    http: RulesEngineHttpSettings = Field(default_factory=RulesEngineHttpSettings)
    metadata_url: str = Field(
        "http://127.0.0.1:59881",
        description="core-metadata's base URL: command actions are checked against it when a rule starts "
        "(rules keep acting while it is down).",
    )
    metadata_timeout: float = Field(5.0, gt=0, description="Seconds to wait for core-metadata to answer.")
    command_timeout: float = Field(
        5.0, gt=0, description="Seconds a command action waits for the device service to answer."
    )
    rules_dir: Path | None = Field(
        None,
        description="Folder of rule YAML files loaded at start (rules not stored yet are created); default: "
        "the demo rules shipped with the service. An empty string loads none.",
    )
    window_tick: float = Field(
        0.05, gt=0, description="Seconds between checks for processing-time windows that are due."
    )

    def rule_folder(self) -> Path | None:
        if self.rules_dir is None:
            return RES_DIR / "rules"
        return self.rules_dir if str(self.rules_dir) not in ("", ".") else None
