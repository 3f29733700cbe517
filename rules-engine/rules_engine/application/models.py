"""Rules as users write them (eKuiper's rule JSON: id, sql, actions, options), and their status."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from edgeplane_common.durations import parse_duration
from edgeplane_common.models.base import ContractModel

RULE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.~-]{0,127}\Z")


class CommandAction(ContractModel):
    """Write to a device through its device service, as core-command's PUT would."""

    device_name: str = Field(min_length=1)
    command_name: str = Field(min_length=1)
    values: dict[str, Any] = Field(min_length=1)
    """{resourceName: value or template}, e.g. {"PumpRun": "true"} or {"SpeedSetpoint": "{{.speed}}"}."""


class PublishAction(ContractModel):
    """An alert on a NATS subject (default: `edgex.rules-engine.alerts.<rule id>`)."""

    topic: str | None = None
    template: Any = None
    """The payload: a template string or object filled from each output row (default: the rule id, the
    time it fired and the output rows)."""


class RestAction(ContractModel):
    url: str = Field(min_length=1)
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    body_template: str | None = None
    retries: int = Field(3, ge=0, le=20)
    retry_interval: str = "500ms"
    timeout: str = "5s"

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v

    @field_validator("retry_interval", "timeout")
    @classmethod
    def _duration(cls, v: str) -> str:
        parse_duration(v)
        return v


class LogAction(ContractModel):
    level: Literal["debug", "info", "warning", "error"] = "info"


ACTION_KINDS = ("command", "publish", "rest", "log")


class RuleAction(ContractModel):
    """One action: an object with exactly one of the keys command, publish, rest, log."""

    command: CommandAction | None = None
    publish: PublishAction | None = None
    rest: RestAction | None = None
    log: LogAction | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_kind(cls, data: Any) -> Any:
        if isinstance(data, dict):
            kinds = [k for k in data if isinstance(k, str) and k.lower() in ACTION_KINDS]
            unknown = [k for k in data if not (isinstance(k, str) and k.lower() in ACTION_KINDS)]
            if unknown:
                raise ValueError(f"unknown action {unknown[0]!r}; actions are {', '.join(ACTION_KINDS)}")
            if len(kinds) != 1:
                raise ValueError(f"an action has exactly one of {', '.join(ACTION_KINDS)}")
            # `{"log": {}}` or `{"log": null}` both mean defaults.
            data = {k: (v if v is not None else {}) for k, v in data.items()}
        return data

    @property
    def kind(self) -> str:
        return next(k for k in ACTION_KINDS if getattr(self, k) is not None)


class RuleOptions(ContractModel):
    trigger_on: Literal["always", "transition"] = "always"
    """always: fire on every match; transition: only when the condition turns true (false → true)."""
    rearm: str | None = None
    """Hysteresis, with trigger_on transition: once fired, the rule fires again only after this condition
    has held (e.g. fire at `temperature > 30`, re-arm at `temperature < 28`), instead of as soon as the
    condition is false."""
    min_interval: str | None = None
    """Go duration: at least this long between two firings (per device, or per group of a windowed rule)."""
    is_event_time: bool = False
    """Windows on the events' origin instead of the arrival time (eKuiper's isEventTime)."""
    late_tolerance: int = Field(0, ge=0)
    """Event time: milliseconds an event may arrive late and still be counted (eKuiper's lateTolerance)."""

    @field_validator("trigger_on", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v

    @field_validator("min_interval")
    @classmethod
    def _duration(cls, v: str | None) -> str | None:
        if v is not None:
            parse_duration(v)
        return v

    def min_interval_ms(self) -> int:
        return int(parse_duration(self.min_interval) * 1000) if self.min_interval else 0


class RuleDefinition(ContractModel):
    id: str
    name: str | None = None
    sql: str
    actions: list[RuleAction] = Field(min_length=1)
    options: RuleOptions = Field(default_factory=RuleOptions)
    triggered: bool = True
    """Start the rule when it is created (eKuiper's triggered)."""

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not RULE_ID.match(v):
            raise ValueError("a rule id is 1 to 128 letters, digits and _ . ~ - (starting with a letter or digit)")
        return v


class RuleStatus(ContractModel):
    id: str
    status: Literal["running", "stopped"]
    records_in: int = 0
    """Events the rule evaluated (events that cannot match it, e.g. of another device, are not offered)."""
    matched: int = 0
    """Rows (or window groups) for which the condition held."""
    fired: int = 0
    """Times the actions were triggered."""
    suppressed: int = 0
    """Matches that did not fire: already fired for this transition, or within the minimum interval."""
    actions_fired: int = 0
    action_failures: int = 0
    late_events: int = 0
    last_error: str | None = None
    last_error_at: int | None = None
    last_fired: int | None = None
    """Nanoseconds since the epoch."""
    evaluation_latency_avg_us: float = 0.0
    evaluation_latency_max_us: float = 0.0
    action_latency_last_ms: float | None = None
    """From the event that triggered the last firing arriving to its actions completing."""
