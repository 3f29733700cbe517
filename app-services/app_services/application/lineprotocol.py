"""EdgeX events as InfluxDB line protocol, built directly (influxdb-client's Point path is ~9x slower).

One line per reading: `measurement,tag=v field=value timestamp` with the reading's origin (ns) as timestamp.
Measurement, tags and field key are templates over the event's and reading's names (`{profileName}`,
`{deviceName}`, `{sourceName}`, `{resourceName}`, `{valueType}`, `{units}`); a tag whose value renders empty
is left out, as InfluxDB refuses empty tag values. Integers are written `12i`, unsigned `12u`, floats as
EdgeX sent them, booleans `true`/`false`, strings quoted. Arrays, binary and object readings, NaN and the
infinities have no line-protocol form and are skipped (counted in `skipped`).

Escaping follows the line-protocol spec: measurement `,` and space; tag keys, tag values and field keys `,`,
`=` and space; string field values `"` and `\\`. A newline cannot appear anywhere in a line, so one in a name
is written as the two characters `\\n`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app_services.application.errors import PipelineError

_INTS = frozenset({"Int8", "Int16", "Int32", "Int64"})
_UINTS = frozenset({"Uint8", "Uint16", "Uint32", "Uint64"})
_FLOATS = frozenset({"Float32", "Float64"})

_MEASUREMENT = str.maketrans({",": "\\,", " ": "\\ ", "\n": "\\n", "\r": "\\r"})
_KEY = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ ", "\n": "\\n", "\r": "\\r"})
_STRING = str.maketrans({'"': '\\"', "\\": "\\\\", "\n": "\\n"})

PLACEHOLDERS = ("deviceName", "profileName", "sourceName", "resourceName", "valueType", "units")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")

Render = Callable[[dict[str, Any], dict[str, Any]], str]


def escape_measurement(text: str) -> str:
    return text.translate(_MEASUREMENT)


def escape_key(text: str) -> str:
    """A tag key, tag value or field key."""
    return text.translate(_KEY)


def escape_string(text: str) -> str:
    return text.translate(_STRING)


def template(text: str, where: str) -> Render:
    """`text` with `{name}` placeholders, compiled once into a function of (event, reading)."""
    lookup = {name.lower(): name for name in PLACEHOLDERS}
    parts: list[tuple[bool, str]] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(text):
        if m.start() > pos:
            parts.append((False, text[pos : m.start()]))
        name = lookup.get(m.group(1).strip().lower())
        if name is None:
            raise PipelineError(f"{where}: unknown placeholder {{{m.group(1)}}}; known: {', '.join(PLACEHOLDERS)}")
        parts.append((True, name))
        pos = m.end()
    if pos < len(text):
        parts.append((False, text[pos:]))

    def value(event: dict[str, Any], reading: dict[str, Any], name: str) -> str:
        if name in ("resourceName", "valueType", "units"):
            return str(reading.get(name) or "")
        return str(reading.get(name) or event.get(name) or "")

    if len(parts) == 1 and parts[0][0]:
        only = parts[0][1]
        return lambda event, reading: value(event, reading, only)
    if all(not is_var for is_var, _ in parts):
        constant = text
        return lambda event, reading: constant
    return lambda event, reading: "".join(value(event, reading, t) if v else t for v, t in parts)


def field_value(reading: dict[str, Any]) -> str | None:
    """The line-protocol text of a reading's value, or None when it has none."""
    value = reading.get("value")
    if value is None:
        return None
    value_type = reading.get("valueType")
    if value_type in _FLOATS:
        # Only NaN and the infinities spell a letter other than the exponent's e.
        if "n" in value or "N" in value or "i" in value or "I" in value:
            try:
                if not math.isfinite(float(value)):
                    return None
            except ValueError:
                return None
        return str(value)
    if value_type in _INTS:
        return f"{value}i"
    if value_type in _UINTS:
        return f"{value}u"
    if value_type == "Bool":
        return "true" if str(value).lower() in ("true", "1", "t") else "false"
    if value_type == "String":
        return f'"{escape_string(str(value))}"'
    return None


MAX_CACHED_SERIES = 10_000
"""Series (measurement, tags, field key) whose rendered prefix is remembered; a stream repeats a few."""


@dataclass
class LineProtocol:
    measurement: str = "{profileName}"
    field_key: str = "{resourceName}"
    tags: dict[str, str] = field(default_factory=lambda: {"device": "{deviceName}", "source": "{sourceName}"})
    event_tags: bool = True
    """Add the event's own tags (EdgeX `tags`, e.g. from AddTags) whose values are text or numbers."""
    skipped: int = 0

    def __post_init__(self) -> None:
        self._measurement = template(self.measurement, "Measurement")
        self._field = template(self.field_key, "FieldKey")
        # Tags sorted by key: InfluxDB's recommended order (and the one it stores in).
        self._tags = [(escape_key(k), template(v, f"Tags {k}")) for k, v in sorted(self.tags.items())]
        self._cache: dict[tuple[Any, ...], str] = {}

    def _tag_text(self, event: dict[str, Any], reading: dict[str, Any]) -> str:
        tags: dict[str, str] = {}
        for key, render in self._tags:
            text = render(event, reading)
            if text:
                tags[key] = escape_key(text)
        if self.event_tags:
            for source in (event.get("tags"), reading.get("tags")):
                if source:
                    for k, v in source.items():
                        if isinstance(v, str | int | float) and not isinstance(v, bool) and str(v) != "":
                            tags[escape_key(k)] = escape_key(str(v))
        return "".join(f",{k}={tags[k]}" for k in sorted(tags))

    def _prefix(self, event: dict[str, Any], reading: dict[str, Any]) -> str | None:
        """`measurement,tags field=` of a reading (None when the measurement or field key renders empty)."""
        measurement = self._measurement(event, reading)
        key = self._field(event, reading)
        if not measurement or not key:
            return None
        return f"{escape_measurement(measurement)}{self._tag_text(event, reading)} {escape_key(key)}="

    def lines(self, event: dict[str, Any]) -> list[str]:
        out: list[str] = []
        cache = self._cache
        cacheable = not (self.event_tags and event.get("tags"))
        base = (event.get("deviceName"), event.get("profileName"), event.get("sourceName"))
        for reading in event["readings"]:
            value = field_value(reading)
            if value is None:
                self.skipped += 1
                continue
            if cacheable and not reading.get("tags"):
                series = (
                    *base,
                    reading.get("deviceName"),
                    reading.get("profileName"),
                    reading.get("resourceName"),
                    reading.get("units"),
                    reading.get("valueType"),
                )
                prefix = cache.get(series)
                if prefix is None:
                    prefix = self._prefix(event, reading)
                    if prefix is None:
                        self.skipped += 1
                        continue
                    if len(cache) >= MAX_CACHED_SERIES:
                        cache.clear()
                    cache[series] = prefix
            else:
                prefix = self._prefix(event, reading)
                if prefix is None:
                    self.skipped += 1
                    continue
            out.append(f"{prefix}{value} {reading.get('origin') or event['origin']}")
        return out

    def encode(self, event: dict[str, Any]) -> bytes:
        return "\n".join(self.lines(event)).encode()


__all__ = ["PLACEHOLDERS", "LineProtocol", "escape_key", "escape_measurement", "escape_string", "field_value"]
