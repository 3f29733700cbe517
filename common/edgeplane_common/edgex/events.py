"""Decoding and validation of EdgeX events from the stream, on the hot path: a plain-dict check, ~10x cheaper
than the pydantic models. Used by core-data for every event it stores, and by every consumer of the stream.

`validate_event` takes decoded JSON (an `Event` object), checks what EdgeX's DTO validation checks (event id
a UUID, names non-empty, origin set, at least one reading, each reading's valueType known and its value
parsable as that type, binary readings with a mediaType) and returns the validated event: its document in
EdgeX's canonical form (camelCase keys in EdgeX order, reading ids, device/profile names and origins filled
in), that document encoded, and per reading what consumers index or evaluate (resource, origin, profile,
valueType, numeric text), in one pass. Keys are matched in any casing, as EdgeX does; unknown keys are
dropped. Every problem is a ContractInvalid naming the field.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import uuid
from typing import Any, NamedTuple

import orjson

from edgeplane_common import API_VERSION
from edgeplane_common.edgex.values import FLOAT32_MAX, INT_RANGES, NUMERIC_TYPES, parse_bool
from edgeplane_common.errors import ContractInvalid
from edgeplane_common.models.enums import ValueType, normalize_value_type
from edgeplane_common.models.names import NameRule, name_problem


class ReadingRef(NamedTuple):
    """What consumers index of one reading. `value` is the text of a numeric value (None otherwise)."""

    resource: str
    origin: int
    profile: str
    value_type: str
    value: str | None


class EventRecord(NamedTuple):
    """A validated event: `doc` is its EdgeX JSON (as stored and returned), `blob` that JSON encoded.

    Named tuples: built for every event on the ingestion path, where a frozen dataclass costs 5x more."""

    id: str
    device: str
    profile: str
    source: str
    origin: int
    readings: tuple[ReadingRef, ...]
    doc: dict[str, Any]
    blob: bytes

    @classmethod
    def from_doc(cls, doc: dict[str, Any], blob: bytes | None = None) -> EventRecord:
        """From a normalized event document (see `normalize_event`, or a stored blob)."""
        numeric = NUMERIC_TYPES
        refs = tuple(
            [
                ReadingRef(
                    r["resourceName"],
                    r["origin"],
                    r["profileName"],
                    r["valueType"],
                    r.get("value") if r["valueType"] in numeric else None,
                )
                for r in doc["readings"]
            ]
        )
        return cls(
            doc["id"],
            doc["deviceName"],
            doc["profileName"],
            doc["sourceName"],
            doc["origin"],
            refs,
            doc,
            blob if blob is not None else orjson.dumps(doc),
        )


READING_ID_NAMESPACE = uuid.UUID("6f1c5e2a-3b1d-4c8e-9a55-0e2f4d6b7c81")
"""Readings sent without an id get uuid5(namespace, "<event id>/<index>"): the same on every delivery."""

_EVENT_KEYS = ("apiVersion", "id", "deviceName", "profileName", "sourceName", "origin", "readings", "tags")
_READING_KEYS = (
    "id",
    "origin",
    "deviceName",
    "resourceName",
    "profileName",
    "valueType",
    "units",
    "tags",
    "value",
    "binaryValue",
    "mediaType",
    "objectValue",
)
_REQUEST_KEYS = ("apiVersion", "requestId", "event")
_FOLD: dict[tuple[str, ...], dict[str, str]] = {
    keys: {k.lower(): k for k in keys} for keys in (_EVENT_KEYS, _READING_KEYS, _REQUEST_KEYS)
}
_EXACT: dict[tuple[str, ...], frozenset[str]] = {keys: frozenset(keys) for keys in _FOLD}
_READING_EXACT = _EXACT[_READING_KEYS]

# The kernel's integer ranges by plain name: value types here are the strings of decoded JSON.
_INT_RANGES = {vt.value: bounds for vt, bounds in INT_RANGES.items()}
_MIN_I64, _MAX_I64 = INT_RANGES[ValueType.INT64]  # origins are Go int64
_INT_TEXT = re.compile(r"[+-]?\d+\Z")
_BINARY = "Binary"
_OBJECTS = frozenset({"Object", "ObjectArray"})
MAX_NESTING = 64
"""Deepest nesting accepted in an objectValue or tags (levels of objects and arrays). EdgeX sets none, but
orjson refuses to encode past 255 levels, and nothing a device reports comes near this."""


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether `value` nests objects/arrays more than `limit` levels (iterative: no recursion limit)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if type(item) is dict:
            children: Any = item.values()
        elif type(item) is list:
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if type(child) is dict or type(child) is list)
    return False


def _shallow(value: Any, where: str) -> Any:
    if _deeper_than(value, MAX_NESTING):
        raise ContractInvalid(f"{where} is nested deeper than {MAX_NESTING} levels")
    return value


_VALUE_TYPES = {v.value: v.value for v in ValueType}
_UUID_TEXT = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")


def _fold(data: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """`data` with its keys in EdgeX's camelCase (any casing accepted); unknown keys dropped."""
    if _EXACT[keys].issuperset(data):
        return data
    fold = _FOLD[keys]
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = fold.get(key.lower()) if isinstance(key, str) else None
        if name is not None:
            out[name] = value
    return out


