"""The running instance: its pipeline halves, buffer, trigger and counters, started and stopped together.
(Only wiring of adapters built by main.create_app; no library imports of its own.)"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from app_services.application.build import Pipeline
from app_services.application.pipeline import PipelineConfig
from app_services.application.ports import Outbox
from app_services.application.runtime import Counters, EventPipeline, Forwarder
from app_services.messaging.trigger import EventTrigger
from edgeplane_common.bootstrap import connect_with_retry
from edgeplane_common.errors import EdgeError
from edgeplane_common.memory import release_free_heap

log = logging.getLogger(__name__)


@dataclass
class AppService:
    name: str
    config: PipelineConfig | None
    counters: Counters
    pipeline: Pipeline | None = None
    outbox: Outbox | None = None
    events: EventPipeline | None = None
    forwarder: Forwarder | None = None
    trigger: EventTrigger | None = None
    disabled: str | None = None
    """Why the instance exports nothing (its target is not configured), else None."""
    buffer_ready: asyncio.Event = field(default_factory=asyncio.Event)
    depth: tuple[int, int] = (0, 0)
    """(entries, bytes) in the buffer, refreshed in the background for /metrics (read synchronously)."""

    async def watch_depth(self, every: float = 2.0) -> None:
        while True:
            if self.outbox is not None and self.buffer_ready.is_set():
                self.depth = await self.outbox.depth()
            await asyncio.sleep(every)

    async def start_buffer(self) -> None:
        assert self.outbox is not None
        await connect_with_retry("the export buffer (NATS JetStream)", self.outbox.start, retry_on=(EdgeError, OSError))
        self.buffer_ready.set()

    async def run_forwarder(self) -> None:
        assert self.forwarder is not None
        assert self.pipeline is not None
        assert self.pipeline.exporter is not None
        await self.start_buffer()
        await self.pipeline.exporter.start()
        release_free_heap()  # what starting up freed (compiling modules, building the app) goes back to the OS
        await self.forwarder.run()

    def buffer_problem(self) -> str | None:
        if self.disabled:
            return None
        return None if self.buffer_ready.is_set() else "the export buffer is not set up yet (waiting for NATS)"

    async def status(self) -> dict[str, Any]:
        c = self.counters
        if self.outbox is not None and self.buffer_ready.is_set():
            self.depth = await self.outbox.depth()
        depth, size = self.depth
        dropped_oldest = 0 if self.outbox is None else self.outbox.dropped
        pipeline = self.pipeline
        return {
            "serviceName": self.name,
            "state": "disabled" if self.disabled else c.state,
            "disabledReason": self.disabled,
            "target": pipeline.exporter.target if pipeline and pipeline.exporter else None,
            "trigger": self.config.trigger.type if self.config else None,
            "received": c.received,
            "filtered": c.filtered,
            "invalid": c.invalid,
            "buffered": c.buffered,
            "exported": c.exported,
            "exports": c.exports,
            "retried": c.retried,
            "failedPermanent": c.failed_permanent,
            "dropped": c.dropped_newest + dropped_oldest,
            "bufferDepth": depth,
            "bufferBytes": size,
            "suppressedByDeadband": sum(d.suppressed for d in pipeline.deadbands) if pipeline else 0,
            "lastError": c.last_error,
            "lastErrorPermanent": c.last_error_permanent,
            "failingSince": c.failing_since,
        }


__all__ = ["AppService"]
