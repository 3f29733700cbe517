"""The real `MessageBus`: core NATS for publish/subscribe/request, JetStream for durable streams.

Edge services start before NATS (compose does not wait) and must survive NATS restarts, so the client
reconnects forever and the first connect waits for the server. Each outage is logged once when it starts and
once when it ends.

nats-py gives up on a connection the server closed with an error (-ERR, e.g. "maximum control line
exceeded") or when reconnecting is exhausted: the client is then closed for good. The adapter notices
(closed callback) and builds a new client, then restores what the old one carried: the streams it ensured,
its subscriptions and its durable consumers. It also refuses what the server would close the connection for
(`guard`), so a bad name is a 4xx for one request instead of an outage.

Secure mode: the service logs in as its own NATS user (`user`/`password`), whose permissions the server
enforces; its reply subjects are under its own inbox prefix (`_INBOX.<service>`) so that permissions can
keep each service's replies to itself. With `tls.ca_file` set the client verifies the server against that
CA; a `tls://` URL also starts with the TLS handshake (nothing ever crosses in clear text, and a fake server
cannot talk the client out of TLS). A subject the server refuses is logged once as an error naming it
(nats-py reports it only through the error callback); a subscription it refuses and a request whose
publish it refused fail with `PermissionDenied` instead of waiting for a reply that never comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import nats.aio.transport
import nats.errors
import nats.js.errors
import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription
from nats.js import JetStreamContext
from nats.js.api import PubAck, StorageType, StreamConfig

from edgeplane_common.bootstrap import Backoff
from edgeplane_common.bus import (
    BATCH_MAX_WAIT_S,
    DEADLETTER_CONSUMER,
    DEADLETTER_DELIVERIES,
    DEADLETTER_REASON,
    DEADLETTER_SUBJECT,
    BatchHandler,
    Consumer,
    Handler,
    NoResponders,
    RawHandler,
    Subscription,
    is_transient,
    poison_reason,
)
from edgeplane_common.bus.envelope import MessageEnvelope
from edgeplane_common.bus.failures import FailureStreak
from edgeplane_common.bus.guard import (
    DEFAULT_MAX_CONTROL_LINE,
    MessageTooLarge,
    UnsendableMessage,
    check_headers,
    check_size,
    check_subject,
    sanitize_header_value,
)
from edgeplane_common.bus.topics import Topics, escape
from edgeplane_common.errors import (
    CommunicationError,
    ContractInvalid,
    EdgeError,
    ServerError,
    ServiceUnavailable,
)
from edgeplane_common.logging import correlation_id
from edgeplane_common.settings import NatsSettings, TlsSettings

logger = logging.getLogger(__name__)

RECONNECT_WAIT_S = 2
"""Seconds between connection attempts (first connect and reconnects alike)."""
STOP_TIMEOUT_S = 10.0
"""How long unsubscribing a consumer waits for the handler in progress."""
FETCH_WAIT_S = 1.0
"""How long one pull request waits on an empty stream before it is re-issued."""
ERROR_CODE = 1
"""`errorCode` of a reply whose handler failed (EdgeX uses 0 for success, 1 for error)."""
DURABLE_HEADER = "Edgeplane-Durable"
"""Marks a JetStream publish. Its reply subject belongs to the stream's ack, so core subscribers that
also see the message must never answer it (an answer could arrive first and be read as the ack)."""
PIPELINE_WINDOW = 256
"""Pipelined durable publishes awaiting their JetStream ack at once, per bus (see publish_durable_pipelined)."""
REVIVE_BACKOFF = Backoff(first=0.5, cap=30.0)
"""Between attempts to replace a closed client when an attempt fails outright (not while waiting for the
server, which nats-py's connect does by itself every RECONNECT_WAIT_S)."""
_DURABLE_HEADERS = {DURABLE_HEADER: "1"}
# JetStream's "stream name already in use with a different configuration".
_STREAM_NAME_IN_USE = 10058

_ENVELOPE_FIELDS = tuple((name, info.alias or name) for name, info in MessageEnvelope.model_fields.items())
# Anything but plain JSON types goes to `default`, which refuses it: `encode` then takes pydantic's path.
_T = TypeVar("_T")
_PLAIN_JSON = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS


# nats-py lower-cases the server's -ERR text: `permissions violation for publish to "subject"`.
_PERMISSION_ERR = re.compile(r'permissions violation for (publish|subscription) to "([^"]*)"')
_DENIED_REMEMBERED = 1024


class PermissionDenied(CommunicationError):
    """The NATS server refused a publish or subscription: this service's NATS user may not use the subject
    (secure mode's permissions, see docs/security.md)."""


def _join_writes() -> None:
    """Make nats-py hand its pending commands to the socket as one buffer instead of one write per command.

    nats-py 2.16's flusher calls `writelines(pending)`; over TLS asyncio's SSL transport then encrypts each
    item as its own TLS record, i.e. one record (and one trip through the ssl module) per published message,
    which cost secure mode ~15% more CPU per event than plain TCP (bench/secure_bus_bench.py). Plain TCP
    transports join the list themselves, so joining here changes nothing for them."""
    transport = nats.aio.transport.TcpTransport

    def writelines(self: nats.aio.transport.TcpTransport, payload: list[bytes]) -> None:
        assert self._io_writer is not None
        self._io_writer.write(b"".join(payload))

    transport.writelines = writelines  # type: ignore[method-assign]


_join_writes()


def inbox_prefix(name: str) -> str:
    """This service's reply subjects: `_INBOX.<name>.…` (secure mode allows each service only its own)."""
    return f"_INBOX.{escape(name)}"


def connect_options(
    settings: NatsSettings, *, name: str, tls: TlsSettings | None = None, service: str | None = None
) -> dict[str, Any]:
    """nats-py `connect()` options for identity and transport: the connection's name, the inbox prefix of
    `service` (default: `name`), credentials and TLS. Anything else (callbacks, reconnecting) is the caller's."""
    servers = [u.strip() for u in settings.url.split(",") if u.strip()]
    options: dict[str, Any] = {
        "servers": servers,
        "name": name,
        "inbox_prefix": inbox_prefix(service or name),
        "user": settings.user,
        "password": settings.password.get_secret_value() if settings.password else None,
        "token": settings.token.get_secret_value() if settings.token else None,
    }
    ca_file = tls.ca_file if tls is not None else None
    if ca_file:
        options["tls"] = ssl.create_default_context(cafile=ca_file)
    if servers and all(u.startswith("tls://") for u in servers):
        # TLS from the first byte (the server's `handshake_first`): no INFO in clear text to downgrade.
        options["tls_handshake_first"] = True
        options.setdefault("tls", ssl.create_default_context())
    return options


def _refuse(value: object) -> object:
    raise TypeError


def encode(envelope: MessageEnvelope) -> bytes:
    """`envelope.encode()`, byte for byte, without pydantic walking the payload (5x faster for an event of
    100 readings). A payload of anything but plain JSON types (dict, list, str, int, float, bool, None)
    falls back to `envelope.encode()`."""
    data = {}
    for name, alias in _ENVELOPE_FIELDS:
        value = getattr(envelope, name)
        if value is not None:
            data[alias] = value
    try:
        return orjson.dumps(data, default=_refuse, option=_PLAIN_JSON)
    except TypeError:
        return envelope.encode()


def _durable_error(topic: str, err: BaseException) -> BaseException:
    """A JetStream publish failure as the EdgeError callers of publish_durable get."""
    refused = _refusal(topic, err)
    if refused is not None:
        return refused
    if isinstance(err, nats.errors.NoRespondersError | nats.js.errors.NoStreamResponseError):
        return ServiceUnavailable(f"no JetStream stream captures {topic}")
    if isinstance(err, nats.errors.TimeoutError | asyncio.TimeoutError):
        return ServiceUnavailable(f"JetStream did not acknowledge {topic} in time")
    if isinstance(err, nats.js.errors.APIError):
        return CommunicationError(f"JetStream refused the message on {topic}: {err.description}")
    if isinstance(err, nats.errors.Error):
        return ServiceUnavailable(f"cannot publish on {topic}: {err}")
    return err


def _refusal(topic: str, err: BaseException) -> BaseException | None:
    """nats-py's own refusals (it checks some of what `guard` does) as the guard's errors."""
    if isinstance(err, nats.errors.BadSubjectError):
        return UnsendableMessage(f"NATS refuses the subject {topic[:80]!r}")
    if isinstance(err, nats.errors.MaxPayloadError):
        return MessageTooLarge(f"message on {topic[:80]} exceeds the NATS server's max_payload")
    return None


async def round_trip(nc: Client) -> None:
    """Return once the server has processed everything sent so far (and answered: a refusal's -ERR has
    been handled). nats-py's `flush()` alone does not promise it: it writes its PING straight to the socket
    while earlier commands may still wait for the flusher task, so the PONG can overtake them."""
    await nc._flush_pending(force_flush=True)  # the flusher has written what was pending
    await nc.flush()


def _same_stream(existing: StreamConfig, wanted: StreamConfig) -> bool:
    """True when the stream already has what `wanted` asks for (nothing to update)."""
    if set(existing.subjects or ()) != set(wanted.subjects or ()) or existing.storage != wanted.storage:
        return False
    for field in ("max_age", "max_bytes"):
        value = getattr(wanted, field)
        if value is not None and getattr(existing, field) != value:
            return False
    return True


def _deliveries(msg: Msg) -> int:
    try:
        return msg.metadata.num_delivered
    except Exception:  # not a JetStream message: cannot happen on a pull subscription
        return 1


def redact_servers(url: str) -> str:
    """`host:port` of each server in a (comma separated) URL, without user/password/token."""
    hosts = []
    for part in url.split(","):
        parsed = urlsplit(part.strip() if "://" in part else f"nats://{part.strip()}")
        hosts.append(f"{parsed.hostname}:{parsed.port or 4222}")
    return ",".join(hosts)


def error_envelope(request: MessageEnvelope, err: EdgeError) -> MessageEnvelope:
    """The reply to a request whose handler failed: EdgeX's errorCode 1 with message and HTTP status."""
    return request.reply({"message": str(err), "statusCode": err.status_code}, error_code=ERROR_CODE)


async def dispatch(handler: Handler, envelope: MessageEnvelope, subject: str) -> MessageEnvelope | None:
    """Run a subscription handler so that it can never raise: an exception is logged with the subject and
    becomes an error reply. A returned reply always carries the request's correlation id, and so does every
    log line written while the handler runs (as for a REST request)."""
    cid = correlation_id.set(envelope.correlation_id)
    try:
        result = await handler(envelope)
    except EdgeError as err:
        # Expected failures (not found, locked, device down...): the caller gets the status, no traceback.
        logger.warning("handler for %s failed: %s", subject, err)
        return error_envelope(envelope, err)
    except Exception as err:
        logger.exception("handler for %s raised", subject)
        return error_envelope(envelope, ServerError(f"{type(err).__name__}: {err}"))
    finally:
        correlation_id.reset(cid)
    if result is not None and result.correlation_id != envelope.correlation_id:
        result = result.model_copy(update={"correlation_id": envelope.correlation_id})
    return result


def decode_message(data: bytes, subject: str) -> MessageEnvelope:
    """Decode an envelope and stamp the subject it arrived on; ContractInvalid if it is not one."""
    try:
        envelope = MessageEnvelope.decode(data)
    except Exception as err:
        raise ContractInvalid(f"message on {subject} is not an EdgeX message envelope: {err}") from err
    envelope.received_topic = subject
    return envelope


class _CoreSubscription:
    """A core subscription; `sub` is replaced when the bus had to build a new client."""

    def __init__(
        self, bus: NatsMessageBus, sub: NatsSubscription, topic: str, queue: str, cb: Callable[[Msg], Awaitable[None]]
    ) -> None:
        self._bus = bus
        self.sub = sub
        self.topic = topic
        self.queue = queue
        self.cb = cb
        bus._subscriptions.add(self)

    async def unsubscribe(self) -> None:
        self._bus._subscriptions.discard(self)
        # Already gone when the connection was closed first; unsubscribing twice is harmless.
        with contextlib.suppress(nats.errors.Error):
            await self.sub.unsubscribe()


class _PullConsumer:
    """One member of a durable pull consumer: fetch a batch, run the handler per message, ack or nak.

    `psub` is replaced by the bus when it had to build a new client (`resubscribe`)."""

    def __init__(
        self,
        bus: NatsMessageBus,
        psub: JetStreamContext.PullSubscription,
        handler: Handler,
        *,
        stream: str,
        durable: str,
        topic: str,
        batch: int,
        max_wait: float = FETCH_WAIT_S,
    ) -> None:
        self._bus = bus
        self._psub = psub
        self._handler = handler
        self.stream = stream
        self.durable = durable
        self.topic = topic
        self._name = f"{stream}/{durable}"
        self._batch = batch
        self._max_wait = max_wait
        self._stopping = False
        self._busy = False
        self._failing: str | None = None
        self._streak = FailureStreak(logger, self._name)
        bus._consumers.add(self)
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"consume {self._name}")

    def problem(self) -> str | None:
        if self._task.done():
            return f"consumer {self._name} stopped"
        return self._failing

    def resubscribe(self, psub: JetStreamContext.PullSubscription) -> None:
        self._psub = psub

    async def _run(self) -> None:
        while not self._stopping:
            try:
                msgs = await self._psub.fetch(self._batch, timeout=self._max_wait)
            except TimeoutError:
                # Nothing to do: an empty fetch times out by design.
                continue
            except (nats.errors.Error, OSError) as err:
                # Disconnected or JetStream unavailable: give the client time to reconnect.
                if self._failing is None:
                    logger.warning("consumer %s cannot fetch (%s); retrying", self._name, err)
                self._failing = f"consumer {self._name} cannot fetch: {err or type(err).__name__}"
                await asyncio.sleep(RECONNECT_WAIT_S)
                continue
            if self._failing is not None:
                logger.info("consumer %s is fetching again", self._name)
                self._failing = None
            self._busy = True
            try:
                await self._process(msgs)
            except nats.errors.Error as err:
                # An ack/nak could not be sent: the server redelivers those messages after ack_wait.
                logger.warning("consumer %s could not acknowledge (%s)", self._name, err)
            finally:
                self._busy = False

    async def _process(self, msgs: list[Msg]) -> None:
        for msg in msgs:
            await self._handle(msg)

    async def _handle(self, msg: Msg) -> None:
        if self._stopping:
            # Stopping mid-batch: hand the rest back at once so another member takes them.
            await msg.nak()
            return
        try:
            envelope = decode_message(msg.data, msg.subject)
        except ContractInvalid as err:
            await self._dead_letter(msg, str(err))  # redelivering a malformed message can never succeed
            return
        try:
            await self._handler(envelope)
        except Exception as err:
            await self._failed(msg, err)
            return
        self._streak.succeeded()
        await msg.ack()

    async def _failed(self, msg: Msg, err: Exception) -> None:
        """The handler raised on `msg` alone: redeliver it later, or dead-letter it (`poison_reason`)."""
        deliveries = _deliveries(msg)
        reason = poison_reason(err, deliveries, self._bus.max_deliver)
        if reason is not None:
            await self._dead_letter(msg, reason)
            return
        # Transient failures are redelivered without limit, others up to max_deliver.
        limit = "" if is_transient(err) else f" (delivery {deliveries} of {self._bus.max_deliver})"
        self._streak.failed(err, f"the message on {msg.subject} will be redelivered{limit}")
        await msg.nak(delay=self._bus.redelivery_delay or None)

    async def _dead_letter(self, msg: Msg, reason: str) -> None:
        await self._bus.dead_letter(self.stream, self.durable, msg.subject, msg.data, reason, _deliveries(msg))
        await msg.term()

    async def unsubscribe(self) -> None:
        """Stop after the message being handled (if any); waiting in fetch is simply cancelled."""
        self._bus._consumers.discard(self)
        self._stopping = True
        if not self._busy:
            self._task.cancel()
        done, _ = await asyncio.wait({self._task}, timeout=STOP_TIMEOUT_S)
        if not done:
            logger.warning("consumer %s: handler still busy after %ss; cancelling it", self._name, STOP_TIMEOUT_S)
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        with contextlib.suppress(nats.errors.Error, ValueError):
            await self._psub.unsubscribe()


