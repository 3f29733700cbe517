"""What a NATS server would refuse, checked before anything is sent.

The server answers a protocol violation (a control line over `max_control_line`, a payload over
`max_payload`) with -ERR and closes the connection, so one request carrying a very long name would cut a
whole service off the bus. Both buses check subjects, headers and sizes here first and raise an error of
the caller's kind (400/413) instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from edgeplane_common.errors import ContractInvalid, LimitExceeded

DEFAULT_MAX_CONTROL_LINE = 4096
"""nats-server's default `max_control_line` (its INFO does not tell it); nats-py's parser has the same cap."""
DEFAULT_MAX_PAYLOAD = 1024 * 1024
"""nats-server's default `max_payload` (the real bus takes the value from the server's INFO)."""
CONTROL_LINE_RESERVE = 512
"""Room kept in a control line for what is not the subject: the verb, reply inbox or JetStream ack subject
(`$JS.ACK.<stream>.<consumer>.<counters>` when the server delivers to a consumer), sid and sizes."""

_BAD_SUBJECT_CHAR = re.compile(r"[\x00-\x20\x7f]")
_BAD_HEADER_NAME_CHAR = re.compile(r"[\x00-\x20\x7f:]")
_BAD_HEADER_VALUE_CHAR = re.compile(r"[\r\n\x00]")


class UnsendableMessage(ContractInvalid):
    """A subject or header the NATS server would refuse (and close the connection for): refused before
    sending. Its cause is the caller's input (a name too long, a space in a subject), hence a 400."""


class MessageTooLarge(LimitExceeded):
    """A message (payload and headers) over the server's `max_payload`: refused before sending (413)."""


def max_subject_bytes(max_control_line: int = DEFAULT_MAX_CONTROL_LINE) -> int:
    """The longest subject (UTF-8 bytes) that keeps every control line carrying it under the server's limit."""
    return max_control_line - CONTROL_LINE_RESERVE


# Subjects found acceptable: a service publishes on the same few subjects over and over (one per device
# source), so a publish pays one set lookup. Bounded, so a flood of distinct subjects cannot grow it.
_GOOD_SUBJECTS: set[tuple[str, bool, int]] = set()
_GOOD_SUBJECTS_MAX = 4096


def check_subject(subject: str, *, wildcards: bool, max_control_line: int = DEFAULT_MAX_CONTROL_LINE) -> None:
    """UnsendableMessage unless the server accepts `subject`: not empty, no whitespace or control character,
    no empty token, short enough; wildcards (`*`, a final `>`) only where subscribing (`wildcards`)."""
    key = (subject, wildcards, max_control_line)
    if key in _GOOD_SUBJECTS:
        return
    _check_subject(subject, wildcards, max_control_line)
    if len(_GOOD_SUBJECTS) >= _GOOD_SUBJECTS_MAX:
        _GOOD_SUBJECTS.clear()
    _GOOD_SUBJECTS.add(key)


def _check_subject(subject: str, wildcards: bool, max_control_line: int) -> None:
    if not subject:
        raise UnsendableMessage("empty NATS subject")
    size = len(subject.encode())
    limit = max_subject_bytes(max_control_line)
    if size > limit:
        raise UnsendableMessage(
            f"NATS subject of {size} bytes is longer than the {limit} the server accepts (its control line is "
            f"{max_control_line} bytes): a name in it is too long ({subject[:60]}...)"
        )
    if _BAD_SUBJECT_CHAR.search(subject):
        raise UnsendableMessage(f"NATS subject {subject[:80]!r} contains whitespace or a control character")
    tokens = subject.split(".")
    for i, token in enumerate(tokens):
        if not token:
            raise UnsendableMessage(f"NATS subject {subject[:80]!r} has an empty token")
        if token in ("*", ">"):
            if not wildcards:
                raise UnsendableMessage(f"cannot publish on {subject[:80]!r}: wildcards only match subscriptions")
            if token == ">" and i != len(tokens) - 1:
                raise UnsendableMessage(f"NATS subject {subject[:80]!r}: '>' must be the last token")


def check_headers(headers: Mapping[str, str] | None) -> int:
    """UnsendableMessage if a header name or value would break the header block (CR/LF, ':' in a name);
    else the header block's size in bytes (it counts against `max_payload`)."""
    if not headers:
        return 0
    size = len("NATS/1.0\r\n\r\n")
    for name, value in headers.items():
        if not name or _BAD_HEADER_NAME_CHAR.search(name):
            raise UnsendableMessage(f"NATS header name {name[:80]!r} is empty or has whitespace, ':' or controls")
        if _BAD_HEADER_VALUE_CHAR.search(value):
            raise UnsendableMessage(f"NATS header {name!r} has a line break in its value")
        size += len(name.encode()) + len(value.encode()) + 4  # ": " and CRLF
    return size


def check_size(subject: str, payload: int, headers: int, max_payload: int) -> None:
    """MessageTooLarge when payload plus header block exceed the server's `max_payload`."""
    if payload + headers > max_payload:
        raise MessageTooLarge(
            f"message of {payload + headers} bytes on {subject[:80]} exceeds the NATS server's max_payload "
            f"of {max_payload} bytes"
        )


def sanitize_header_value(value: str, limit: int = 1024) -> str:
    """A value safe for a header: line breaks become spaces, at most `limit` characters."""
    return _BAD_HEADER_VALUE_CHAR.sub(" ", value)[:limit]


__all__ = [
    "CONTROL_LINE_RESERVE",
    "DEFAULT_MAX_CONTROL_LINE",
    "DEFAULT_MAX_PAYLOAD",
    "MessageTooLarge",
    "UnsendableMessage",
    "check_headers",
    "check_size",
    "check_subject",
    "max_subject_bytes",
    "sanitize_header_value",
]
