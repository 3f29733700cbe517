"""An EdgeX event as XML, the way EdgeX writes it (`Transform` with `Type: xml`).

EdgeX's TransformToXML calls the Event DTO's `ToXML`, which is Go's `encoding/xml` on the DTO struct: element
names are the Go field names (not the JSON names), embedded structs are flattened, no declaration, no
indentation. So an event is

    <Event><ApiVersion>v3</ApiVersion><Id>…</Id><DeviceName>…</DeviceName><ProfileName>…</ProfileName>
    <SourceName>…</SourceName><Origin>…</Origin><Readings>…</Readings>…<Tags><k>v</k>…</Tags></Event>

(on one line), one `<Readings>` element per reading:

    <Readings><Id>…</Id><Origin>…</Origin><DeviceName>…</DeviceName><ResourceName>…</ResourceName>
    <ProfileName>…</ProfileName><ValueType>…</ValueType><Units>…</Units><Tags>…</Tags>
    <BinaryValue>…</BinaryValue><MediaType>…</MediaType><Value>…</Value><ObjectValue>…</ObjectValue></Readings>

Empty strings still give their element (`<Units></Units>`), as Go does; `Tags` only when there are some, and
`ObjectValue` only for an object reading. Text is escaped as Go's encoder escapes it (`&amp; &lt; &gt; &#34;
&#39; &#x9; &#xA; &#xD;`; a character XML cannot hold becomes U+FFFD); a binary value is its bytes as text, as
Go writes a `[]byte` (not base64).

Where Go's encoder writes something a standard XML parser refuses, or fails, this writes XML that parses:
- a tag key that is not an XML name (EdgeX's own test writes `<1>…</1>`) is encoded as SQL/XML and .NET's
  XmlConvert do: each character that cannot be in a name becomes `_xHHHH_` (`1` -> `_x0031_`), reversibly;
- a tag or object value that is an object or array (Go fails: maps are unsupported) is written as nested
  elements (objects: one element per key; arrays: one element per item, named as their parent).
"""

from __future__ import annotations

import base64
import binascii
import re
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

CONTENT_TYPE = "application/xml"
"""EdgeX's common.ContentTypeXML."""

_GO_ENTITIES = {'"': "&#34;", "'": "&#39;", "\t": "&#x9;", "\n": "&#xA;", "\r": "&#xD;"}
"""Beyond `& < >` (which `escape` always does): what Go's encoding/xml escapes, and how."""
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_NAME_START = "A-Z_a-z\xc0-\xd6\xd8-\xf6\xf8-\u02ff\u0370-\u037d\u037f-\u1fff\u200c-\u200d\u2070-\u218f\u2c00-\u2fef\u3001-\ud7ff\uf900-\ufdcf\ufdf0-\ufffd\U00010000-\U000effff"  # noqa: E501
_NAME_CHAR = _NAME_START + r"\-.0-9\xb7\u0300-\u036f\u203f-\u2040"
_NAME = re.compile(f"[{_NAME_START}][{_NAME_CHAR}]*")
_NAME_START_CHAR = re.compile(f"[{_NAME_START}]")
_NAME_CHAR_ONE = re.compile(f"[{_NAME_CHAR}]")
_ESCAPE_LIKE = re.compile(r"_x[0-9A-Fa-f]{4}_")


def text(value: str) -> str:
    """`value` as XML character data, escaped as Go's encoding/xml escapes it."""
    return escape(_NOT_XML_CHAR.sub("\ufffd", value), _GO_ENTITIES)


def element_name(key: str) -> str:
    """`key` as an element name: itself when it is an XML name (what EdgeX writes), else with each character
    that cannot be there as `_xHHHH_` (and a `_` that would read as such an escape as `_x005F_`)."""
    if _NAME.fullmatch(key) and not _ESCAPE_LIKE.search(key) and ":" not in key:
        return key
    if not key:
        return "_"
    out: list[str] = []
    for i, ch in enumerate(key):
        allowed = _NAME_START_CHAR if i == 0 else _NAME_CHAR_ONE
        if ch == ":" or not allowed.fullmatch(ch) or (ch == "_" and _ESCAPE_LIKE.match(key, i)):
            out.extend(f"_x{b:04X}_" for b in _utf16_units(ch))
        else:
            out.append(ch)
    return "".join(out)


