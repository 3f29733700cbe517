"""The durable buffer of an app-service instance: a JetStream stream of its own.

- Work-queue retention: an entry is removed when acknowledged (after its export), so the stream holds
  exactly what is still to be exported, and its size is the buffer's depth.
- Bounded by `max_bytes` and `max_age` (file storage: memory does not grow with an outage). Policy
  drop-oldest is JetStream's DiscardOld (the oldest entries make room); drop-newest is DiscardNew (a put that
  does not fit is refused and counted). Entries dropped by the bound show as gaps in the stream sequence of
  what the forwarder fetches, and are counted there.
- Duplicates from a redelivered source event are removed by JetStream (Nats-Msg-Id = the event id, within
  the stream's duplicate window), so a crash between storing items and acknowledging their source message
  adds nothing twice.
- At start the forwarder's consumer is created anew from the first entry, so entries a killed process was
  holding are handed out again at once, in order (not after their ack timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import nats
import nats.errors
import nats.js.errors
import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from app_services.application.data import Context, Item
from app_services.application.ports import Entry
from edgeplane_common.bus import Topics
from edgeplane_common.bus.nats import connect_options
from edgeplane_common.errors import ServiceUnavailable
from edgeplane_common.settings import NatsSettings, TlsSettings

log = logging.getLogger(__name__)

CONSUMER = "forwarder"
ACK_WAIT_S = 60.0
DUPLICATE_WINDOW_S = 120.0
CONTEXT_HEADER = "Edgeplane-Context"
PUT_WINDOW = 1024


def _context_header(item: Item) -> str:
    c = item.ctx
    return orjson.dumps({"k": item.kind, "d": c.device, "p": c.profile, "s": c.source, "t": c.topic}).decode()


def _item(msg: Msg) -> Item:
    raw = (msg.headers or {}).get(CONTEXT_HEADER)
    meta: dict[str, Any] = orjson.loads(raw) if raw else {}
    kind = meta.get("k", "bytes")
    ctx = Context(
        device=meta.get("d", ""),
        profile=meta.get("p", ""),
        source=meta.get("s", ""),
        topic=meta.get("t", ""),
        event_id=(msg.headers or {}).get("Nats-Msg-Id", ""),
        kind=kind,
    )
    return Item(msg.data, kind, ctx)


class JetStreamOutbox:
    def __init__(
        self,
        settings: NatsSettings,
        service: str,
        *,
        max_bytes: int,
        max_age: float,
        policy: str = "drop-oldest",
        tls: TlsSettings | None = None,
    ) -> None:
        self.settings = settings
        self.tls = tls
        self.service = service
        self.stream = Topics.app_buffer_stream(service)
        self.subject = Topics.app_buffer(service)
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.policy = policy
        self.dropped = 0
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._psub: JetStreamContext.PullSubscription | None = None
        self._expected: int | None = None
        self._depth: tuple[int, int] = (0, 0)
        self._depth_at = 0.0
        self._start_lock = asyncio.Lock()

    async def _connect(self) -> JetStreamContext:
        if self._js is not None:
            return self._js
        s = self.settings
        # The service's own identity, inbox and TLS (secure mode's permissions cover this connection too).
        options: dict[str, Any] = connect_options(s, name=f"{self.service}-buffer", service=self.service, tls=self.tls)
        options["connect_timeout"] = s.connect_timeout
        options["max_reconnect_attempts"] = -1  # an edge service outlives a broker restart
        options["allow_reconnect"] = True
        try:
            self._nc = await nats.connect(**options)
        except (nats.errors.Error, OSError) as err:
            raise ServiceUnavailable(f"cannot connect to NATS for the export buffer: {err}") from err
        self._js = self._nc.jetstream(timeout=s.request_timeout)
        return self._js

    async def start(self) -> None:
        """Create (or update the limits of) the buffer stream and the forwarder's consumer."""
        async with self._start_lock:
            js = await self._connect()
            config = StreamConfig(
                name=self.stream,
                subjects=[self.subject],
                retention=RetentionPolicy.WORK_QUEUE,
                storage=StorageType.FILE,
                max_bytes=self.max_bytes,
                max_age=self.max_age,
                discard=DiscardPolicy.NEW if self.policy == "drop-newest" else DiscardPolicy.OLD,
                duplicate_window=DUPLICATE_WINDOW_S,
            )
            try:
                try:
                    await js.stream_info(self.stream)
                    await js.update_stream(config)
                except nats.js.errors.NotFoundError:
                    await js.add_stream(config)
                with contextlib.suppress(nats.js.errors.NotFoundError):
                    await js.delete_consumer(self.stream, CONSUMER)
                await js.add_consumer(
                    self.stream,
                    ConsumerConfig(
                        durable_name=CONSUMER,
                        ack_policy=AckPolicy.EXPLICIT,
                        deliver_policy=DeliverPolicy.ALL,
                        ack_wait=ACK_WAIT_S,
                        max_deliver=-1,
                        max_ack_pending=-1,
                        filter_subject=self.subject,
                    ),
                )
                self._psub = await js.pull_subscribe_bind(durable=CONSUMER, stream=self.stream)
                info = await js.stream_info(self.stream)
            except nats.errors.Error as err:
                raise ServiceUnavailable(f"cannot set up the export buffer {self.stream}: {err}") from err
            state = info.state
            self._expected = state.first_seq if state.messages else state.last_seq + 1
            self._depth = (state.messages, state.bytes)
            log.info(
                "export buffer %s: %d entr%s waiting (%d bytes); bound %d bytes, %gs, %s",
                self.stream,
                state.messages,
                "y" if state.messages == 1 else "ies",
                state.bytes,
                self.max_bytes,
                self.max_age,
                self.policy,
            )

    async def put(self, items: list[Item]) -> int:
        js = await self._connect()
        futures: list[asyncio.Future[Any]] = []
        try:
            for item in items:
                headers = {CONTEXT_HEADER: _context_header(item)}
                if item.ctx.event_id:
                    headers["Nats-Msg-Id"] = f"{item.ctx.event_id}"
                futures.append(await js.publish_async(self.subject, item.data, headers=headers, wait_stall=5.0))
        except nats.errors.Error as err:
            for f in futures:
                f.cancel()
            raise ServiceUnavailable(f"cannot store into the export buffer: {err}") from err
        results = await asyncio.gather(*futures, return_exceptions=True)
        refused = 0
        for result in results:
            if isinstance(result, nats.js.errors.APIError) and "maximum" in str(result.description or "").lower():
                refused += 1  # DiscardNew: the buffer is full
            elif isinstance(result, BaseException):
                raise ServiceUnavailable(f"the export buffer did not store an item: {result}") from result
        return refused

    async def fetch(self, max_items: int, timeout: float) -> list[Entry]:
        if self._psub is None:
            await self.start()
        assert self._psub is not None
        try:
            msgs = await self._psub.fetch(max(1, max_items), timeout=max(timeout, 0.01))
        except nats.errors.TimeoutError:
            return []
        except nats.errors.Error as err:
            raise ServiceUnavailable(f"cannot fetch from the export buffer: {err}") from err
        out = []
        for msg in msgs:
            seq = msg.metadata.sequence.stream
            if self._expected is not None and seq < self._expected:
                # Handed out again (its ack was lost): it is ahead of us already, keep it in order anyway.
                pass
            elif self._expected is not None and seq > self._expected:
                lost = seq - self._expected
                self.dropped += lost
                log.warning(
                    "export buffer full or expired: %d oldest entr%s dropped (policy %s)",
                    lost,
                    "y" if lost == 1 else "ies",
                    self.policy,
                )
            self._expected = max(self._expected or 0, seq + 1)
            out.append(Entry(_item(msg), seq, msg))
        return out

    async def ack(self, entries: list[Entry]) -> None:
        for entry in entries:
            msg: Msg = entry.handle
            with contextlib.suppress(nats.errors.Error):
                await msg.ack()

    async def keep(self, entries: list[Entry]) -> None:
        for entry in entries:
            msg: Msg = entry.handle
            with contextlib.suppress(nats.errors.Error):
                await msg.in_progress()

    async def depth(self) -> tuple[int, int]:
        now = time.monotonic()
        if self._js is not None and now - self._depth_at > 1.0:
            self._depth_at = now
            try:
                state = (await self._js.stream_info(self.stream)).state
                self._depth = (state.messages, state.bytes)
            except (TimeoutError, nats.errors.Error):
                pass
        return self._depth

    async def close(self) -> None:
        nc, self._nc, self._js, self._psub = self._nc, None, None, None
        if nc is not None:
            # close, not drain: every ack is already sent, and a pending pull would hold a drain for its timeout.
            with contextlib.suppress(Exception):
                await nc.close()


__all__ = ["CONSUMER", "JetStreamOutbox"]
