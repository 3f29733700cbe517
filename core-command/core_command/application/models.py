"""core-command's EdgeX v3 contracts (core-command.yaml v4.0.2): the commands a device offers."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from edgeplane_common.models import BaseResponse, BaseWithTotalCountResponse, ContractModel
from edgeplane_common.models.enums import ValueType


class CoreCommandParameter(ContractModel):
    """A reading a get returns, or a value a set takes."""

    resource_name: str
    value_type: ValueType


class CoreCommand(ContractModel):
    name: str
    # EdgeX omits a false flag (`omitempty`), so both are None rather than False when not allowed.
    get: bool | None = None
    set: bool | None = None
    path: str
    url: str
    parameters: list[CoreCommandParameter] = Field(default_factory=list)


class DeviceCoreCommand(ContractModel):
    device_name: str
    profile_name: str
    core_commands: list[CoreCommand] = Field(default_factory=list)


class DeviceCoreCommandResponse(BaseResponse):
    device_core_command: DeviceCoreCommand


class MultiDeviceCoreCommandsResponse(BaseWithTotalCountResponse):
    device_core_commands: list[DeviceCoreCommand] = Field(default_factory=list)


class EventResponse(BaseResponse):
    """The reply to a get command (documentation only: the device service's reply is relayed as it is)."""

    event: dict[str, Any] | None = None
