"""One OPC UA session per endpoint (and security/login), shared by the devices on it, that recovers by itself.

The state machine is ours, not asyncua's auto-reconnect (a reused client can hang on reconnect): each attempt
builds a fresh `Client`; asyncua's watchdog probes the server every `keepalive` seconds and reports a lost
connection (a closed socket at once, a silent one within about two keep-alives); then the session is marked
down, the client dropped, and a new one connects with capped exponential backoff. Every monitored item is
created again on the new session, so subscriptions survive server restarts and network drops without a
restart of the service. Requests made while the session is down fail at once with the cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from asyncua import Client, ua
from asyncua.common.subscription import DataChangeEvent, OverflowPolicy, Subscription
from asyncua.common.ua_utils import data_type_to_variant_type

from device_opcua.attributes import OpcuaConnection
from device_opcua.convert import datetime_ns, edgex_type, to_variant
from device_opcua.errors import DeviceAnswered, cause, node_status, request_failed
from device_opcua.fastread import ReadResult, data_value_result, decode_read_response
from device_opcua.nodeids import NodeIdText
from device_opcua.security import CLIENT_APP_URI, apply_security
from edgeplane_common.edgex.values import parse_value
from edgeplane_common.errors import EdgeError, ServiceUnavailable
from edgeplane_common.models import ValueType

log = logging.getLogger(__name__)

MONITORED_ITEMS_PER_CALL = 1000
"""CreateMonitoredItems requests are chunked so one call stays well under message size limits."""


@dataclass(frozen=True, slots=True)
class MonitoredItem:
    device: str
    resource: str
    value_type: ValueType
    node: NodeIdText
    interval_ms: float
    deadband: float | None = None


class SessionListener(Protocol):
    async def session_state(self, session: Session, up: bool, reason: str | None) -> None: ...

    async def data_change(self, item: MonitoredItem, value: Any, source_ns: int | None) -> None: ...


Credentials = Callable[[], tuple[str | None, str | None]]


@dataclass
class _Group:
    """One asyncua subscription per publishing interval, and the monitored items it carries."""

    sub: Subscription
    consumer: asyncio.Task[None] | None = None
    items: dict[int, MonitoredItem] = field(default_factory=dict)  # client handle -> item
    server_ids: dict[int, int] = field(default_factory=dict)  # client handle -> monitored item id


class Session:
    def __init__(
        self,
        conn: OpcuaConnection,
        credentials: Credentials,
        listener: SessionListener,
        *,
        keepalive: float = 1.0,
        min_backoff: float = 0.5,
        max_backoff: float = 10.0,
    ) -> None:
        self.conn = conn
        self.name = conn.describe()
        self._credentials = credentials
        self._listener = listener
        self.keepalive = keepalive
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.devices: set[str] = set()
        self.up = False
        self.reason: str | None = "not connected yet"
        self._reported: bool | None = None  # the state last reported to the listener
        self._retry_at: float | None = None
        self._client: Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self._connected = asyncio.Event()
        self._lock = asyncio.Lock()  # serialises changes to monitored items
        self._items: dict[str, list[MonitoredItem]] = {}
        self._groups: dict[float, _Group] = {}
        self._device_handles: dict[str, list[tuple[float, int]]] = {}
        self._next_handle = 1
        self._namespaces: list[str] = []
        self._types: dict[str, tuple[ua.VariantType, bool]] = {}
        self._nodeids: dict[NodeIdText, ua.NodeId] = {}  # per connection: nsu= indexes may change
        self._read_cache: dict[int, tuple[Sequence[tuple[NodeIdText, str]], ua.ReadParameters]] = {}
        self._method_inputs: dict[str, list[tuple[ua.VariantType, bool]]] = {}
        self._bad_items: set[tuple[str, str]] = set()

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"opcua-session:{self.conn.endpoint}")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        client, self._client = self._client, None
        if client is not None:
            await self._dispose(client, polite=True)

    async def wait_connected(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), timeout)
        return self._connected.is_set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        delay = self.min_backoff
        while True:
            try:
                client = await self._connect()
            except Exception as err:
                log.debug("connect to %s failed: %r", self.name, err)
                delay = await self._back_off(delay, cause(err, self.conn.timeout))
                continue
            self._client = client
            try:
                async with self._lock:
                    self._groups = {}
                    self._device_handles = {}
                    await self._create_items(client, [i for items in self._items.values() for i in items])
            except Exception as err:
                self._client = None
                await self._dispose(client, polite=False)
                why = f"creating the subscriptions failed: {cause(err, self.conn.timeout)}"
                delay = await self._back_off(delay, why)
                continue
            delay = self.min_backoff
            self._retry_at = None
            self._connected.set()
            await self._set_state(True, None)
            await self._lost.wait()
            self._connected.clear()
            self._client = None
            await self._stop_groups()
            await self._dispose(client, polite=False)
            self._retry_at = loop.time()
            await self._set_state(False, "connection lost")

    async def _back_off(self, delay: float, reason: str) -> float:
        """Report the session down for `reason` and wait `delay` seconds; the next delay (doubled, capped)."""
        self._retry_at = asyncio.get_running_loop().time() + delay
        await self._set_state(False, reason)
        await asyncio.sleep(delay)
        return min(delay * 2, self.max_backoff)

    async def _connect(self) -> Client:
        conn = self.conn
        client = Client(conn.endpoint, timeout=conn.timeout, watchdog_intervall=self.keepalive)
        client.name = client.description = "edgeplane device-opcua"
        client.application_uri = CLIENT_APP_URI
        client.session_timeout = 60_000
        username, password = self._credentials()
        self._lost = asyncio.Event()
        lost = self._lost

        async def on_lost(exc: Exception) -> None:
            lost.set()

        client.connection_lost_callback = on_lost
        try:
            await asyncio.wait_for(apply_security(client, conn, username, password), conn.timeout * 2)
            await asyncio.wait_for(client.connect(), conn.timeout * 2)
            self._namespaces = await client.get_namespace_array()
        except BaseException:
            await self._dispose(client, polite=False)
            raise
        self._types.clear()
        self._method_inputs.clear()
        self._nodeids.clear()
        self._read_cache.clear()
        return client

    @staticmethod
    async def _dispose(client: Client, *, polite: bool) -> None:
        """Drop a client; `polite` closes the session first (a dead one would only time out)."""
        if polite:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.disconnect(), 2)
        client.uaclient.request_disconnect()  # stops asyncua's supervisor and watchdog loops
        tasks = [
            getattr(client, name, None) for name in ("_supervisor_task", "_stale_watchdog_task", "_renew_channel_task")
        ]
        tasks.append(getattr(client.uaclient, "_publish_task", None))
        for task in tasks:
            if isinstance(task, asyncio.Task) and not task.done() and task is not asyncio.current_task():
                task.cancel()
        with contextlib.suppress(Exception):
            client.disconnect_socket()

    async def _set_state(self, up: bool, reason: str | None) -> None:
        self.up = up
        self.reason = reason
        if self._reported is up:
            return
        self._reported = up
        if up:
            log.info("OPC UA session to %s established", self.name)
        else:
            log.warning("OPC UA session to %s is down: %s; retrying with backoff", self.name, reason)
        try:
            await self._listener.session_state(self, up, reason)
        except Exception:
            log.exception("session state listener failed")

    # -- requests --------------------------------------------------------------------------------
    def _require(self) -> Client:
        client = self._client
        if client is None or not self.up:
            retry = ""
            if self._retry_at is not None:
                wait = max(0.0, self._retry_at - asyncio.get_running_loop().time())
                retry = f"; reconnecting in {wait:.1f} s"
            raise ServiceUnavailable(f"OPC UA session to {self.name} is down: {self.reason}{retry}")
        return client

    def ua_node(self, node: NodeIdText, where: str) -> ua.NodeId:
        found = self._nodeids.get(node)
        if found is None:
            found = self._nodeids[node] = self._ua_node(node, where)
        return found

    def _ua_node(self, node: NodeIdText, where: str) -> ua.NodeId:
        index = node.namespace_index
        if node.namespace_uri is not None:
            try:
                index = self._namespaces.index(node.namespace_uri)
            except ValueError:
                raise DeviceAnswered(
                    f"{where}: the server has no namespace {node.namespace_uri!r} (it serves {self._namespaces})"
                ) from None
        ident = node.identifier
        kind = {
            "i": ua.NodeIdType.Numeric,
            "s": ua.NodeIdType.String,
            "g": ua.NodeIdType.Guid,
            "b": ua.NodeIdType.ByteString,
        }[node.kind]
        if kind is ua.NodeIdType.Numeric and isinstance(ident, int) and ident <= 0xFFFF and index <= 0xFF:
            kind = ua.NodeIdType.FourByte if ident > 0xFF or index else ua.NodeIdType.TwoByte
        return ua.NodeId(ident, index, kind)

    async def _ready(self) -> None:
        if self._reported is None and self._task is not None:
            # A device just added: its session's first connect is under way; wait for it rather than fail.
            await self.wait_connected(self.conn.timeout * 2)

    async def _call(self, what: str, op: Callable[[Client], Awaitable[Any]]) -> Any:
        await self._ready()
        client = self._require()
        try:
            return await op(client)
        except EdgeError:
            raise
        except Exception as err:
            raise request_failed(err, f"{what} on {self.name}", self.conn.timeout) from err

    async def read_values(self, nodes: Sequence[tuple[NodeIdText, str]]) -> list[tuple[Any, int | None]]:
        """The values (as asyncua gives them) and source timestamps (Unix ns) of `nodes` ((node, what it is
        for errors)) in one Read service call. Polls pass the same `nodes` object every time: its request
        parameters are built once per connection, and the response is decoded by `fastread`."""
        await self._ready()
        params = self._read_params(nodes)

        async def op(c: Client) -> list[ReadResult]:
            send = getattr(c.uaclient, "_send_request", None)
            if send is None:  # another asyncua: its own (slower) decoding
                return [data_value_result(dv) for dv in await c.uaclient.read(params)]
            request = ua.ReadRequest()
            request.Parameters = params
            return decode_read_response(bytes(await send(request)))

        results: list[ReadResult] = await self._call("read", op)
        out: list[tuple[Any, int | None]] = []
        for (_, where), (value, status, ts) in zip(nodes, results, strict=True):
            if status:
                code = ua.StatusCode(status)
                if not code.is_good():
                    raise node_status(code, where)
            out.append((value, ts))
        return out

    def _read_params(self, nodes: Sequence[tuple[NodeIdText, str]]) -> ua.ReadParameters:
        cached = self._read_cache.get(id(nodes))
        if cached is not None and cached[0] is nodes:
            return cached[1]
        params = ua.ReadParameters()
        params.NodesToRead = [
            ua.ReadValueId(NodeId=self.ua_node(n, where), AttributeId=ua.AttributeIds.Value) for n, where in nodes
        ]
        if len(self._read_cache) > 1024:
            self._read_cache.clear()
        self._read_cache[id(nodes)] = (nodes, params)  # holds `nodes`, so its id is not reused meanwhile
        return params

    async def node_type(self, node: NodeIdText, where: str) -> tuple[ua.VariantType, bool]:
        """The node's data type as a Variant type, and whether it holds an array (cached per session)."""
        await self._ready()
        key = str(node)
        found = self._types.get(key)
        if found is not None:
            return found
        nodeid = self.ua_node(node, where)
        params = ua.ReadParameters()
        params.NodesToRead = [
            ua.ReadValueId(NodeId=nodeid, AttributeId=ua.AttributeIds.DataType),
            ua.ReadValueId(NodeId=nodeid, AttributeId=ua.AttributeIds.ValueRank),
        ]
        dtype, rank = await self._call("read", lambda c: c.uaclient.read(params))
        for dv in (dtype, rank):
            if not dv.StatusCode.is_good():
                raise node_status(dv.StatusCode, where)
        found = (await self._variant_type(dtype.Value.Value), int(rank.Value.Value) >= 1)
        self._types[key] = found
        return found

    async def _variant_type(self, dtype: ua.NodeId) -> ua.VariantType:
        if dtype.NamespaceIndex == 0 and isinstance(dtype.Identifier, int) and 1 <= dtype.Identifier <= 25:
            return ua.VariantType(dtype.Identifier)
        # A subtype (UtcTime, Duration, an enumeration...): walk up to its built-in type.
        found: ua.VariantType = await self._call("read", lambda c: data_type_to_variant_type(c.get_node(dtype)))
        return found

    async def write(self, writes: list[tuple[NodeIdText, Any, str]]) -> None:
        """Write raw values ((node, value, what)) as the nodes' own types, in one Write service call."""
        await self._ready()
        params = ua.WriteParameters()
        for node, value, where in writes:
            vt, is_array = await self.node_type(node, where)
            variant = to_variant(value, vt, is_array, where)
            params.NodesToWrite.append(
                ua.WriteValue(
                    NodeId=self.ua_node(node, where), AttributeId=ua.AttributeIds.Value, Value=ua.DataValue(variant)
                )
            )
        results: list[ua.StatusCode] = await self._call("write", lambda c: c.uaclient.write(params))
        for (_, _, where), status in zip(writes, results, strict=True):
            if not status.is_good():
                raise node_status(status, where)

    async def call(self, obj: NodeIdText, method: NodeIdText, inputs: tuple[str, ...], where: str) -> Any:
        """Call a method with `inputs` (text) converted to its input arguments' types; its first output (all of
        them as a list when it has several)."""
        await self._ready()
        types = await self._inputs(method, where)
        if len(types) != len(inputs):
            raise DeviceAnswered(f"{where}: the method takes {len(types)} input(s), inputMap gives {len(inputs)}")
        args = []
        for text, (vt, is_array) in zip(inputs, types, strict=True):
            et = edgex_type(vt, is_array)
            try:
                value = parse_value(text, et) if et not in (ValueType.OBJECT, ValueType.OBJECT_ARRAY) else text
            except EdgeError as err:
                raise DeviceAnswered(f"{where}: input {text!r}: {err.message}") from None
            args.append(to_variant(value, vt, is_array, where))
        request = ua.CallMethodRequest(
            ObjectId=self.ua_node(obj, where), MethodId=self.ua_node(method, where), InputArguments=args
        )
        results: list[ua.CallMethodResult] = await self._call("call", lambda c: c.uaclient.call([request]))
        result = results[0]
        if not result.StatusCode.is_good():
            raise node_status(result.StatusCode, where)
        outputs = [v.Value for v in result.OutputArguments or []]
        if not outputs:
            return None
        return outputs[0] if len(outputs) == 1 else outputs

    async def _inputs(self, method: NodeIdText, where: str) -> list[tuple[ua.VariantType, bool]]:
        key = str(method)
        found = self._method_inputs.get(key)
        if found is not None:
            return found
        nodeid = self.ua_node(method, where)

        async def arguments(c: Client) -> list[Any]:
            node = c.get_node(nodeid)
            try:
                child = await node.get_child("0:InputArguments")
            except ua.UaStatusCodeError as err:
                if err.code == ua.StatusCodes.BadNoMatch:
                    return []
                raise
            return list(await child.read_value() or [])

        found = []
        for arg in await self._call("browse", arguments):
            found.append((await self._variant_type(arg.DataType), arg.ValueRank >= 1))
        self._method_inputs[key] = found
        return found

    # -- subscriptions ---------------------------------------------------------------------------
    async def set_items(self, device: str, items: list[MonitoredItem]) -> None:
        """Replace the monitored items of `device` (none: it no longer subscribes)."""
        async with self._lock:
            if self._items.get(device, []) == items:
                return
            old_handles = self._device_handles.pop(device, [])
            if items:
                self._items[device] = items
            else:
                self._items.pop(device, None)
            self._bad_items = {k for k in self._bad_items if k[0] != device}
            client = self._client
            if client is None:
                return
            try:
                await self._delete_items(old_handles)
                await self._create_items(client, items)
            except Exception as err:
                # The session is failing; recovery creates everything again.
                log.warning("monitored items of %s on %s not updated yet: %s", device, self.name, cause(err))

    @property
    def monitored_count(self) -> int:
        return sum(len(g.items) for g in self._groups.values())

    async def _group(self, client: Client, interval: float) -> _Group:
        group = self._groups.get(interval)
        if group is None:
            sub = await client.create_subscription(
                interval, handler=None, queue_maxsize=100_000, overflow=OverflowPolicy.DROP_OLDEST
            )
            group = self._groups[interval] = _Group(sub)
            group.consumer = asyncio.create_task(self._consume(group), name=f"opcua-sub:{self.conn.endpoint}")
        return group

    async def _create_items(self, client: Client, items: Iterable[MonitoredItem]) -> None:
        by_interval: dict[float, list[MonitoredItem]] = {}
        for item in items:
            by_interval.setdefault(item.interval_ms, []).append(item)
        for interval, group_items in by_interval.items():
            group = await self._group(client, interval)
            for start in range(0, len(group_items), MONITORED_ITEMS_PER_CALL):
                chunk = group_items[start : start + MONITORED_ITEMS_PER_CALL]
                requests, handles = [], []
                for item in chunk:
                    where = f"device {item.device!r} resource {item.resource!r} (node {item.node})"
                    try:
                        nodeid = self.ua_node(item.node, where)
                    except EdgeError as err:
                        self._bad_item(item, err.message)
                        continue
                    handle = self._next_handle
                    self._next_handle += 1
                    requests.append(_monitor_request(nodeid, handle, interval, item.deadband))
                    handles.append((handle, item))
                    group.items[handle] = item
                if not requests:
                    continue
                results = await group.sub.create_monitored_items(requests)
                for (handle, item), result in zip(handles, results, strict=True):
                    if isinstance(result, ua.StatusCode):
                        group.items.pop(handle, None)
                        self._bad_item(item, f"the server refused to monitor it ({result.name})")
                        continue
                    group.server_ids[handle] = result
                    self._device_handles.setdefault(item.device, []).append((interval, handle))

    def _bad_item(self, item: MonitoredItem, why: str) -> None:
        key = (item.device, item.resource)
        if key not in self._bad_items:
            self._bad_items.add(key)
            log.warning(
                "device %s resource %s (node %s) is not subscribed: %s", item.device, item.resource, item.node, why
            )

    async def _delete_items(self, handles: list[tuple[float, int]]) -> None:
        by_group: dict[float, list[int]] = {}
        for interval, handle in handles:
            group = self._groups.get(interval)
            if group is None:
                continue
            group.items.pop(handle, None)
            server_id = group.server_ids.pop(handle, None)
            if server_id is not None:
                by_group.setdefault(interval, []).append(server_id)
        for interval, ids in by_group.items():
            await self._groups[interval].sub.unsubscribe(ids)

    async def _stop_groups(self) -> None:
        groups, self._groups = list(self._groups.values()), {}
        tasks = [g.consumer for g in groups if g.consumer is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _consume(self, group: _Group) -> None:
        """Turn data changes into the listener's values, without blocking asyncua's publish loop."""
        listener = self._listener
        async for event in group.sub:
            if not isinstance(event, DataChangeEvent):
                continue
            notification = event.data.monitored_item
            item = group.items.get(notification.ClientHandle)
            if item is None:
                continue  # removed while the notification was on its way
            dv = notification.Value
            if dv is not None and dv.StatusCode is not None and not dv.StatusCode.is_good():
                self._bad_item(item, f"the server reports {dv.StatusCode.name}")
                continue
            ts = dv.SourceTimestamp if dv is not None else None
            try:
                await listener.data_change(item, event.value, datetime_ns(ts) if ts is not None else None)
            except Exception:
                log.exception("data change of %s/%s failed", item.device, item.resource)


def _monitor_request(
    nodeid: ua.NodeId, handle: int, interval: float, deadband: float | None
) -> ua.MonitoredItemCreateRequest:
    params = ua.MonitoringParameters()
    params.ClientHandle = handle
    params.SamplingInterval = interval
    params.QueueSize = 1
    params.DiscardOldest = True
    if deadband:
        mfilter = ua.DataChangeFilter()
        mfilter.Trigger = ua.DataChangeTrigger.StatusValue
        mfilter.DeadbandType = ua.DeadbandType.Absolute
        mfilter.DeadbandValue = deadband
        params.Filter = mfilter
    request = ua.MonitoredItemCreateRequest()
    request.ItemToMonitor = ua.ReadValueId(NodeId=nodeid, AttributeId=ua.AttributeIds.Value)
    request.MonitoringMode = ua.MonitoringMode.Reporting
    request.RequestedParameters = params
    return request
