"""An instance's pipeline file: EdgeX app-service-configurable's configuration shape, so an EdgeX pipeline
carries over as it is:

    Trigger:
      Type: edgex-messagebus          # or http (POST /api/v3/trigger only)
      SubscribeTopics: events/device/#   # EdgeX topics (`#`, `+`), comma separated
    Writable:
      Pipeline:
        ExecutionOrder: "FilterByDeviceName, Transform, HTTPExport"
        Functions:
          FilterByDeviceName:
            Parameters: {DeviceNames: "pump-1", FilterOut: "false"}
      StoreAndForward: {Enabled: true, MaxBytes: 64MiB, MaxAge: 24h, Policy: drop-oldest}

Keys are matched in any casing. The same function may run twice under `Name#suffix` keys (`Deadband#flow`).
Every problem is a `PipelineFileError` naming the file, the line and the reason; an unknown function name
lists the known ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from app_services.application.errors import PipelineError
from edgeplane_common.bus import Topics, escape
from edgeplane_common.durations import parse_duration
from edgeplane_common.errors import EdgeError
from edgeplane_common.safe_yaml import load_yaml

DEFAULT_TOPIC = "events/device/#"
POLICIES = ("drop-oldest", "drop-newest")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "ki": 1024, "kib": 1024, "m": 10**6, "mb": 10**6, "mi": 2**20}
_UNITS |= {"mib": 2**20, "g": 10**9, "gb": 10**9, "gi": 2**30, "gib": 2**30}


class PipelineFileError(Exception):
    """A pipeline file that cannot run: `file:line: reason`."""


@dataclass
class FunctionSpec:
    key: str
    """As written in ExecutionOrder (`Deadband#flow`)."""
    name: str
    """The function (`Deadband`)."""
    params: dict[str, Any]
    path: tuple[str | int, ...]


@dataclass
class TriggerSpec:
    type: str = "edgex-messagebus"
    subjects: list[str] = field(default_factory=lambda: [Topics.EVENTS_ALL])


@dataclass
class StoreAndForward:
    enabled: bool = True
    max_bytes: int = 64 * 2**20
    max_age: float = 24 * 3600.0
    policy: str = "drop-oldest"
    retry_initial: float = 1.0
    retry_max: float = 30.0


@dataclass
class PipelineConfig:
    file: str
    trigger: TriggerSpec
    functions: list[FunctionSpec]
    store_and_forward: StoreAndForward
    lines: dict[tuple[str | int, ...], int] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    def where(self, path: tuple[str | int, ...]) -> str:
        """`file:line` of `path`, or of the deepest key above it that is in the file."""
        probe = tuple(str(p).lower() if isinstance(p, str) else p for p in path)
        while probe and probe not in self.lines:
            probe = probe[:-1]
        line = self.lines.get(probe)
        return f"{self.file}:{line}" if line else self.file

    def error(self, err: PipelineError) -> PipelineFileError:
        return PipelineFileError(f"{self.where(err.path)}: {err.message}")


def edgex_topic_to_subject(topic: str) -> str:
    """An EdgeX topic (relative to the `edgex` base, `/` separated, `#` and `+` wildcards) as a NATS subject
    within the events stream."""
    parts = [p for p in topic.strip().strip("/").split("/") if p]
    if parts and parts[0] == Topics.BASE:
        parts = parts[1:]
    if not parts:
        raise PipelineError(f"empty subscribe topic {topic!r}")
    tokens = [">" if p == "#" else "*" if p == "+" else escape(p) for p in parts]
    if ">" in tokens[:-1]:
        raise PipelineError(f"subscribe topic {topic!r}: '#' may only come last")
    subject = ".".join([Topics.BASE, *tokens])
    if subject in ("edgex.>", "edgex.events.>"):
        return Topics.EVENTS_ALL  # all the stream holds
    if not (subject.startswith("edgex.events.device.") or subject.startswith("edgex.events.*.")):
        raise PipelineError(f"subscribe topic {topic!r} is outside the events stream (events/device/...)")
    return subject.replace("edgex.events.*.", "edgex.events.device.", 1)


def _lines(node: yaml.Node, path: tuple[str | int, ...], out: dict[tuple[str | int, ...], int]) -> None:
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = str(key.value).lower()
            sub = (*path, name)
            out[sub] = key.start_mark.line + 1
            _lines(value, sub, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            _lines(value, (*path, i), out)


def _fold(data: Any, path: tuple[str | int, ...]) -> dict[str, tuple[str, Any]]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PipelineError(f"expected a mapping, got {type(data).__name__}", path)
    return {str(k).lower(): (str(k), v) for k, v in data.items()}


def _get(data: dict[str, tuple[str, Any]], key: str) -> Any:
    found = data.get(key.lower())
    return None if found is None else found[1]


def parse_size(value: Any, path: tuple[str | int, ...]) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = _SIZE.match(str(value))
    if m is None:
        raise PipelineError(f"{value!r} is not a size (e.g. 64MiB, 500MB, 1048576)", path)
    return int(float(m.group(1)) * _UNITS[(m.group(2) or "").lower()])


def _duration(value: Any, path: tuple[str | int, ...]) -> float:
    try:
        return parse_duration(str(value))
    except ValueError as err:
        raise PipelineError(str(err), path) from None


def _flag(value: Any, path: tuple[str | int, ...]) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "t"):
        return True
    if text in ("false", "0", "f"):
        return False
    raise PipelineError(f"must be true or false, got {value!r}", path)


def _store_and_forward(raw: Any, path: tuple[str | int, ...]) -> StoreAndForward:
    data = _fold(raw, path)
    saf = StoreAndForward()
    known = {"enabled", "maxbytes", "maxage", "policy", "retryinterval", "maxretryinterval"}
    for key, (name, value) in data.items():
        where = (*path, name)
        if key not in known:
            raise PipelineError(f"unknown StoreAndForward setting {name!r}; known: {', '.join(sorted(known))}", where)
        if key == "enabled":
            saf.enabled = _flag(value, where)
        elif key == "maxbytes":
            saf.max_bytes = parse_size(value, where)
        elif key == "maxage":
            saf.max_age = _duration(value, where)
        elif key == "policy":
            policy = str(value).strip().lower()
            if policy not in POLICIES:
                raise PipelineError(f"Policy must be one of {', '.join(POLICIES)}, got {value!r}", where)
            saf.policy = policy
        elif key == "retryinterval":
            saf.retry_initial = _duration(value, where)
        else:
            saf.retry_max = _duration(value, where)
    if saf.max_bytes <= 0 or saf.max_age <= 0:
        raise PipelineError("MaxBytes and MaxAge must be above 0 (the buffer is always bounded)", path)
    if saf.retry_initial <= 0 or saf.retry_max < saf.retry_initial:
        raise PipelineError("RetryInterval must be above 0 and at most MaxRetryInterval", path)
    return saf


def parse_config(text: str | bytes, file: str) -> PipelineConfig:
    """The pipeline file's content, checked for shape (the functions themselves are checked when built)."""
    try:
        raw = load_yaml(text, what=file)
    except EdgeError as err:
        raise PipelineFileError(f"{file}: {err.message}") from None
    lines: dict[tuple[str | int, ...], int] = {}
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    if node is not None:
        _lines(node, (), lines)
    config = PipelineConfig(file, TriggerSpec(), [], StoreAndForward(), lines, raw if isinstance(raw, dict) else {})
    try:
        _parse(raw, config)
    except PipelineError as err:
        raise config.error(err) from None
    return config


