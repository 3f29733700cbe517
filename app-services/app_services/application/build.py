"""The function registry (EdgeX app-service-configurable's names and parameters where one exists) and the
building of a pipeline from its file: per-event functions first, then an optional Batch, then byte
functions (Compress, Encrypt), then exactly one export, last. The per-event part runs before the durable
buffer, the rest after it (see runtime.py).

SetResponseData (EdgeX's) sets the HTTP trigger's response: among the per-event functions (it may be followed
by anything, an export included), or as the end of a pipeline without export (after Compress/Encrypt too),
which then runs whole within the request, with no buffer."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app_services.application.data import AppFunction, Kind
from app_services.application.errors import PipelineError
from app_services.application.functions import filters, transforms
from app_services.application.functions.codec import ByteFunction, SecretSource, compress, encrypt
from app_services.application.functions.deadband import Deadband, deadband
from app_services.application.lineprotocol import LineProtocol
from app_services.application.params import Params
from app_services.application.pipeline import FunctionSpec, PipelineConfig
from app_services.application.ports import Exporter

log = logging.getLogger(__name__)

EventFactory = Callable[[Params], AppFunction]
ExportFactory = Callable[[Params], Exporter]
"""Builds an export from its parameters; raises TargetNotConfigured when its target is not set."""

EVENT_FUNCTIONS: dict[str, EventFactory] = {
    "FilterByDeviceName": filters.filter_by_device_name,
    "FilterByProfileName": filters.filter_by_profile_name,
    "FilterBySourceName": filters.filter_by_source_name,
    "FilterByResourceName": filters.filter_by_resource_name,
    "FilterByValue": filters.filter_by_value,
    "Deadband": deadband,
    "AddTags": transforms.add_tags,
    "MapFields": transforms.map_fields,
}
TRANSFORM = "Transform"
SET_RESPONSE_DATA = "SetResponseData"
BATCH = "Batch"
BYTE_FUNCTIONS = ("Compress", "Encrypt")
BATCH_MODES = ("bycount", "bytime", "bytimecount")
MAX_BATCH = 50_000


@dataclass
class BatchSpec:
    mode: str
    threshold: int
    """Items per batch (bycount, bytimecount); 0 for bytime."""
    interval: float
    """Seconds from a batch's first item to its export (bytime, bytimecount); 0 for bycount."""


@dataclass
class Pipeline:
    event_functions: list[AppFunction]
    batch: BatchSpec | None
    byte_functions: list[ByteFunction]
    exporter: Exporter | None
    """None: the pipeline ends with SetResponseData (HTTP trigger only); it runs whole in the request."""
    kind: Kind
    """What the per-event part yields (what the buffer holds)."""
    deadbands: list[Deadband] = field(default_factory=list)
    responds: bool = False
    """It has SetResponseData: the HTTP trigger answers with the data."""


def known_names(exports: Mapping[str, ExportFactory]) -> list[str]:
    return [*EVENT_FUNCTIONS, TRANSFORM, SET_RESPONSE_DATA, BATCH, *BYTE_FUNCTIONS, *exports]


def _canonical(name: str, exports: Mapping[str, ExportFactory]) -> str | None:
    lowered = name.lower()
    for known in known_names(exports):
        if known.lower() == lowered:
            return known
    return None


def _batch(p: Params) -> BatchSpec:
    mode = p.choice("Mode", BATCH_MODES)
    threshold = p.integer("BatchThreshold", 0, minimum=0) if mode != "bytime" else 0
    interval = p.duration("TimeInterval", "0") if mode != "bycount" else 0.0
    p.flag("IsEventData", False)  # EdgeX's: our batches keep each item's kind
    p.flag("MergeOnSend", True)  # EdgeX 3.1's: a batch is always sent as one payload here
    if mode != "bytime" and not 1 <= threshold <= MAX_BATCH:
        raise p.fail("BatchThreshold", f"must be within 1..{MAX_BATCH} for mode {mode}")
    if mode != "bycount" and interval <= 0:
        raise p.fail("TimeInterval", f"must be a duration above 0 for mode {mode} (e.g. 10s)")
    return BatchSpec(mode, threshold, interval)