class _BatchPullConsumer(_PullConsumer):
    """A member of a durable pull consumer whose handler takes each fetch whole (`consume_batch`)."""

    def __init__(
        self,
        bus: NatsMessageBus,
        psub: JetStreamContext.PullSubscription,
        handler: BatchHandler,
        *,
        stream: str,
        durable: str,
        topic: str,
        batch: int,
        max_wait: float,
    ) -> None:
        self._batch_handler = handler
        super().__init__(
            bus, psub, _no_handler, stream=stream, durable=durable, topic=topic, batch=batch, max_wait=max_wait
        )

    async def _process(self, msgs: list[Msg]) -> None:
        if self._stopping:
            # Stopping before the handler ran: hand them back at once so another member takes them.
            await _settle(msgs, Msg.nak)
            return
        kept: list[Msg] = []
        envelopes: list[MessageEnvelope] = []
        for msg in msgs:
            try:
                envelopes.append(decode_message(msg.data, msg.subject))
            except ContractInvalid as err:
                await self._dead_letter(msg, str(err))  # redelivering a malformed message can never succeed
                continue
            kept.append(msg)
        if not kept:
            return
        try:
            rejected = await self._batch_handler(envelopes) or {}
        except Exception as err:
            if len(kept) == 1:
                await self._failed(kept[0], err)
            elif is_transient(err):
                self._streak.failed(err, f"the batch of {len(kept)} will be redelivered")
                await _settle(kept, self._nak)
            else:
                # Which message is to blame is unknown: find out one message at a time.
                self._streak.failed(err, f"handling the batch's {len(kept)} messages one at a time")
                for msg, envelope in zip(kept, envelopes, strict=True):
                    await self._one(msg, envelope)
            return
        self._streak.succeeded()
        for i, msg in enumerate(kept):
            if i in rejected:
                await self._dead_letter(msg, f"refused: {rejected[i]}")
            else:
                await msg.ack()

    async def _one(self, msg: Msg, envelope: MessageEnvelope) -> None:
        try:
            rejected = await self._batch_handler([envelope])
        except Exception as err:
            await self._failed(msg, err)
            return
        self._streak.succeeded()
        if rejected:
            await self._dead_letter(msg, f"refused: {next(iter(rejected.values()))}")
        else:
            await msg.ack()

    async def _nak(self, msg: Msg) -> None:
        await msg.nak(delay=self._bus.redelivery_delay or None)


