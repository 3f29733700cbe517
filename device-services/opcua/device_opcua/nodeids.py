"""NodeId text in every form OPC UA defines (Part 6, 5.3.1.10), parsed strictly and without I/O.

    [ns=<index>;|nsu=<namespace URI>;]<i=<uint32>|s=<string>|g=<GUID>|b=<base64>>

asyncua's own parser accepts more than it should (a bad GUID or base64 text is found only when used), so a
profile is checked here when a device is added, with a message that names the resource and the problem.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from typing import Literal

IdKind = Literal["i", "s", "g", "b"]


class NodeIdError(ValueError):
    """The text is not a NodeId; the message says why."""


@dataclass(frozen=True, slots=True)
class NodeIdText:
    """A parsed NodeId: a namespace by index or by URI, and an identifier of one of the four kinds."""

    kind: IdKind
    identifier: int | str | uuid.UUID | bytes
    namespace_index: int = 0
    namespace_uri: str | None = None

    def __str__(self) -> str:
        ns = (
            f"nsu={self.namespace_uri};"
            if self.namespace_uri is not None
            else (f"ns={self.namespace_index};" if self.namespace_index else "")
        )
        ident = self.identifier
        text = base64.b64encode(ident).decode() if isinstance(ident, bytes) else str(ident)
        return f"{ns}{self.kind}={text}"


def parse_node_id(text: object) -> NodeIdText:
    """Parse NodeId text; NodeIdError with the reason when it is not one."""
    if not isinstance(text, str):
        raise NodeIdError(f"must be text such as 'ns=2;s=Temperature', got {type(text).__name__} {text!r}")
    rest = text.strip()
    if not rest:
        raise NodeIdError("is empty")
    index = 0
    uri: str | None = None
    if rest.startswith(("ns=", "nsu=")):
        head, sep, rest = rest.partition(";")
        if not sep:
            raise NodeIdError(f"{text!r} has a namespace but no identifier (i=, s=, g= or b=) after ';'")
        key, _, value = head.partition("=")
        if key == "ns":
            if not value.isdigit() or int(value) > 0xFFFF:
                raise NodeIdError(f"{text!r}: namespace index {value!r} is not a number from 0 to 65535")
            index = int(value)
        else:
            if not value:
                raise NodeIdError(f"{text!r}: the namespace URI after 'nsu=' is empty")
            uri = value
    kind, sep, ident = rest.partition("=")
    if not sep or kind not in ("i", "s", "g", "b"):
        raise NodeIdError(
            f"{text!r}: the identifier must start with i= (numeric), s= (string), g= (GUID) or b= (opaque)"
        )
    if kind == "i":
        if not ident.isdigit() or int(ident) > 0xFFFFFFFF:
            raise NodeIdError(f"{text!r}: a numeric identifier must be a number from 0 to 4294967295")
        return NodeIdText("i", int(ident), index, uri)
    if kind == "s":
        if not ident:
            raise NodeIdError(f"{text!r}: the string identifier is empty")
        return NodeIdText("s", ident, index, uri)
    if kind == "g":
        try:
            return NodeIdText("g", uuid.UUID(ident), index, uri)
        except ValueError:
            raise NodeIdError(f"{text!r}: {ident!r} is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)") from None
    try:
        raw = base64.b64decode(ident, validate=True)
    except (binascii.Error, ValueError):
        raise NodeIdError(f"{text!r}: the opaque identifier {ident!r} is not base64") from None
    if not raw:
        raise NodeIdError(f"{text!r}: the opaque identifier is empty")
    return NodeIdText("b", raw, index, uri)