def build_pipeline(config: PipelineConfig, exports: Mapping[str, ExportFactory], secrets: SecretSource) -> Pipeline:
    """The runnable pipeline; PipelineError (with the path of the culprit) when it cannot run, or
    TargetNotConfigured from the export's factory."""
    event_functions: list[AppFunction] = []
    deadbands: list[Deadband] = []
    batch: BatchSpec | None = None
    byte_functions: list[ByteFunction] = []
    exporter: Exporter | None = None
    kind: Kind = "event"
    stage = 0  # 0 per-event, 1 after a transform, 2 after Batch, 3 after a byte function
    responds = False
    responds_at: FunctionSpec | None = None
    """The SetResponseData that comes after Batch/Compress/Encrypt (only the end of an export-less pipeline)."""
    for spec in config.functions:
        name = _canonical(spec.name, exports)
        if name is None:
            raise PipelineError(
                f"unknown function {spec.name!r}; known functions: {', '.join(known_names(exports))}", spec.path
            )
        if exporter is not None:
            raise PipelineError(
                f"{spec.key} comes after the export {exporter.name}; the export must be last", spec.path
            )
        p = Params(name, spec.params, spec.path)
        if name in EVENT_FUNCTIONS:
            if stage > 0:
                raise PipelineError(f"{spec.key} works on events, so it must come before Transform/Batch", spec.path)
            function = EVENT_FUNCTIONS[name](p)
            if isinstance(function, Deadband):
                deadbands.append(function)
            event_functions.append(function)
        elif name == TRANSFORM:
            if stage > 0:
                raise PipelineError(f"{spec.key}: the data is already transformed", spec.path)
            event_functions.append(transforms.transform(p))
            chosen = spec_type(spec) or "json"
            kind = "json" if chosen == "json" else "xml" if chosen == "xml" else "lp"
            stage = 1
        elif name == SET_RESPONSE_DATA:
            function = transforms.set_response_data(p)
            if stage <= 1:
                event_functions.append(function)
            elif batch is not None:
                raise PipelineError(
                    f"{spec.key} after Batch is not supported (the batch is made after the buffer, not within "
                    "a request); put it before Batch",
                    spec.path,
                )
            else:
                byte_functions.append(function)
                responds_at = spec
            responds = True
        elif name == BATCH:
            if responds_at is not None:
                raise PipelineError(f"{spec.key} cannot follow SetResponseData after Compress/Encrypt", spec.path)
            if stage > 1:
                raise PipelineError(f"{spec.key}: only one Batch, before Compress/Encrypt", spec.path)
            batch = _batch(p)
            stage = 2
        elif name in BYTE_FUNCTIONS:
            byte_functions.append(compress(p) if name == "Compress" else encrypt(p, secrets))
            stage = 3
        else:
            if responds_at is not None:
                raise PipelineError(
                    f"{responds_at.key} after Compress/Encrypt must end the pipeline: the export runs after the "
                    "buffer, not within the request; move it before Compress/Encrypt",
                    responds_at.path,
                )
            exporter = exports[name](p)
            line_protocol: LineProtocol | None = getattr(exporter, "line_protocol", None)
            if line_protocol is not None:  # the InfluxDB export takes line protocol
                if byte_functions:
                    raise PipelineError(f"{spec.key} takes line protocol; it cannot follow Compress/Encrypt", spec.path)
                if kind == "event":
                    event_functions.append(transforms.to_line_protocol(line_protocol))
                    kind = "lp"
                elif kind != "lp":
                    raise PipelineError(
                        f"{spec.key} takes line protocol; use Transform Type lineprotocol (or none) before it",
                        spec.path,
                    )
        p.check_unknown()
    if exporter is None and not responds:
        raise PipelineError(
            f"the pipeline has no export; end it with one of {', '.join(exports)} (or SetResponseData, with "
            "Trigger Type http)",
            ("writable", "pipeline"),
        )
    if exporter is None and config.trigger.type != "http":
        raise PipelineError(
            "a pipeline without an export answers only the HTTP trigger (SetResponseData): set Trigger Type http",
            ("trigger", "type"),
        )
    if exporter is None and batch is not None:
        raise PipelineError("Batch needs an export after it (a pipeline without export runs within a request)")
    if responds and config.trigger.type != "http":
        log.warning(
            "SetResponseData: the message-bus trigger has no response, so its data is ignored (EdgeX publishes it "
            "to the trigger's PublishTopic, which edgeplane does not have: use MQTTExport)"
        )
    return Pipeline(event_functions, batch, byte_functions, exporter, kind, deadbands, responds)


def spec_type(spec: Any) -> str | None:
    for key, value in spec.params.items():
        if str(key).lower() == "type":
            return str(value).strip().lower()
    return None


__all__ = [
    "BATCH_MODES",
    "EVENT_FUNCTIONS",
    "SET_RESPONSE_DATA",
    "BatchSpec",
    "EventFactory",
    "ExportFactory",
    "Pipeline",
    "build_pipeline",
    "known_names",
]