def _parse(raw: Any, config: PipelineConfig) -> None:
    top = _fold(raw, ())
    trigger = _fold(_get(top, "Trigger"), ("trigger",))
    kind = str(_get(trigger, "Type") or "edgex-messagebus").strip().lower()
    if kind not in ("edgex-messagebus", "http"):
        raise PipelineError(f"Trigger Type must be edgex-messagebus or http, got {kind!r}", ("trigger", "type"))
    topics = _get(trigger, "SubscribeTopics") or DEFAULT_TOPIC
    topic_list = topics if isinstance(topics, list) else str(topics).split(",")
    subjects = []
    for topic in topic_list:
        try:
            subjects.append(edgex_topic_to_subject(str(topic)))
        except PipelineError as err:
            raise PipelineError(err.message, ("trigger", "subscribetopics")) from None
    config.trigger = TriggerSpec(kind, list(dict.fromkeys(subjects)))

    writable = _fold(_get(top, "Writable"), ("writable",))
    pipeline = _fold(_get(writable, "Pipeline"), ("writable", "pipeline"))
    base = ("writable", "pipeline")
    order = _get(pipeline, "ExecutionOrder")
    if not order:
        raise PipelineError("Writable.Pipeline.ExecutionOrder is required (the functions, in order)", base)
    keys = order if isinstance(order, list) else str(order).split(",")
    functions = _fold(_get(pipeline, "Functions"), (*base, "functions"))
    for key in (str(k).strip() for k in keys):
        if not key:
            continue
        found = functions.get(key.lower())
        fpath: tuple[str | int, ...] = (*base, "functions", key.lower())
        if found is None:
            params: Any = {}
            fpath = (*base, "executionorder")
        else:
            body = _fold(found[1], fpath)
            params = _get(body, "Parameters") or {}
            if not isinstance(params, dict):
                raise PipelineError(f"{key}: Parameters must be a mapping", (*fpath, "parameters"))
        config.functions.append(FunctionSpec(key, key.split("#", 1)[0].strip(), dict(params), fpath))
    if not config.functions:
        raise PipelineError("ExecutionOrder names no function", (*base, "executionorder"))
    config.store_and_forward = _store_and_forward(_get(writable, "StoreAndForward"), ("writable", "storeandforward"))


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(text: str, environ: Mapping[str, str]) -> str:
    """`${NAME}` and `${NAME:-default}` replaced from the environment (an unset NAME without default: empty)."""
    return _ENV.sub(lambda m: environ.get(m.group(1)) or (m.group(2) or ""), text)


def load_file(path: Path, environ: Mapping[str, str]) -> PipelineConfig:
    try:
        text = path.read_text()
    except OSError as err:
        raise PipelineFileError(f"{path}: cannot read the pipeline file: {err.strerror or err}") from None
    return parse_config(expand_env(text, environ), str(path))


__all__ = [
    "DEFAULT_TOPIC",
    "FunctionSpec",
    "PipelineConfig",
    "PipelineFileError",
    "StoreAndForward",
    "TriggerSpec",
    "edgex_topic_to_subject",
    "expand_env",
    "load_file",
    "parse_config",
    "parse_size",
]