# Names already found valid: a stream repeats the same few device, profile and resource names, so the
# hot path pays one set lookup per name. Bounded, so a flood of distinct names cannot grow it.
_GOOD_NAMES: set[str] = set()
_GOOD_NAMES_MAX = 4096


def _check_name(value: str, where: str, key: str) -> None:
    """ContractInvalid unless `value` is a valid event name (non-blank text, capped so its subject fits)."""
    if value in _GOOD_NAMES:
        return
    problem = name_problem(value, NameRule.TEXT)
    if problem:
        raise ContractInvalid(f"{where}.{key} {problem}")
    if len(_GOOD_NAMES) >= _GOOD_NAMES_MAX:
        _GOOD_NAMES.clear()
    _GOOD_NAMES.add(value)


def _name(data: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = data.get(key)
    if value is None or value == "":
        if default is not None:
            return default
        raise ContractInvalid(f"{where}.{key} is required")
    if not isinstance(value, str) or not value.strip():
        raise ContractInvalid(f"{where}.{key} must be a non-empty string, got {value!r}")
    _check_name(value, where, key)
    return value


def _origin(data: dict[str, Any], where: str, default: int | None = None) -> int:
    value = data.get("origin")
    if value is None or value == 0:
        if default is not None:
            return default
        raise ContractInvalid(f"{where}.origin is required (Unix time in nanoseconds)")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ContractInvalid(f"{where}.origin must be an integer (Unix time in nanoseconds), got {value!r}")
    if not _MIN_I64 <= value <= _MAX_I64:
        raise ContractInvalid(f"{where}.origin {value} does not fit a 64-bit integer")
    return value


def is_uuid(text: Any) -> bool:
    return isinstance(text, str) and _UUID_TEXT.match(text) is not None


def _scalar_text(value: Any) -> Any:
    # EdgeX carries simple values as strings; accept JSON scalars and keep their text.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return value


def _check_int(value_type: str, text: str) -> str | None:
    if not _INT_TEXT.match(text):
        return f"{text!r} is not an integer"
    low, high = _INT_RANGES[value_type]
    if not low <= int(text) <= high:
        return f"{text} is out of the {value_type} range"
    return None


def _check_float(value_type: str, text: str) -> str | None:
    try:
        number = float(text)
    except ValueError:
        return f"{text!r} is not a number"
    if "_" in text or text != text.strip():  # Python's float() is more lenient than Go's ParseFloat
        return f"{text!r} is not a number"
    if value_type == "Float32" and math.isfinite(number) and abs(number) > FLOAT32_MAX:
        return f"{text} is out of the Float32 range"
    return None


def _check_bool(value_type: str, text: str) -> str | None:
    return None if parse_bool(text) is not None else f"{text!r} is not a boolean (true or false)"


def _check_array(value_type: str, text: str) -> str | None:
    inner = text.strip()
    if not (inner.startswith("[") and inner.endswith("]")):
        return f"a {value_type} value is written [v1, v2, ...]"
    base = value_type.removesuffix("Array")
    check = _CHECKS.get(base)
    if check is None or not inner[1:-1].strip():
        return None
    for element in inner[1:-1].split(","):
        problem = check(base, element.strip())
        if problem:
            return problem
    return None


_CHECKS = {
    **{t: _check_int for t in _INT_RANGES},
    "Float32": _check_float,
    "Float64": _check_float,
    "Bool": _check_bool,
}
_CHECKS.update({v.value: _check_array for v in ValueType if v.is_array and v.value != "StringArray"})


def check_simple_value(value_type: str, text: str) -> str | None:
    """Why `text` is not a valid `value_type` value (EdgeX's ValidateValue), or None when it is."""
    check = _CHECKS.get(value_type)
    return None if check is None else check(value_type, text)


def _reading_slow(
    data: dict[str, Any], index: int, event: dict[str, Any], complete: bool
) -> tuple[str, str, int, str, str, str]:
    """The checks and defaults of the common fields of a reading that is not in the usual shape; without
    `complete`, a missing deviceName, profileName or origin is an error, as in EdgeX's DTO validation."""
    where = f"event.readings[{index}]"
    try:
        value_type = normalize_value_type(data.get("valueType")).value
    except ValueError as err:
        raise ContractInvalid(f"{where}.valueType: {err}") from None
    rid = data.get("id")
    if rid is None or rid == "":
        rid = str(uuid.uuid5(READING_ID_NAMESPACE, f"{event['id']}/{index}"))
    elif not isinstance(rid, str):
        raise ContractInvalid(f"{where}.id must be a string")
    return (
        value_type,
        rid,
        _origin(data, where, default=event["origin"] if complete else None),
        _name(data, "deviceName", where, default=event["deviceName"] if complete else None),
        _name(data, "resourceName", where),
        _name(data, "profileName", where, default=event["profileName"] if complete else None),
    )


def _reading(raw: Any, index: int, event: dict[str, Any], complete: bool) -> tuple[dict[str, Any], ReadingRef]:
    if type(raw) is not dict or not _READING_EXACT.issuperset(raw):
        if not isinstance(raw, dict):
            raise ContractInvalid(f"event.readings[{index}] must be an object")
        raw = _fold(raw, _READING_KEYS)
    data: dict[str, Any] = raw
    value_type = _VALUE_TYPES.get(data.get("valueType"))  # type: ignore[arg-type]
    rid = data.get("id")
    origin = data.get("origin")
    device = data.get("deviceName")
    resource = data.get("resourceName")
    profile = data.get("profileName")
    if (
        value_type is None
        or type(rid) is not str
        or not rid
        or type(origin) is not int
        or origin == 0
        or not _MIN_I64 <= origin <= _MAX_I64
        or type(device) is not str
        or not device
        or device.isspace()
        or type(resource) is not str
        or not resource
        or resource.isspace()
        or type(profile) is not str
        or not profile
        or profile.isspace()
    ):
        value_type, rid, origin, device, resource, profile = _reading_slow(data, index, event, complete)
    elif device not in _GOOD_NAMES or resource not in _GOOD_NAMES or profile not in _GOOD_NAMES:
        where = f"event.readings[{index}]"
        _check_name(device, where, "deviceName")
        _check_name(resource, where, "resourceName")
        _check_name(profile, where, "profileName")
    out: dict[str, Any] = {
        "id": rid,
        "origin": origin,
        "deviceName": device,
        "resourceName": resource,
        "profileName": profile,
        "valueType": value_type,
    }
    units = data.get("units")
    if units is not None and units != "":
        if type(units) is not str:
            raise ContractInvalid(f"event.readings[{index}].units must be a string")
        out["units"] = units
    tags = data.get("tags")
    if tags is not None:
        if type(tags) is not dict:
            raise ContractInvalid(f"event.readings[{index}].tags must be an object")
        if tags:
            out["tags"] = _shallow(tags, f"event.readings[{index}].tags")
    if value_type == _BINARY:
        binary = data.get("binaryValue")
        if binary is not None:
            if not isinstance(binary, str):
                raise ContractInvalid(f"event.readings[{index}].binaryValue must be base64 text")
            media = data.get("mediaType")
            if not isinstance(media, str) or not media:
                raise ContractInvalid(f"event.readings[{index}].mediaType is required with binaryValue")
            out["binaryValue"] = binary
            out["mediaType"] = media
    elif value_type in _OBJECTS:
        if data.get("objectValue") is not None:
            out["objectValue"] = _shallow(data["objectValue"], f"event.readings[{index}].objectValue")
    else:
        value = data.get("value")
        if value is not None:  # a null reading has no value (EdgeX NullReading)
            if type(value) is not str:
                value = _scalar_text(value)
                if not isinstance(value, str):
                    raise ContractInvalid(f"event.readings[{index}].value must be a string, got {type(value).__name__}")
            check = _CHECKS.get(value_type)
            problem = None if check is None else check(value_type, value)
            if problem:
                raise ContractInvalid(f"event.readings[{index}].value does not match valueType {value_type}: {problem}")
            out["value"] = value
            if value_type in NUMERIC_TYPES:
                return out, ReadingRef(resource, origin, profile, value_type, value)
    return out, ReadingRef(resource, origin, profile, value_type, None)


def validate_event(raw: Any, *, complete_readings: bool = True) -> EventRecord:
    """The stored form of an EdgeX `Event` object (see the module docstring) with what the store indexes;
    ContractInvalid if invalid.

    `complete_readings=False` refuses readings without deviceName, profileName or origin instead of taking
    them from the event: EdgeX's REST API does (400), and clients test for it."""
    if not isinstance(raw, dict):
        raise ContractInvalid("event must be a JSON object")
    data = _fold(raw, _EVENT_KEYS)
    event_id = data.get("id")
    if event_id is None or event_id == "":
        raise ContractInvalid("event.id is required (a UUID)")
    if not is_uuid(event_id):
        raise ContractInvalid(f"event.id must be a UUID, got {event_id!r}")
    event: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "id": event_id,
        "deviceName": _name(data, "deviceName", "event"),
        "profileName": _name(data, "profileName", "event"),
        "sourceName": _name(data, "sourceName", "event"),
        "origin": _origin(data, "event"),
    }
    readings = data.get("readings")
    if not isinstance(readings, list) or not readings:
        raise ContractInvalid("event.readings must be a non-empty array")
    if len(readings) > 0xFFFF:
        raise ContractInvalid(f"event.readings has {len(readings)} readings; at most 65535 per event")
    docs = []
    refs = []
    for index, raw_reading in enumerate(readings):
        doc, ref = _reading(raw_reading, index, event, complete_readings)
        docs.append(doc)
        refs.append(ref)
    event["readings"] = docs
    tags = data.get("tags")
    if tags is not None:
        if not isinstance(tags, dict):
            raise ContractInvalid("event.tags must be an object")
        if tags:
            event["tags"] = _shallow(tags, "event.tags")
    try:
        blob = orjson.dumps(event)
    except TypeError as err:  # what the checks above should have caught: still the sender's input
        raise ContractInvalid(f"event cannot be encoded as JSON: {err}") from None
    return EventRecord(
        event_id,
        event["deviceName"],
        event["profileName"],
        event["sourceName"],
        event["origin"],
        tuple(refs),
        event,
        blob,
    )


