"""EdgeX v3 events and readings (simple, binary, object)."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

from pydantic import Field, field_serializer

from edgeplane_common import API_VERSION
from edgeplane_common.models.base import ContractModel, Str
from edgeplane_common.models.enums import ValueTypeField


def now_ns() -> int:
    return time.time_ns()


def new_id() -> str:
    return str(uuid.uuid4())


class Reading(ContractModel):
    id: str = Field(default_factory=new_id)
    origin: int = Field(default_factory=now_ns)
    device_name: str
    resource_name: str
    profile_name: str
    value_type: ValueTypeField
    units: str | None = None
    tags: dict[str, Any] | None = None
    value: Str | None = None
    binary_value: bytes | None = None
    media_type: str | None = None
    object_value: Any = None

    @field_serializer("binary_value", when_used="json")
    def _standard_base64(self, value: bytes | None) -> str | None:
        # Go's encoding/json writes []byte in standard base64 (+/); pydantic's "base64" is the URL-safe
        # alphabet (-_), which EdgeX clients decoding with the standard alphabet refuse.
        return None if value is None else base64.b64encode(value).decode("ascii")


class Event(ContractModel):
    api_version: str = API_VERSION
    id: str = Field(default_factory=new_id)
    device_name: str
    profile_name: str
    source_name: str
    origin: int = Field(default_factory=now_ns)
    readings: list[Reading] = Field(default_factory=list)
    tags: dict[str, Any] | None = None


class AddEventRequest(ContractModel):
    api_version: str = API_VERSION
    request_id: str | None = None
    event: Event
