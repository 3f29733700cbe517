"""Reading and writing devices: the driver's raw values → EdgeX readings, and settings → raw values.

Shared by the REST API, bus command requests and autoevents, so all three behave the same: LOCKED → 423,
failures counted towards marking the device DOWN, one event per command with all its readings.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any, Final

import orjson

from edgeplane_common import API_VERSION
from edgeplane_common.edgex.profiles import check_readable, check_writable, write_value
from edgeplane_common.edgex.states import check_commandable
from edgeplane_common.edgex.transforms import TransformError, has_transforms, map_read, transform_read
from edgeplane_common.edgex.values import format_float32, format_float64, format_value
from edgeplane_common.errors import ContractInvalid, EdgeError, ServerError
from edgeplane_common.models import Device, Event, OperatingState, Reading, ValueType
from edgeplane_common.models.event import now_ns
from edgeplane_sdk.driver import CommandValue, ProtocolDriver
from edgeplane_sdk.registry import Registry, Source

log = logging.getLogger(__name__)

StateSetter = Callable[[str, OperatingState], Awaitable[None]]


class HealthTracker:
    """Counts consecutive failures per device; marks it DOWN after N and UP on the first success.
    Logs the failure once and the recovery once, not every poll."""

    def __init__(self, set_state: StateSetter, down_after: int) -> None:
        self.set_state = set_state
        self.down_after = down_after
        self.failures: dict[str, int] = {}

    async def failed(self, device: Device, err: Exception) -> None:
        if getattr(err, "device_alive", False):
            # The device answered (e.g. a Modbus exception): refused, but reachable.
            await self.succeeded(device)
            return
        n = self.failures.get(device.name, 0) + 1
        self.failures[device.name] = n
        if n == 1:
            log.warning("device %s: %s", device.name, err)
        if n == self.down_after and device.operating_state is not OperatingState.DOWN:
            log.warning("device %s marked DOWN after %d consecutive failures", device.name, n)
            await self._set(device, OperatingState.DOWN)

    async def succeeded(self, device: Device) -> None:
        if self.failures.pop(device.name, 0) or device.operating_state is OperatingState.DOWN:
            if device.operating_state is OperatingState.DOWN:
                log.info("device %s recovered; marked UP", device.name)
                await self._set(device, OperatingState.UP)
            else:
                log.info("device %s recovered", device.name)

    async def _set(self, device: Device, state: OperatingState) -> None:
        try:
            await self.set_state(device.name, state)
        except EdgeError as err:
            log.warning("could not set device %s %s in core-metadata: %s", device.name, state.value, err)


def _reading(device: Device, profile_name: str, source: Source, i: int, cv: CommandValue) -> Reading:
    res = source.command.resources[i]
    props = res.properties
    vt = props.value_type
    common: dict[str, Any] = {
        "origin": cv.origin,
        "device_name": device.name,
        "resource_name": res.name,
        "profile_name": profile_name,
        "value_type": vt,
        "units": props.units,
        "tags": cv.tags or res.tags,
    }
    if vt is ValueType.BINARY:
        return Reading(**common, binary_value=cv.value, media_type=cv.media_type or props.media_type)
    if vt is ValueType.OBJECT or vt is ValueType.OBJECT_ARRAY:
        return Reading(**common, object_value=cv.value)
    try:
        text = format_value(transform_read(cv.value, props, resource=res.name), vt)
    except TransformError as err:
        # EdgeX publishes the failure as a String reading ("overflow", "NaN") instead of dropping the event.
        log.warning("device %s resource %s: %s", device.name, res.name, err.message)
        return Reading(**{**common, "value_type": ValueType.STRING}, value=err.reading_text)
    mappings = source.command.mappings[i]
    if mappings and text in mappings:
        # A mapped value is text now, so EdgeX marks it String.
        return Reading(**{**common, "value_type": ValueType.STRING}, value=map_read(text, mappings))
    return Reading(**common, value=text)


# ------------------------------------------------------------------------------------------ event JSON, fast
#
# Commands and autoevents build the event in its EdgeX JSON shape directly (what `Event.to_json_dict()` gives),
# without a pydantic model per reading: for a 100-resource device polled a thousand times a second, models
# cost more than everything else together. Per resource, what can be decided once is decided once (`_Spec`);
# a value takes the fast lane only when the reference path (`_reading`) could not have done anything else
# with it. Everything else (Binary/Object, NaN, values of an unexpected kind, transform errors) goes through
# `_reading` itself, so both paths give the same JSON by construction (tests/unit/test_event_json.py).

EventJson = dict[str, Any]
"""An EdgeX event as JSON (camelCase keys, None fields left out), ready to publish or return."""

_PLAIN, _F32, _F64, _INT, _TRANSFORM, _SLOW = range(6)
# Where each of the 32 hex digits of a UUID goes in its 8-4-4-4-12 text.
_UUID_COLUMNS: Final = (*range(8), *range(9, 13), *range(14, 18), *range(19, 23), *range(24, 36))
_UUID_VARIANT: Final = bytes.maketrans(b"0123456789abcdef", b"89ab89ab89ab89ab")


def new_ids(n: int) -> list[str]:
    """`n` random (version 4) UUID strings, as `str(uuid.uuid4())` gives, 20x cheaper: one os.urandom call,
    and the 36-character layout is filled column by column (32 strided copies) instead of id by id."""
    hexed = os.urandom(16 * n).hex().encode()
    out = bytearray(b"-" * (37 * n))  # 36 characters and a comma per id
    for digit, column in enumerate(_UUID_COLUMNS):
        out[column::37] = hexed[digit::32]
    out[14::37] = b"4" * n  # version 4
    out[19::37] = hexed[16::32].translate(_UUID_VARIANT)  # variant 10xx: 8, 9, a or b
    out[36::37] = b"," * n
    ids = out.decode("ascii").split(",")
    ids.pop()
    return ids


class _Spec:
    """What one resource of a source needs to turn a raw value into its reading."""

    __slots__ = ("f32_lane", "kind", "mappings", "name", "props", "tags", "units", "value_type", "vt")

    def __init__(self, source: Source, i: int) -> None:
        res = source.command.resources[i]
        props = res.properties
        vt = props.value_type
        self.name = res.name
        self.props = props
        self.vt = vt
        self.value_type = vt.value
        self.units = props.units
        self.tags = res.tags
        self.mappings = source.command.mappings[i] or None
        if vt in (ValueType.BINARY, ValueType.OBJECT, ValueType.OBJECT_ARRAY):
            self.kind = _SLOW
        elif not vt.is_numeric:
            self.kind = _PLAIN  # transforms never apply: the text is format_value's
        elif has_transforms(props):
            self.kind = _TRANSFORM
        elif vt is ValueType.FLOAT32:
            self.kind = _F32
        elif vt is ValueType.FLOAT64:
            self.kind = _F64
        else:
            self.kind = _INT
        self.f32_lane = self.kind is _F32 and self.mappings is None


class _SourceSpecs:
    __slots__ = ("_templates", "source", "specs")

    def __init__(self, source: Source) -> None:
        self.source = source  # held so the cache key (its id) cannot be reused while cached
        self.specs = [_Spec(source, i) for i in range(len(source.command.resources))]
        self._templates: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def templates(self, device_name: str, profile_name: str) -> list[dict[str, Any]]:
        """Per resource, its reading with every key in place (the model's field order); id, origin and value
        are filled in per reading."""
        key = (device_name, profile_name)
        found = self._templates.get(key)
        if found is None:
            if len(self._templates) > 1024:
                self._templates.clear()
            found = self._templates[key] = [_template(spec, None, device_name, profile_name) for spec in self.specs]
        return found


def _template(spec: _Spec, tags: dict[str, Any] | None, device_name: str, profile_name: str) -> dict[str, Any]:
    r: dict[str, Any] = {
        "id": None,
        "origin": None,
        "deviceName": device_name,
        "resourceName": spec.name,
        "profileName": profile_name,
        "valueType": spec.value_type,
    }
    if spec.units is not None:
        r["units"] = spec.units
    tags = tags or spec.tags
    if tags is not None:
        r["tags"] = tags
    r["value"] = None
    return r


_F32_TEXT: dict[float, str] = {}
"""Float32 reading texts by value (values repeat from poll to poll); never 0.0, which is one key for two texts."""
_F32_TEXT_MAX = 16384


def _text(spec: _Spec, v: Any) -> str | None:
    """The reading text of raw value `v`, or None where only the reference path knows what to do."""
    kind = spec.kind
    if kind is _F32:
        if type(v) is float and v == v:  # NaN: the reference path publishes the "NaN" String reading
            try:
                text = format_float32(v)
            except OverflowError:  # beyond float32: the reference path raises its ServerError
                return None
            if v != 0:
                if len(_F32_TEXT) >= _F32_TEXT_MAX:
                    _F32_TEXT.clear()
                _F32_TEXT[v] = text
            return text
    elif kind is _PLAIN:
        return format_value(v, spec.vt)
    elif kind is _F64:
        if type(v) is float and v == v:
            return format_float64(v)
    elif kind is _INT:
        if type(v) is int:
            return format_value(v, spec.vt)
    elif kind is _TRANSFORM:
        try:
            return format_value(transform_read(v, spec.props, resource=spec.name), spec.vt)
        except TransformError:
            return None  # the reference path logs it and publishes the String reading EdgeX does
    return None


def _readings_json(
    specs: _SourceSpecs, ids: list[str], device: Device, profile_name: str, source: Source, values: list[CommandValue]
) -> list[dict[str, Any]]:
    f32_text = _F32_TEXT
    readings: list[dict[str, Any]] = []
    append = readings.append
    for i, (spec, template, rid, cv) in enumerate(
        zip(specs.specs, specs.templates(device.name, profile_name), ids, values, strict=False)  # ids: one more
    ):
        v = cv.value
        # The fast lane: a Float32 seen before, without mappings or tags of its own.
        if spec.f32_lane and type(v) is float and not cv.tags:
            text = f32_text.get(v)
            if text is not None:
                r = template.copy()
                r["id"] = rid
                r["origin"] = cv.origin
                r["value"] = text
                append(r)
                continue
        text = _text(spec, v)
        if text is None:
            append(_reading(device, profile_name, source, i, cv).to_json_dict())
            continue
        r = template.copy() if not cv.tags else _template(spec, cv.tags, device.name, profile_name)
        r["id"] = rid
        r["origin"] = cv.origin
        mappings = spec.mappings
        if mappings is not None and text in mappings:
            text = map_read(text, mappings)
            r["valueType"] = "String"  # a mapped value is text: EdgeX marks it String
        r["value"] = text
        append(r)
    return readings


def event_from_json(data: EventJson) -> Event:
    """The `Event` model of an event built as JSON (binary values are base64 there, as on the wire)."""
    return Event.model_validate_json(orjson.dumps(data))


class CommandExecutor:
    def __init__(self, registry: Registry, driver: ProtocolDriver, health: HealthTracker, max_ops: int) -> None:
        self.registry = registry
        self.driver = driver
        self.health = health
        self.max_ops = max_ops
        self._specs: dict[int, _SourceSpecs] = {}

    def _source_specs(self, source: Source) -> _SourceSpecs:
        cached = self._specs.get(id(source))
        if cached is None or cached.source is not source:
            if len(self._specs) > 4096:
                self._specs.clear()
            cached = self._specs[id(source)] = _SourceSpecs(source)
        return cached

    async def read_json(self, device_name: str, command: str, *, allow_down: bool = False) -> EventJson:
        """Read a command or resource: one event with all its readings, in its EdgeX JSON shape (what is
        published and returned). LOCKED → 423, DOWN → 423 unless `allow_down`, as autoevents keep polling a
        DOWN device to see it recover."""
        device = self.registry.device(device_name)
        check_commandable(device, allow_down=allow_down)
        source = self.registry.source(device, command)
        check_readable(device.name, source.command)
        if len(source.requests) > self.max_ops:
            raise ContractInvalid(f"{command!r} reads {len(source.requests)} resources; the limit is {self.max_ops}")
        try:
            values = await self.driver.handle_read_commands(device, device.protocols, source.requests)
        except EdgeError as err:
            await self.health.failed(device, err)
            raise
        except Exception as err:  # a driver bug or library error must still answer clearly
            await self.health.failed(device, err)
            raise ServerError(f"reading {command!r} of device {device_name!r} failed: {err}") from err
        await self.health.succeeded(device)
        return self.event_json(device, command, source, values)

    def event_json(
        self, device: Device, command: str, source: Source, values: list[CommandValue], *, cache: bool = True
    ) -> EventJson:
        """The event of raw `values` (one per resource of `source`, in its order) read from `device`: what
        commands, autoevents and values pushed by the driver publish. Without `cache`, what is worked out per
        resource of `source` is not kept for its next event (a source built for one event)."""
        profile = device.profile_name or ""
        specs = self._source_specs(source) if cache else _SourceSpecs(source)
        if len(values) != len(specs.specs):
            raise ServerError(
                f"the driver returned {len(values)} values for the {len(specs.specs)} resources of {command!r}"
            )
        ids = new_ids(len(values) + 1)
        return {
            "apiVersion": API_VERSION,
            "id": ids[-1],
            "deviceName": device.name,
            "profileName": profile,
            "sourceName": command,
            "origin": now_ns(),
            "readings": _readings_json(specs, ids, device, profile, source, values),
        }

    async def write(self, device_name: str, command: str, settings: dict[str, Any]) -> None:
        device = self.registry.device(device_name)
        check_commandable(device)
        source = self.registry.source(device, command)
        resolved = source.command
        check_writable(device.name, resolved)
        requests, values = [], []
        for i, res in enumerate(resolved.resources):
            given = settings.get(res.name, settings.get(command) if len(resolved.resources) == 1 else None)
            if given is None:
                given = resolved.defaults[i]
            if given is None:
                if len(resolved.resources) == 1:
                    raise ContractInvalid(f'no value given for {res.name!r}; send {{"{res.name}": <value>}}')
                continue  # a multi-resource command writes only what it is given
            raw = write_value(device.name, res, resolved.mappings[i], given)
            requests.append(source.requests[i])
            values.append(CommandValue(res.name, res.properties.value_type, raw))
        if not requests:
            raise ContractInvalid(f"no values given for command {command!r}")
        try:
            await self.driver.handle_write_commands(device, device.protocols, requests, values)
        except EdgeError as err:
            await self.health.failed(device, err)
            raise
        except Exception as err:
            await self.health.failed(device, err)
            raise ServerError(f"writing {command!r} of device {device_name!r} failed: {err}") from err
        await self.health.succeeded(device)