def normalize_event(raw: Any) -> dict[str, Any]:
    """The stored form of an EdgeX `Event` object; ContractInvalid if invalid."""
    return validate_event(raw).doc


def unwrap_request(raw: Any) -> tuple[Any, str | None]:
    """(event, requestId) of an AddEventRequest body."""
    if not isinstance(raw, dict):
        raise ContractInvalid("the request body must be an AddEventRequest JSON object")
    data = _fold(raw, _REQUEST_KEYS)
    request_id = data.get("requestId")
    if request_id is not None and request_id != "" and not is_uuid(request_id):
        raise ContractInvalid(f"requestId must be a UUID, got {request_id!r}")
    if "event" not in data:
        raise ContractInvalid("the request body has no event (AddEventRequest: {apiVersion, requestId, event})")
    return data["event"], request_id or None


def decode_event_message(data: bytes) -> Any:
    """The event (or AddEventRequest) a bus message carries, straight from the message's bytes: the EdgeX
    envelope is read as plain JSON, without building the envelope model (the event path's largest cost after
    validation), and its payload goes through `decode_event_payload`. ContractInvalid if it is not one."""
    try:
        envelope = orjson.loads(data)
    except orjson.JSONDecodeError as err:
        raise ContractInvalid(f"message is not an EdgeX message envelope: {err}") from None
    if type(envelope) is not dict:
        raise ContractInvalid("message is not an EdgeX message envelope (a JSON object)")
    if "payload" not in envelope:
        envelope = {k.lower(): v for k, v in envelope.items() if isinstance(k, str)}
        envelope["contentType"] = envelope.get("contenttype")
    content_type = envelope.get("contentType")
    return decode_event_payload(envelope.get("payload"), content_type if isinstance(content_type, str) else None)


def decode_event_payload(payload: Any, content_type: str | None = None) -> Any:
    """The event (or AddEventRequest) a bus message's payload carries: a JSON object, or JSON text / base64
    JSON bytes (Go device services marshal a []byte payload as base64). ContractInvalid otherwise."""
    if isinstance(payload, dict):
        return payload
    if isinstance(payload, str):
        if "cbor" in (content_type or "").lower():
            raise ContractInvalid("CBOR event payloads are not supported; publish JSON")
        text = payload.strip()
        if not text.startswith("{"):
            try:
                text = base64.b64decode(text, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError) as err:
                raise ContractInvalid(f"payload is neither JSON nor base64 JSON: {err}") from None
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as err:
            raise ContractInvalid(f"payload is not valid JSON: {err}") from None
    raise ContractInvalid(f"payload must be an event object, got {type(payload).__name__}")