async def _no_handler(envelope: MessageEnvelope) -> None:
    raise AssertionError("a batch consumer handles whole batches")


async def _settle(msgs: list[Msg], how: Callable[[Msg], Awaitable[None]]) -> None:
    """Ack (or nak) each message. Each is a fire-and-forget publish on the message's own reply subject (no
    round trip is awaited, nats-py only buffers it); acking each one, never "all up to here", leaves the
    messages other members of the durable hold alone."""
    for msg in msgs:
        await how(msg)


class NatsMessageBus:
    """`MessageBus` over nats-py. `name` labels the connection in NATS monitoring (the service name);
    `redelivery_delay` is how long JetStream holds back a message whose handler raised (nak with delay),
    so a failing dependency is not hammered in a tight loop."""

    def __init__(
        self, settings: NatsSettings, *, name: str, redelivery_delay: float = 1.0, tls: TlsSettings | None = None
    ) -> None:
        self._settings = settings
        self._name = name
        self._tls = tls
        self._denied: dict[str, str] = {}
        """Subjects (lower case, as nats-py reports them) the server refused → `publish`/`subscription`."""
        self._denied_waiters: dict[str, set[asyncio.Future[None]]] = {}
        self.redelivery_delay = redelivery_delay
        self.max_deliver = settings.max_deliver
        self.dead_lettered: Counter[str] = Counter()
        self._where = redact_servers(settings.url)
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._consumers: set[_PullConsumer] = set()
        self._subscriptions: set[_CoreSubscription] = set()
        self._streams: dict[str, StreamConfig] = {}
        self._deadletter_ready = False
        self._outage = False
        self._closing = False
        self._lost: str | None = None
        self._revive_task: asyncio.Task[None] | None = None
        self._window = asyncio.Semaphore(PIPELINE_WINDOW)
        self._in_flight: set[asyncio.Future[None]] = set()

    # -- connection ------------------------------------------------------------------------------------
    async def connect(self) -> None:
        """Connect, waiting (forever) for the server to come up. nats-py's own loop does the waiting: with
        `allow_reconnect` the first connect retries like a reconnect, every `reconnect_time_wait` seconds."""
        if self._nc is not None:
            return
        self._closing = False
        await self._open()
        if self._outage:
            logger.info("connected to NATS at %s after waiting for it", self._where)
            self._outage = False
        else:
            logger.info("connected to NATS at %s", self._where)

    async def _open(self) -> None:
        s = self._settings
        nc = Client()
        self._nc = nc
        try:
            await nc.connect(
                **connect_options(s, name=self._name, tls=self._tls),
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=RECONNECT_WAIT_S,
                connect_timeout=max(1, math.ceil(s.connect_timeout)),
                drain_timeout=10,
                error_cb=self._on_error,
                disconnected_cb=self._on_disconnected,
                reconnected_cb=self._on_reconnected,
                closed_cb=self._on_closed,
            )
        except BaseException:
            # Cancelled while waiting for the server (or a non-retryable error): leave no client behind.
            self._nc = None
            with contextlib.suppress(Exception):
                await nc.close()
            raise
        self._js = nc.jetstream(timeout=s.request_timeout)

    def problem(self) -> str | None:
        nc = self._nc
        if nc is not None and nc.is_connected:
            return None
        if self._lost is not None:
            return f"NATS connection to {self._where} was closed ({self._lost}); re-establishing it"
        if nc is None:
            return f"not connected to NATS at {self._where}"
        return f"disconnected from NATS at {self._where}; reconnecting"

    @property
    def _max_control_line(self) -> int:
        # Servers do not announce it today; take it if one does.
        nc = self._nc
        info = nc._server_info if nc is not None else {}
        value = info.get("max_control_line", DEFAULT_MAX_CONTROL_LINE)
        return value if isinstance(value, int) and value > 0 else DEFAULT_MAX_CONTROL_LINE

    async def _on_error(self, err: Exception) -> None:
        refused = _PERMISSION_ERR.search(str(err))
        if refused is not None:
            self._refused(refused.group(1), refused.group(2))
            return
        nc = self._nc
        if nc is not None and nc.is_connected:
            # Not a connectivity problem (slow consumer, permissions...): worth a line each time.
            logger.warning("NATS error on %s: %s", self._where, err or type(err).__name__)
            return
        # Called on every failed connection attempt: log the first of an outage, the rest at debug.
        if self._outage:
            logger.debug("NATS at %s still unreachable: %s", self._where, err)
            return
        self._outage = True
        if "authorization violation" in str(err).lower() or isinstance(err, nats.errors.AuthorizationError):
            # Wrong or missing credentials: say so, not "unreachable" (retried: the server may be reconfigured).
            logger.error(
                "NATS at %s refused the credentials of user %r (authorization violation); retrying every %ss",
                self._where,
                self._settings.user or "(none)",
                RECONNECT_WAIT_S,
            )
            return
        logger.warning(
            "NATS at %s unreachable (%s); retrying every %ss",
            self._where,
            err or type(err).__name__,
            RECONNECT_WAIT_S,
        )

    def _refused(self, what: str, subject: str) -> None:
        """The server refused a publish or subscription: log it once per subject, fail whoever waits on it."""
        if subject not in self._denied:
            if len(self._denied) >= _DENIED_REMEMBERED:
                self._denied.clear()
            self._denied[subject] = what
            logger.error(
                "NATS at %s refused %s to %r: permissions violation (NATS user %r may not use this subject)",
                self._where,
                what,
                subject,
                self._settings.user or "(none)",
            )
        for key, waiters in list(self._denied_waiters.items()):
            if subject == key or subject.startswith(key + "."):
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_exception(
                            PermissionDenied(f"NATS refused {what} to {subject}: permissions violation")
                        )

    def _was_denied(self, subject: str) -> bool:
        return subject.lower() in self._denied

    async def _unless_refused(self, subject: str, call: Awaitable[_T], *, cancel: bool = True) -> _T:
        """Await `call`, or raise PermissionDenied as soon as the server refuses a publish or subscription on
        `subject` or below it: a refused request would otherwise wait for a reply that never comes, and a
        refused subscription would silently receive nothing. With `cancel=False` the call is let finish
        first (nats-py's flush must not be cancelled: its PONG bookkeeping would go wrong)."""
        key = subject.lower()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._denied_waiters.setdefault(key, set()).add(waiter)
        task: asyncio.Future[_T] = asyncio.ensure_future(call)
        try:
            pending: set[asyncio.Future[Any]] = {task, waiter}
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            # The refusal first: a subscription's flush can complete right after the server refused it.
            if waiter.done():
                if cancel:
                    task.cancel()
                await asyncio.wait({task})  # its outcome no longer matters (and is not raised here)
                if not task.cancelled():
                    task.exception()
                waiter.result()  # raises PermissionDenied
            return task.result()
        finally:
            if not task.done():
                task.cancel()
            waiters = self._denied_waiters.get(key)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._denied_waiters[key]
            if not waiter.done():
                waiter.cancel()

    async def _on_disconnected(self) -> None:
        if self._closing or self._outage:
            return
        self._outage = True
        logger.warning("disconnected from NATS at %s; reconnecting", self._where)

    async def _on_reconnected(self) -> None:
        self._outage = False
        logger.info("reconnected to NATS at %s", self._where)

    async def _on_closed(self) -> None:
        if self._closing:
            logger.debug("NATS connection to %s closed", self._where)
            return
        nc = self._nc
        if nc is None or not nc.is_closed or (self._revive_task is not None and not self._revive_task.done()):
            return  # a client we already replaced, or one being replaced
        # nats-py closed it for good (server error, reconnects exhausted): build a new one.
        err = nc.last_error
        self._lost = f"{err}" if err else "closed by the client library"
        logger.warning("NATS connection to %s was closed (%s); re-establishing it", self._where, self._lost)
        self._revive_task = asyncio.get_running_loop().create_task(self._revive(), name=f"revive NATS {self._name}")

    async def _revive(self) -> None:
        """Replace the closed client and restore streams, subscriptions and consumers on the new one."""
        delays = REVIVE_BACKOFF.delays()
        while not self._closing:
            try:
                await self._open()
                await self._restore()
            except asyncio.CancelledError:
                raise
            except Exception as err:
                logger.debug("re-establishing NATS at %s failed: %s", self._where, err)
                nc, self._nc, self._js = self._nc, None, None
                if nc is not None:
                    with contextlib.suppress(Exception):
                        await nc.close()
                await asyncio.sleep(next(delays))
                continue
            self._lost = None
            self._outage = False
            logger.info("NATS connection to %s re-established", self._where)
            return

    async def _restore(self) -> None:
        nc = self._client()
        js = self._jetstream()
        for config in list(self._streams.values()):
            await self._apply_stream(js, config)
        for sub in list(self._subscriptions):
            sub.sub = await nc.subscribe(sub.topic, queue=sub.queue, cb=sub.cb)
        for consumer in list(self._consumers):
            psub = await js.pull_subscribe(consumer.topic, durable=consumer.durable, stream=consumer.stream)
            consumer.resubscribe(psub)
        await nc.flush()

    def _client(self) -> Client:
        # `_js` is set once the first connect succeeded; while reconnecting, nats-py buffers publishes.
        if self._nc is None or self._js is None or self._nc.is_closed:
            raise ServiceUnavailable(self.problem() or f"not connected to NATS at {self._where}")
        return self._nc

    def _jetstream(self) -> JetStreamContext:
        self._client()
        assert self._js is not None
        return self._js

    def _check_out(self, topic: str, data: bytes, headers: dict[str, str] | None) -> Client:
        """The client to send `data` on `topic` with, once the server is sure to accept it."""
        nc = self._client()
        check_subject(topic, wildcards=False, max_control_line=self._max_control_line)
        check_size(topic, len(data), check_headers(headers), nc.max_payload)
        return nc

    async def flush(self) -> None:
        """Return once the server has processed everything this bus sent so far (a refused publish has been
        logged by then)."""
        await round_trip(self._client())

    async def close(self) -> None:
        """Stop consumers, then drain: in-flight handlers finish, pipelined publishes get their acks (or time
        out) and buffered publishes are flushed."""
        self._closing = True
        revive, self._revive_task = self._revive_task, None
        if revive is not None:
            revive.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await revive
        for consumer in list(self._consumers):
            await consumer.unsubscribe()
        self._consumers.clear()
        self._subscriptions.clear()
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=self._settings.request_timeout)
        nc, self._nc, self._js = self._nc, None, None
        if nc is None or nc.is_closed:
            return
        try:
            await nc.drain()
        except nats.errors.Error:
            # Reconnecting or already closing: nothing to drain, just close.
            await nc.close()

    # -- core NATS -------------------------------------------------------------------------------------
    async def publish(self, topic: str, envelope: MessageEnvelope) -> None:
        data = encode(envelope)
        nc = self._check_out(topic, data, None)
        try:
            await nc.publish(topic, data)
        except nats.errors.Error as err:
            raise _refusal(topic, err) or ServiceUnavailable(f"cannot publish on {topic}: {err}") from err

    async def subscribe(self, topic: str, handler: Handler, *, queue: str | None = None) -> Subscription:
        nc = self._client()
        check_subject(topic, wildcards=True, max_control_line=self._max_control_line)
        if queue:
            check_subject(queue, wildcards=False, max_control_line=self._max_control_line)

        async def on_message(msg: Msg) -> None:
            reply_to = None if msg.headers and DURABLE_HEADER in msg.headers else msg.reply
            try:
                envelope = decode_message(msg.data, msg.subject)
            except ContractInvalid as err:
                logger.warning("%s", err)
                if reply_to:
                    await self._respond(msg, error_envelope(MessageEnvelope(), err))
                return
            reply = await dispatch(handler, envelope, msg.subject)
            if reply_to and reply is not None:
                await self._respond(msg, reply)

        sub = await self._subscribe(nc, topic, queue or "", on_message)
        return _CoreSubscription(self, sub, topic, queue or "", on_message)

    async def _subscribe(
        self, nc: Client, topic: str, queue: str, cb: Callable[[Msg], Awaitable[None]]
    ) -> NatsSubscription:
        made: list[NatsSubscription] = []

        async def subscribe() -> NatsSubscription:
            sub = await nc.subscribe(topic, queue=queue, cb=cb)
            made.append(sub)
            # Round trip so the server has registered the interest when we return (other connections may
            # publish right after), or has refused it.
            await round_trip(nc)
            return sub

        try:
            sub: NatsSubscription = await self._unless_refused(topic, subscribe(), cancel=False)
        except PermissionDenied:
            # nats-py keeps the refused subscription on its side: drop it.
            for sub in made:
                with contextlib.suppress(nats.errors.Error):
                    await sub.unsubscribe()
            raise
        except nats.errors.Error as err:
            raise _refusal(topic, err) or ServiceUnavailable(f"cannot subscribe to {topic}: {err}") from err
        return sub

    async def subscribe_raw(self, topic: str, handler: RawHandler) -> Subscription:
        nc = self._client()
        check_subject(topic, wildcards=True, max_control_line=self._max_control_line)

        async def on_message(msg: Msg) -> None:
            try:
                await handler(msg.data, msg.subject)
            except Exception:
                logger.exception("handler for %s raised", msg.subject)

        sub = await self._subscribe(nc, topic, "", on_message)
        return _CoreSubscription(self, sub, topic, "", on_message)

    async def _respond(self, msg: Msg, reply: MessageEnvelope) -> None:
        data = encode(reply)
        try:
            if msg.reply:
                self._check_out(msg.reply, data, None)
            await msg.respond(data)
        except (nats.errors.Error, EdgeError) as err:
            logger.warning("cannot send reply for %s: %s", msg.subject, err)

    async def request(
        self,
        topic: str,
        envelope: MessageEnvelope,
        *,
        timeout: float | None = None,  # the MessageBus signature
    ) -> MessageEnvelope:
        wait = self._settings.request_timeout if timeout is None else timeout
        data = encode(envelope)
        nc = self._check_out(topic, data, None)
        try:
            msg = await self._unless_refused(topic, nc.request(topic, data, timeout=wait))
        except nats.errors.NoRespondersError as err:
            raise NoResponders(f"no service is listening on {topic}") from err
        except nats.errors.TimeoutError as err:
            raise ServiceUnavailable(f"no reply on {topic} within {wait:g}s") from err
        except nats.errors.Error as err:
            raise _refusal(topic, err) or ServiceUnavailable(f"request on {topic} failed: {err}") from err
        try:
            return decode_message(msg.data, msg.subject)
        except ContractInvalid as err:
            raise CommunicationError(f"invalid reply to {topic}: {err}") from err

    # -- JetStream -------------------------------------------------------------------------------------
    async def publish_durable(self, topic: str, envelope: MessageEnvelope) -> None:
        await self._publish_durable(topic, encode(envelope), _DURABLE_HEADERS)

    async def _publish_durable(self, topic: str, data: bytes, headers: dict[str, str]) -> None:
        self._check_out(topic, data, headers)
        js = self._jetstream()
        try:
            await self._unless_refused(topic, js.publish(topic, data, headers=headers))
        except nats.errors.Error as err:
            raise _durable_error(topic, err) from err

    async def publish_durable_pipelined(self, topic: str, envelope: MessageEnvelope) -> asyncio.Future[None]:
        """nats-py's `publish_async` inside a window of PIPELINE_WINDOW unacknowledged messages, each given
        the request timeout to be acknowledged (nats-py's own futures never time out)."""
        data = encode(envelope)
        self._check_out(topic, data, _DURABLE_HEADERS)
        js = self._jetstream()
        window = self._window
        await window.acquire()
        try:
            ack = await js.publish_async(topic, data, headers=_DURABLE_HEADERS)
        except BaseException as err:
            window.release()
            if isinstance(err, nats.errors.Error):
                raise _durable_error(topic, err) from err
            raise
        loop = asyncio.get_running_loop()
        result: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(self._settings.request_timeout, ack.cancel)
        in_flight = self._in_flight
        in_flight.add(result)

        def acked(done: asyncio.Future[PubAck]) -> None:
            timer.cancel()
            window.release()
            in_flight.discard(result)
            if result.done():  # the caller cancelled it
                return
            if done.cancelled():
                if self._was_denied(topic):
                    result.set_exception(PermissionDenied(f"NATS refused publish to {topic}: permissions violation"))
                else:
                    result.set_exception(ServiceUnavailable(f"JetStream did not acknowledge {topic} in time"))
                return
            err = done.exception()
            if err is None:
                result.set_result(None)
            else:
                result.set_exception(_durable_error(topic, err))

        ack.add_done_callback(acked)
        return result

    def _limits(self, name: str, max_age_s: float | None, max_bytes: int | None) -> tuple[float | None, int | None]:
        """The platform's own streams take the limits the settings give when the caller gives none."""
        s = self._settings
        if name == Topics.EVENTS_STREAM:
            return max_age_s or s.events_max_age, max_bytes or s.events_max_bytes
        if name == Topics.DEADLETTER_STREAM:
            return max_age_s or s.deadletter_max_age, max_bytes or s.deadletter_max_bytes
        return max_age_s, max_bytes

    async def ensure_stream(
        self, name: str, subjects: list[str], *, max_age_s: float | None = None, max_bytes: int | None = None
    ) -> None:
        js = self._jetstream()
        max_age_s, max_bytes = self._limits(name, max_age_s, max_bytes)
        config = StreamConfig(
            name=name, subjects=subjects, storage=StorageType.FILE, max_age=max_age_s, max_bytes=max_bytes
        )
        await self._apply_stream(js, config)
        self._streams[name] = config  # restored on a new client (the server may have lost it)

    async def _apply_stream(self, js: JetStreamContext, config: StreamConfig) -> None:
        name = config.name or ""
        api = f"$JS.API.STREAM.UPDATE.{name}"
        try:
            try:
                info = await self._unless_refused(f"$JS.API.STREAM.INFO.{name}", js.stream_info(name))
                if _same_stream(info.config, config):
                    return
            except nats.js.errors.NotFoundError:
                try:
                    await self._unless_refused(f"$JS.API.STREAM.CREATE.{name}", js.add_stream(config))
                    logger.info("created JetStream stream %s for %s", name, ", ".join(config.subjects or []))
                    return
                except nats.js.errors.BadRequestError as err:
                    # Another service created it in the meantime with other settings: update below.
                    if err.err_code != _STREAM_NAME_IN_USE:
                        raise
            try:
                await self._unless_refused(api, js.update_stream(config))
            except PermissionDenied:
                # Secure mode: only the stream's owners may change its limits (device services may not).
                logger.info("stream %s exists with other limits; this service may not change them: using it", name)
        except nats.js.errors.APIError as err:
            raise CommunicationError(f"cannot create or update stream {name}: {err.description}") from err
        except nats.errors.Error as err:
            raise ServiceUnavailable(f"JetStream unavailable while ensuring stream {name}: {err}") from err

    async def _pull_subscribe(self, stream: str, durable: str, topic: str) -> JetStreamContext.PullSubscription:
        js = self._jetstream()
        check_subject(topic, wildcards=True, max_control_line=self._max_control_line)
        try:
            psub = await self._unless_refused(
                "$JS.API.CONSUMER", js.pull_subscribe(topic, durable=durable, stream=stream)
            )
        except nats.js.errors.NotFoundError as err:
            raise ServiceUnavailable(f"stream {stream} does not exist") from err
        except nats.js.errors.APIError as err:
            raise CommunicationError(f"cannot create consumer {durable} on stream {stream}: {err.description}") from err
        except nats.errors.Error as err:
            raise ServiceUnavailable(f"JetStream unavailable while creating consumer {durable}: {err}") from err
        if not self._deadletter_ready:
            await self.ensure_stream(Topics.DEADLETTER_STREAM, [Topics.DEADLETTER_ALL])
            self._deadletter_ready = True
        return psub

    async def dead_letter(
        self, stream: str, durable: str, subject: str, data: bytes, reason: str, deliveries: int
    ) -> None:
        """Count a message `durable` gives up on, log it once and keep a copy in the dead-letter stream. Never
        raises: a copy that cannot be kept is logged, and the message is still terminated by the caller."""
        consumer = f"{stream}/{durable}"
        self.dead_lettered[consumer] += 1
        logger.error("dropping message on %s (consumer %s, delivery %d): %s", subject, consumer, deliveries, reason)
        headers = {
            DEADLETTER_CONSUMER: consumer,
            DEADLETTER_SUBJECT: sanitize_header_value(subject, limit=8192),
            DEADLETTER_REASON: sanitize_header_value(reason),
            DEADLETTER_DELIVERIES: str(deliveries),
        }
        try:
            await self._publish_durable(Topics.deadletter(stream, durable), data, headers)
        except EdgeError as err:
            logger.error("cannot keep the message from %s in %s: %s", subject, Topics.DEADLETTER_STREAM, err)

    async def consume(self, stream: str, durable: str, topic: str, handler: Handler, *, batch: int = 100) -> Consumer:
        psub = await self._pull_subscribe(stream, durable, topic)
        return _PullConsumer(self, psub, handler, stream=stream, durable=durable, topic=topic, batch=batch)

    async def consume_batch(
        self,
        stream: str,
        durable: str,
        topic: str,
        handler: BatchHandler,
        *,
        batch: int = 256,
        max_wait: float = BATCH_MAX_WAIT_S,
    ) -> Consumer:
        psub = await self._pull_subscribe(stream, durable, topic)
        return _BatchPullConsumer(
            self, psub, handler, stream=stream, durable=durable, topic=topic, batch=batch, max_wait=max_wait
        )


__all__ = [
    "NatsMessageBus",
    "PermissionDenied",
    "connect_options",
    "decode_message",
    "dispatch",
    "error_envelope",
    "inbox_prefix",
    "redact_servers",
]
