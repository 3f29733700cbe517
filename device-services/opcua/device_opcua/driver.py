"""The OPC UA ProtocolDriver: one shared session per endpoint, batched reads, typed writes, method calls, and
autoEvents served by subscriptions (each data change is pushed as an event, nothing is polled)."""

from __future__ import annotations

import logging
from typing import Any

from device_opcua.attributes import (
    OpcuaConnection,
    ResourceAttributes,
    check_profile,
    parse_attributes,
    parse_protocols,
)
from device_opcua.browse import discover_endpoints
from device_opcua.convert import ValueMismatch, to_raw
from device_opcua.security import credentials
from device_opcua.session import MonitoredItem, Session
from edgeplane_common.durations import parse_duration
from edgeplane_common.edgex.profiles import resolve
from edgeplane_common.errors import ContractInvalid, EdgeError
from edgeplane_common.models import AutoEvent, Device, DeviceProfile
from edgeplane_common.models.event import now_ns
from edgeplane_sdk.driver import CommandRequest, CommandValue, DiscoveredDevice, ProtocolDriver
from edgeplane_sdk.service import DeviceServiceSDK

log = logging.getLogger(__name__)


class OpcuaDriver(ProtocolDriver):
    def __init__(
        self,
        *,
        keepalive: float = 1.0,
        max_backoff: float = 10.0,
        subscriptions: bool = True,
        discovery_endpoints: list[str] | None = None,
    ) -> None:
        self.keepalive = keepalive
        self.max_backoff = max_backoff
        self.use_subscriptions = subscriptions
        self.discovery_endpoints = discovery_endpoints or []
        self.sdk: DeviceServiceSDK | None = None
        self.sessions: dict[OpcuaConnection, Session] = {}
        self._device_conn: dict[str, OpcuaConnection] = {}
        self._attrs: dict[int, tuple[list[CommandRequest], list[ResourceAttributes]]] = {}
        self._mismatch_logged: set[tuple[str, str]] = set()
        self._plans: dict[tuple[int, str], _ReadPlan] = {}

    # -- lifecycle -------------------------------------------------------------------------------
    async def initialize(self, sdk: DeviceServiceSDK) -> None:
        self.sdk = sdk

    async def validate_device(self, device: Device) -> None:
        parse_protocols(device.protocols, device=device.name)
        if device.profile_name and self.sdk is not None:
            profile = await self.sdk.load_profile(device.profile_name)
            if profile is not None:
                check_profile(profile)

    async def add_device(self, device: Device) -> None:
        conn = parse_protocols(device.protocols, device=device.name)
        self._device_conn[device.name] = conn
        session = self.sessions.get(conn)
        if session is None:
            session = self.sessions[conn] = Session(
                conn,
                lambda: credentials(conn, self.sdk.secrets if self.sdk is not None else None),
                self,
                keepalive=self.keepalive,
                max_backoff=self.max_backoff,
            )
            session.start()
        session.devices.add(device.name)
        if not session.up and session.reason != "not connected yet" and self.sdk is not None:
            await self.sdk.set_device_reachable(device.name, False, session.reason)
        await session.set_items(device.name, self._monitored_items(device))

    async def update_device(self, device: Device) -> None:
        # Operating-state changes (ours, among others) arrive here too: keep the session unless the connection
        # itself changed, and touch the monitored items only if they changed.
        conn = parse_protocols(device.protocols, device=device.name)
        session = self.sessions.get(conn)
        if self._device_conn.get(device.name) != conn or session is None:
            await self.remove_device(device)
            await self.add_device(device)
            return
        await session.set_items(device.name, self._monitored_items(device))

    async def remove_device(self, device: Device) -> None:
        conn = self._device_conn.pop(device.name, None)
        if conn is None:
            return
        session = self.sessions.get(conn)
        if session is None:
            return
        session.devices.discard(device.name)
        await session.set_items(device.name, [])
        if not session.devices:
            del self.sessions[conn]
            await session.close()

    async def stop(self, force: bool = False) -> None:
        sessions, self.sessions = list(self.sessions.values()), {}
        for session in sessions:
            await session.close()

    # -- subscriptions ---------------------------------------------------------------------------
    def _profile(self, device: Device) -> DeviceProfile | None:
        if self.sdk is None or not device.profile_name:
            return None
        try:
            return self.sdk.profile(device.profile_name)
        except EdgeError:
            return None

    def _source_items(self, device: Device, ae: AutoEvent) -> list[MonitoredItem] | None:
        """The monitored items of an autoEvent, or None when it cannot be a subscription (a method call, an
        unknown source): the SDK polls those."""
        profile = self._profile(device)
        if profile is None:
            return None
        try:
            command = resolve(profile, ae.source_name)
            interval_ms = parse_duration(ae.interval) * 1000
        except (EdgeError, ValueError):
            return None
        items = []
        for res in command.resources:
            try:
                attrs = parse_attributes(res.attributes, resource=res.name)
            except EdgeError:
                return None
            if attrs.node is None:
                return None
            items.append(
                MonitoredItem(device.name, res.name, res.properties.value_type, attrs.node, interval_ms, attrs.deadband)
            )
        return items

    def subscribes(self, device: Device, auto_event: AutoEvent) -> bool:
        return self.use_subscriptions and self._source_items(device, auto_event) is not None

    def _monitored_items(self, device: Device) -> list[MonitoredItem]:
        if not self.use_subscriptions or device.admin_state.value == "LOCKED":
            return []
        seen: dict[str, MonitoredItem] = {}
        for ae in device.auto_events:
            for item in self._source_items(device, ae) or []:
                known = seen.get(item.resource)
                if known is None or item.interval_ms < known.interval_ms:
                    seen[item.resource] = item  # one item per resource: the fastest interval asked for
        return list(seen.values())

    async def session_state(self, session: Session, up: bool, reason: str | None) -> None:
        if self.sdk is None:
            return
        for name in sorted(session.devices):
            await self.sdk.set_device_reachable(name, up, None if up else f"OPC UA session: {reason}")

    async def data_change(self, item: MonitoredItem, value: Any, source_ns: int | None) -> None:
        sdk = self.sdk
        if sdk is None:
            return
        try:
            raw = to_raw(value, item.value_type, f"node {item.node} (resource {item.resource!r})")
        except ValueMismatch as err:
            key = (item.device, item.resource)
            if key not in self._mismatch_logged:
                self._mismatch_logged.add(key)
                log.warning("device %s: %s", item.device, err.message)
            return
        cv = CommandValue(item.resource, item.value_type, raw, origin=source_ns or now_ns())
        try:
            # Awaited in the subscription's consumer: events keep their order, and the events stream's bounded
            # outstanding acks hold the consumer back instead of growing memory.
            await sdk.push_async_values(item.device, [cv])
        except EdgeError as err:
            if err.status_code not in (404, 423):  # removed or LOCKED meanwhile: nothing to publish
                log.debug("value of %s/%s not published: %s", item.device, item.resource, err)

    # -- commands --------------------------------------------------------------------------------
    def _session(self, device: Device) -> Session:
        conn = self._device_conn.get(device.name)
        if conn is None or conn not in self.sessions:
            raise EdgeError(f"device {device.name!r} is not connected (was it added to this service?)")
        return self.sessions[conn]

    def _attributes(self, requests: list[CommandRequest]) -> list[ResourceAttributes]:
        cached = self._attrs.get(id(requests))
        if cached is not None and cached[0] is requests:
            return cached[1]
        attrs = [parse_attributes(r.attributes, resource=r.resource_name) for r in requests]
        if len(self._attrs) > 4096:
            self._attrs.clear()
        self._attrs[id(requests)] = (requests, attrs)
        return attrs

    def _plan(self, device: Device, requests: list[CommandRequest]) -> _ReadPlan:
        """How a command of a device is read: worked out once per device and command, not per poll."""
        key = (id(requests), device.name)
        found = self._plans.get(key)
        if found is None or found.requests is not requests:
            if len(self._plans) > 4096:
                self._plans.clear()
            found = self._plans[key] = _ReadPlan(device, requests, self._attributes(requests))
        return found

    async def handle_read_commands(
        self, device: Device, protocols: dict[str, dict[str, Any]], requests: list[CommandRequest]
    ) -> list[CommandValue]:
        session = self._session(device)
        plan = self._plan(device, requests)
        wheres = plan.wheres
        raw: list[Any] = [None] * len(requests)
        origins: list[int | None] = [None] * len(requests)
        if plan.nodes:
            values = await session.read_values(plan.nodes)
            for i, (value, ts) in zip(plan.reads, values, strict=True):
                raw[i] = to_raw(value, requests[i].value_type, wheres[i])
                origins[i] = ts
        for i, a in plan.methods:
            where = wheres[i]
            raw[i] = to_raw(
                await session.call(a.object_id, a.method_id, a.inputs, where),  # type: ignore[arg-type]
                requests[i].value_type,
                where,
            )
        now = now_ns()
        return [
            CommandValue(r.resource_name, r.value_type, v, origin=o or now)
            for r, v, o in zip(requests, raw, origins, strict=True)
        ]

    async def handle_write_commands(
        self,
        device: Device,
        protocols: dict[str, dict[str, Any]],
        requests: list[CommandRequest],
        values: list[CommandValue],
    ) -> None:
        session = self._session(device)
        attrs = self._attributes(requests)
        writes = []
        for req, attr, cv in zip(requests, attrs, values, strict=True):
            if attr.node is None:
                raise ContractInvalid(f"resource {req.resource_name!r} is a method call (objectId/methodId): read it")
            writes.append((attr.node, cv.value, _where(device, req)))
        await session.write(writes)

    # -- discovery -------------------------------------------------------------------------------
    async def discover(self) -> list[DiscoveredDevice]:
        return await discover_endpoints(self.discovery_endpoints)


class _ReadPlan:
    """A command's requests split into one batched Read (node resources) and method calls."""

    __slots__ = ("methods", "nodes", "reads", "requests", "wheres")

    def __init__(self, device: Device, requests: list[CommandRequest], attrs: list[ResourceAttributes]) -> None:
        self.requests = requests  # held so the cache key (its id) cannot be reused while cached
        self.wheres = [_where(device, r) for r in requests]
        self.reads = [i for i, a in enumerate(attrs) if a.node is not None]
        self.nodes = [(node, self.wheres[i]) for i in self.reads if (node := attrs[i].node) is not None]
        self.methods = [(i, a) for i, a in enumerate(attrs) if a.method_id is not None and a.object_id is not None]


def _where(device: Device, req: CommandRequest) -> str:
    node = req.attributes.get("nodeId") or req.attributes.get("methodId")
    return f"device {device.name!r} resource {req.resource_name!r} (node {node})"
