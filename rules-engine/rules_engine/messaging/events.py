"""Events from the bus into the rules: a core NATS subscription to every event subject.

Rules act on what happens now, so they read the live stream (at most once), not the JetStream stream: a
rules engine that restarts does not replay stale events into device commands. Each message is decoded from
its bytes (no envelope model) and validated with the kernel (`edgex.events`), and handed to the rule manager
synchronously; a timer closes processing-time windows between events.

A backlog of events must not hold back the actions they fire: NATS hands a subscription's queued messages
over without yielding to the event loop, so after an event that fired a rule (its actions are tasks) and at
least every `YIELD_EVERY_S` of evaluation, the handler yields, and commands go out at once.
"""

from __future__ import annotations

import asyncio
import logging
import time

from edgeplane_common.bus import MessageBus, Subscription, Topics
from edgeplane_common.edgex.events import EventRecord, decode_event_message, validate_event
from edgeplane_common.errors import ContractInvalid
from rules_engine.application.rules import RuleManager

log = logging.getLogger(__name__)

EVENT_SUBJECTS = (Topics.EVENTS_ALL, "edgex.events.core.>")
"""Events of device services, and events added over core-data's REST API (as eKuiper's EdgeX source)."""
YIELD_EVERY_S = 0.002
"""Longest stretch of evaluation before other tasks (actions, HTTP, the window timer) get the loop."""


class EventSource:
    def __init__(self, bus: MessageBus, rules: RuleManager, *, tick_s: float = 0.05) -> None:
        self.bus = bus
        self.rules = rules
        self.tick_s = tick_s
        self.invalid = 0
        self._subs: list[Subscription] = []
        self._yielded = time.perf_counter()

    async def handle_raw(self, data: bytes, subject: str) -> None:
        """One message of the event stream, as it came off the bus."""
        arrived = time.perf_counter_ns()
        try:
            record = validate_event(decode_event_message(data))
        except ContractInvalid as err:
            if not self.invalid:  # once: a misbehaving publisher would flood the log
                log.warning("ignoring invalid event from %s: %s", subject, err)
            self.invalid += 1
            return
        await self._dispatch(record, arrived)

    async def _dispatch(self, record: EventRecord, arrived: int) -> None:
        rules = self.rules
        fired = rules.runner.submitted
        rules.dispatch(record, arrived)
        now = time.perf_counter()
        if rules.runner.submitted != fired or now - self._yielded > YIELD_EVERY_S:
            await asyncio.sleep(0)
            self._yielded = time.perf_counter()

    async def start(self) -> None:
        for subject in EVENT_SUBJECTS:
            self._subs.append(await self.bus.subscribe_raw(subject, self.handle_raw))
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
