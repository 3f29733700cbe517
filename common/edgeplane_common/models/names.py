"""EdgeX names: one validation for every name a request can carry (entities, references, events, paths).

Three rules, from go-mod-core-contracts' DTO tags, widened only where EdgeX itself is wider:

- SERVICE (device services): EdgeX's `edgex-dto-rfc3986-unreserved-chars`, ASCII letters, digits and
  `- _ ~ : ; =`, plus `.` (which this project has always accepted).
- IDENTIFIER (devices, profiles, provision watchers): the same set with letters and digits of any script.
  EdgeX 3 only requires these to be non-blank (its TAF suite creates Chinese device, profile and watcher
  names); spaces, `/`, `?` and the like stay refused here because they end up in URL paths and keys.
- TEXT (device resources, device commands, names inside events): any non-blank text without control
  characters or `/`. EdgeX allows spaces and any script here (TAF: "中文测试命令 UINT16"); `/` would make
  a command unaddressable in core-command's paths, control characters would corrupt the NATS protocol.

Every name also has a size cap: the bytes it takes once escaped into a NATS subject token
(`bus.topics.escape`, which turns `.` `*` `>` `%` and blanks into 3 bytes each). Four names go into one
event subject, so 4 x MAX_NAME_BYTES plus the longest fixed prefix and a reply inbox stays far below
nats-server's 4096-byte control line (a longer line makes the server close the connection). `.` and
`..` are refused everywhere: they walk paths.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated

from pydantic import AfterValidator

MAX_NAME_BYTES = 512
"""Largest name, in UTF-8 bytes once escaped into a NATS subject token."""
NATS_MAX_CONTROL_LINE = 4096
"""nats-server's default max_control_line: a PUB/HPUB line longer than this closes the connection."""

# Bytes an escaped character takes beyond its UTF-8 size (see bus.topics._ESCAPES: each becomes %XX).
_ESCAPE_GROWTH = {"%": 2, ".": 2, "*": 2, ">": 2, " ": 2, "\t": 2}
_FAST_LEN = MAX_NAME_BYTES // 4  # no name of this many characters can exceed the cap (4 bytes per char at most)


class NameRule(Enum):
    SERVICE = (re.compile(r"[A-Za-z0-9\-_~:;=.]+"), "use only letters, digits and - _ ~ : ; = .")
    IDENTIFIER = (re.compile(r"[\w\-~:;=.]+"), "use only letters, digits and - _ ~ : ; = . (no spaces or slashes)")
    TEXT = (re.compile(r"[^\x00-\x1f\x7f-\x9f/]+"), "control characters and / are not allowed")

    def __init__(self, pattern: re.Pattern[str], hint: str) -> None:
        self.pattern = pattern
        self.hint = hint


def subject_size(name: str) -> int:
    """UTF-8 bytes of `name` escaped into one NATS subject token."""
    size = len(name.encode())
    for ch, extra in _ESCAPE_GROWTH.items():
        if ch in name:
            size += extra * name.count(ch)
    return size


def shown(value: str, limit: int = 40) -> str:
    """`value` for an error message: a 10,000-character name is not echoed back whole."""
    return repr(value) if len(value) <= limit else f"{value[:limit]!r}... ({len(value)} characters)"


def name_problem(value: object, rule: NameRule) -> str | None:
    """Why `value` is not a valid name under `rule`, or None when it is."""
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if not value.strip():
        return "must not be empty"
    if len(value) > _FAST_LEN and subject_size(value) > MAX_NAME_BYTES:
        return f"{shown(value)} is too long: at most {MAX_NAME_BYTES} bytes (UTF-8, as escaped in a NATS subject)"
    if value in (".", ".."):
        return f"{value!r} is not allowed"
    if not rule.pattern.fullmatch(value):
        return f"{shown(value)} is invalid: {rule.hint}"
    return None


def check_name(value: str, what: str = "name", rule: NameRule = NameRule.IDENTIFIER) -> str:
    """`value` if it is a valid name; ValueError naming `what` otherwise (pydantic turns it into a 400)."""
    problem = name_problem(value, rule)
    if problem:
        raise ValueError(f"{what} {problem}")
    return value


def _validator(what: str, rule: NameRule) -> AfterValidator:
    return AfterValidator(lambda v: check_name(v, what, rule))


# Annotated types for models and for path parameters (FastAPI answers 400 naming the parameter).
ServiceName = Annotated[str, _validator("device service name", NameRule.SERVICE)]
DeviceName = Annotated[str, _validator("device name", NameRule.IDENTIFIER)]
ProfileName = Annotated[str, _validator("profile name", NameRule.IDENTIFIER)]
WatcherName = Annotated[str, _validator("provision watcher name", NameRule.IDENTIFIER)]
ResourceName = Annotated[str, _validator("device resource name", NameRule.TEXT)]
CommandName = Annotated[str, _validator("device command name", NameRule.TEXT)]
SourceName = Annotated[str, _validator("source name", NameRule.TEXT)]
AnyName = Annotated[str, _validator("name", NameRule.TEXT)]
"""A name as an event carries it (deviceName, profileName, sourceName, resourceName), or as a service that does
not own the entity takes it in a path: EdgeX only asks for non-blank text; the cap and the control-character
rule keep whatever subject or key is built from it valid."""

__all__ = [
    "MAX_NAME_BYTES",
    "NATS_MAX_CONTROL_LINE",
    "AnyName",
    "CommandName",
    "DeviceName",
    "NameRule",
    "ProfileName",
    "ResourceName",
    "ServiceName",
    "SourceName",
    "WatcherName",
    "check_name",
    "name_problem",
    "shown",
    "subject_size",
]
