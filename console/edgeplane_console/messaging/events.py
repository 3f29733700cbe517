"""The bus into the console: every event (device services' and those added over core-data's REST API) into
the live hub, and the rules' alerts into the list of firings. Core NATS, at most once: the console shows
what happens now and has nothing to replay after a restart."""

from __future__ import annotations

import logging
import time

import orjson

from edgeplane_common.bus import MessageBus, MessageEnvelope, Subscription, Topics
from edgeplane_common.bus.topics import unescape
from edgeplane_common.edgex.events import decode_event_message, validate_event
from edgeplane_common.errors import ContractInvalid
from edgeplane_console.application.live import Firing, Firings, LiveHub, Reading

log = logging.getLogger(__name__)

EVENT_SUBJECTS = (Topics.EVENTS_ALL, "edgex.events.core.>")


class LiveFeed:
    def __init__(self, bus: MessageBus, hub: LiveHub, firings: Firings) -> None:
        self.bus = bus
        self.hub = hub
        self.firings = firings
        self.invalid = 0
        self._subs: list[Subscription] = []

    async def on_event(self, data: bytes, subject: str) -> None:
        """One message of the event stream, decoded from its bytes (no envelope model: every event of the
        gateway comes through here)."""
        try:
            record = validate_event(decode_event_message(data))
        except ContractInvalid as err:
            if not self.invalid:  # once: a misbehaving publisher would flood the log
                log.warning("ignoring invalid event from %s: %s", subject, err)
            self.invalid += 1
            return
        docs = record.doc["readings"]
        self.hub.add_event(
            record.device,
            (
                Reading(r["resourceName"], r["valueType"], r.get("value"), int(r["origin"]), str(r.get("units") or ""))
                for r in docs
            ),
        )

    async def on_alert(self, envelope: MessageEnvelope) -> None:
        topic = envelope.received_topic or ""
        rule_id = unescape(topic.rsplit(".", 1)[-1]) if topic else "?"
        payload = envelope.payload
        if isinstance(payload, dict):
            rule_id = str(payload.get("ruleId") or rule_id)
            data = payload.get("data", payload)
        else:
            data = payload
        text = data if isinstance(data, str) else orjson.dumps(data).decode()
        self.firings.add(Firing(rule_id, int(time.time() * 1000), text[:500]))

    async def start(self) -> None:
        for subject in EVENT_SUBJECTS:
            self._subs.append(await self.bus.subscribe_raw(subject, self.on_event))
        self._subs.append(await self.bus.subscribe(Topics.RULE_ALERTS_ALL, self.on_alert))
        log.info("live values from %s", ", ".join(EVENT_SUBJECTS))

    async def stop(self) -> None:
        subs, self._subs = self._subs, []
        for sub in subs:
            await sub.unsubscribe()
