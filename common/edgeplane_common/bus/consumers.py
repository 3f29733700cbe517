"""The members of a service's durable batch consumers on one stream, started, watched and stopped together.

Services that consume the events stream (core-data's ingestion, the app services' trigger) all need the
same: ensure the stream, start `members` pull consumers per (durable, subject), retry that until NATS and
JetStream are there (logged once, and once recovered), report to readiness why events are not consumed, and
stop every member, each waiting for the batch its handler holds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from edgeplane_common.bus import BatchHandler, Consumer, MessageBus
from edgeplane_common.errors import EdgeError

log = logging.getLogger(__name__)

RETRY_S = 2.0
"""How often `BatchConsumers.run` tries `start` again while NATS or the stream is not there."""


class BatchConsumers:
    def __init__(
        self,
        bus: MessageBus,
        stream: str,
        stream_subjects: list[str],
        handler: BatchHandler,
        durables: Sequence[tuple[str, str]],
        *,
        members: int = 1,
        batch: int = 256,
        what: str = "events",
        retry_s: float = RETRY_S,
    ) -> None:
        """`durables`: (durable name, subject filter) pairs, each consumed by `members` pull consumers."""
        self.bus = bus
        self.stream = stream
        self.stream_subjects = stream_subjects
        self.handler = handler
        self.durables = list(durables)
        self.members = members
        self.batch = batch
        self.what = what
        self.retry_s = retry_s
        self.subscriptions: list[Consumer] = []

    async def start(self) -> None:
        """Ensure the stream, then start the pull consumers (the first of a durable creates it)."""
        await self.bus.ensure_stream(self.stream, self.stream_subjects)
        for durable, subject in self.durables:
            for _ in range(self.members):
                self.subscriptions.append(
                    await self.bus.consume_batch(self.stream, durable, subject, self.handler, batch=self.batch)
                )
        log.info(
            "consuming %s as %s with %d pull consumer(s) each",
            ", ".join(subject for _, subject in self.durables),
            ", ".join(durable for durable, _ in self.durables),
            self.members,
        )

    async def run(self) -> None:
        """`start`, retried every `retry_s` until the bus and the stream are there (logged once)."""
        failing = False
        while True:
            try:
                await self.start()
            except EdgeError as err:
                await self.stop()
                if not failing:
                    log.warning("cannot consume %s yet (%s); retrying every %gs", self.what, err, self.retry_s)
                    failing = True
                await asyncio.sleep(self.retry_s)
                continue
            if failing:
                log.info("consuming %s now", self.what)
            return

    def problem(self) -> str | None:
        """None while every pull consumer runs; else why the stream is not being consumed (readiness)."""
        if not self.subscriptions:
            return f"the {self.what} consumer has not started (waiting for NATS and the stream)"
        for sub in self.subscriptions:
            trouble = sub.problem()
            if trouble is not None:
                return trouble
        return None

    async def stop(self) -> None:
        """Stop every member, concurrently: each waits for the batch its handler holds."""
        subs, self.subscriptions = self.subscriptions, []
        await asyncio.gather(*(sub.unsubscribe() for sub in subs), return_exceptions=True)


__all__ = ["RETRY_S", "BatchConsumers"]
