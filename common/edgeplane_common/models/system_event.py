"""EdgeX system events: what core-metadata publishes when metadata is added, updated or deleted."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field

from edgeplane_common import API_VERSION
from edgeplane_common.models.base import ContractModel
from edgeplane_common.models.event import now_ns


class SystemEventType(StrEnum):
    DEVICE = "device"
    DEVICE_PROFILE = "deviceprofile"
    DEVICE_SERVICE = "deviceservice"
    PROVISION_WATCHER = "provisionwatcher"


class SystemEventAction(StrEnum):
    ADD = "add"
    UPDATE = "update"
    DELETE = "delete"


class SystemEvent(ContractModel):
    api_version: str = API_VERSION
    type: SystemEventType
    action: SystemEventAction
    source: str
    owner: str
    tags: dict[str, str] | None = None
    details: Any = None
    timestamp: int = Field(default_factory=now_ns)
