"""App services in tests: events to feed pipelines, a recording exporter, pipeline files."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from app_services.application.data import Context
from app_services.application.errors import ExportFailed
from app_services.application.params import Params

ORIGIN = 1_700_000_000_000_000_000


def reading(resource: str, value: Any, value_type: str = "Float64", **extra: Any) -> dict[str, Any]:
    return {"resourceName": resource, "value": value, "valueType": value_type, **extra}


def event(
    device: str = "pump-1",
    readings: list[dict[str, Any]] | None = None,
    *,
    profile: str = "Pump",
    source: str = "Flow",
    origin: int = ORIGIN,
    tags: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A normalized EdgeX event (as the trigger hands it to the functions)."""
    rs = readings if readings is not None else [reading("Flow", "21.5")]
    out: dict[str, Any] = {
        "apiVersion": "v3",
        "id": str(uuid.uuid4()),
        "deviceName": device,
        "profileName": profile,
        "sourceName": source,
        "origin": origin,
        "readings": [
            {
                "id": str(uuid.uuid4()),
                "origin": r.pop("origin", origin),
                "deviceName": device,
                "profileName": profile,
                **r,
            }
            for r in (dict(x) for x in rs)
        ],
    }
    if tags:
        out["tags"] = tags
    return out


def ctx_of(ev: dict[str, Any]) -> Context:
    return Context(device=ev["deviceName"], profile=ev["profileName"], source=ev["sourceName"], event_id=ev["id"])


class RecordingExporter:
    """An export that records payloads; `fail_with` makes the next calls fail (until cleared)."""

    name = "RecordingExport"
    target = "memory"
    accepts = frozenset({"json", "event", "lp", "bytes"})

    def __init__(self, max_batch: int = 1, line_protocol: Any = None) -> None:
        self.max_batch = max_batch
        self.payloads: list[tuple[bytes, int, Context]] = []
        self.fail_with: ExportFailed | None = None
        self.attempts = 0
        if line_protocol is not None:
            self.line_protocol = line_protocol

    async def start(self) -> None:
        return None

    async def export(self, ctx: Context, payload: bytes, count: int) -> None:
        self.attempts += 1
        if self.fail_with is not None:
            raise self.fail_with
        self.payloads.append((payload, count, ctx))

    async def close(self) -> None:
        return None


def recording_factory(exporter: RecordingExporter) -> Any:
    def build(p: Params) -> RecordingExporter:
        p.integer("BatchSize", exporter.max_batch)
        return exporter

    return build


def write_pipeline(tmp: Path, body: str, name: str = "pipeline.yaml") -> Path:
    path = tmp / name
    path.write_text(body)
    return path
