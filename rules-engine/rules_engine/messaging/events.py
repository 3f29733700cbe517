"""Events from the bus into the rules: a core NATS subscription to every event subject.

Rules act on what happens now, so they read the live stream (at most once), not the JetStream stream: a
rules engine that restarts does not replay stale events into device commands. Each message is decoded and
validated with the kernel (`edgex.events`) and handed to the rule manager synchronously; a timer closes
processing-time windows between events.
"""

from __future__ import annotations

import asyncio
import logging
import time

from edgeplane_common.bus import MessageBus, MessageEnvelope, Subscription, Topics
from edgeplane_common.edgex.events import decode_event_payload, validate_event
from edgeplane_common.errors import ContractInvalid
from rules_engine.application.rules import RuleManager

log = logging.getLogger(__name__)

EVENT_SUBJECTS = (Topics.EVENTS_ALL, "edgex.events.core.>")
"""Events of device services, and events added over core-data's REST API (as eKuiper's EdgeX source)."""


class EventSource:
    def __init__(self, bus: MessageBus, rules: RuleManager, *, tick_s: float = 0.05) -> None:
        self.bus = bus
        self.rules = rules
        self.tick_s = tick_s
        self.invalid = 0
        self._subs: list[Subscription] = []
        self._warned = False

    async def handle(self, envelope: MessageEnvelope) -> None:
        arrived = time.perf_counter_ns()
        try:
            record = validate_event(decode_event_payload(envelope.payload, envelope.content_type))
        except ContractInvalid as err:
            self.invalid += 1
            if not self._warned:  # once: a misbehaving publisher would flood the log
                log.warning("ignoring invalid event from %s: %s", envelope.received_topic, err)
                self._warned = True
            return
        self.rules.dispatch(record, arrived)

    async def start(self) -> None:
        for subject in EVENT_SUBJECTS:
            self._subs.append(await self.bus.subscribe(subject, self.handle))
        log.info("evaluating rules on %s", ", ".join(EVENT_SUBJECTS))

    async def stop(self) -> None:
        subs, self._subs = self._subs, []
        for sub in subs:
            await sub.unsubscribe()

    async def run_timer(self) -> None:
        """Close processing-time windows on time, also when no event comes."""
        while True:
            await asyncio.sleep(self.tick_s)
            self.rules.tick()