def _utf16_units(ch: str) -> list[int]:
    data = ch.encode("utf-16-be")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def go_float(value: float) -> str:
    """A float64 as Go's encoding/xml writes it (strconv.FormatFloat(v, 'g', -1, 64)): the shortest digits
    that read back, in exponent form below 1e-4 and from 1e6 (`1e+06`, `2.5e-05`)."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    if digits == (0,):
        return "-0" if sign else "0"
    mantissa = "".join(map(str, digits))
    point = len(mantissa) + exponent  # digits before the decimal point
    exp = point - 1
    head = "-" if sign else ""
    if exp < -4 or exp >= 6:
        frac = mantissa[1:]
        return f"{head}{mantissa[0]}{'.' + frac if frac else ''}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{head}0.{'0' * -point}{mantissa}"
    if point >= len(mantissa):
        return f"{head}{mantissa}{'0' * (point - len(mantissa))}"
    return f"{head}{mantissa[:point]}.{mantissa[point:]}"


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    return str(value)


def _element(out: list[str], name: str, value: Any) -> None:
    """`<name>value</name>`; an object as nested elements, an array as one element per item (Go's encoding
    of a slice)."""
    if isinstance(value, list):
        for item in value:
            _element(out, name, item)
        return
    out.append(f"<{name}>")
    if isinstance(value, dict):
        for key, item in value.items():
            _element(out, element_name(str(key)), item)
    else:
        out.append(text(_scalar(value)))
    out.append(f"</{name}>")


def _tags(out: list[str], tags: Any) -> None:
    if tags:
        _element(out, "Tags", tags)


def _binary(value: Any) -> str:
    if not value:
        return ""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError, TypeError):
        return text(str(value))
    return text(raw.decode("utf-8", errors="replace"))


def event_to_xml(event: dict[str, Any]) -> str:
    """The event (as the kernel's `validate_event` gives it) as EdgeX's Event.ToXML writes it."""
    out = [
        "<Event><ApiVersion>",
        text(str(event.get("apiVersion") or "")),
        "</ApiVersion><Id>",
        text(str(event.get("id") or "")),
        "</Id><DeviceName>",
        text(event.get("deviceName") or ""),
        "</DeviceName><ProfileName>",
        text(event.get("profileName") or ""),
        "</ProfileName><SourceName>",
        text(event.get("sourceName") or ""),
        "</SourceName><Origin>",
        str(int(event.get("origin") or 0)),
        "</Origin>",
    ]
    for reading in event.get("readings") or ():
        out += [
            "<Readings><Id>",
            text(str(reading.get("id") or "")),
            "</Id><Origin>",
            str(int(reading.get("origin") or 0)),
            "</Origin><DeviceName>",
            text(reading.get("deviceName") or ""),
            "</DeviceName><ResourceName>",
            text(reading.get("resourceName") or ""),
            "</ResourceName><ProfileName>",
            text(reading.get("profileName") or ""),
            "</ProfileName><ValueType>",
            text(reading.get("valueType") or ""),
            "</ValueType><Units>",
            text(reading.get("units") or ""),
            "</Units>",
        ]
        _tags(out, reading.get("tags"))
        out += [
            "<BinaryValue>",
            _binary(reading.get("binaryValue")),
            "</BinaryValue><MediaType>",
            text(reading.get("mediaType") or ""),
            "</MediaType><Value>",
            text(_scalar(reading.get("value"))),
            "</Value>",
        ]
        if reading.get("objectValue") is not None:
            _element(out, "ObjectValue", reading["objectValue"])
        out.append("</Readings>")
    _tags(out, event.get("tags"))
    out.append("</Event>")
    return "".join(out)


__all__ = ["CONTENT_TYPE", "element_name", "event_to_xml", "go_float", "text"]
