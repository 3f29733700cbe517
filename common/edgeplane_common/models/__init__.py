"""EdgeX v3 data contracts (pydantic v2)."""

from edgeplane_common.models.base import (
    BaseRequest,
    BaseResponse,
    BaseWithIdResponse,
    BaseWithTotalCountResponse,
    ContractModel,
)
from edgeplane_common.models.enums import AdminState, OperatingState, ReadWrite, ValueType
from edgeplane_common.models.event import AddEventRequest, Event, Reading
from edgeplane_common.models.metadata import (
    AutoEvent,
    Device,
    DeviceCommand,
    DeviceProfile,
    DeviceProfileBasicInfo,
    DeviceResource,
    DeviceService,
    DiscoveredDevice,
    ProvisionWatcher,
    ResourceOperation,
    ResourceProperties,
    Retention,
    describe_errors,
)
from edgeplane_common.models.system_event import SystemEvent, SystemEventAction, SystemEventType

__all__ = [
    "AddEventRequest",
    "AdminState",
    "AutoEvent",
    "BaseRequest",
    "BaseResponse",
    "BaseWithIdResponse",
    "BaseWithTotalCountResponse",
    "ContractModel",
    "Device",
    "DeviceCommand",
    "DeviceProfile",
    "DeviceProfileBasicInfo",
    "DeviceResource",
    "DeviceService",
    "DiscoveredDevice",
    "Event",
    "OperatingState",
    "ProvisionWatcher",
    "ReadWrite",
    "Reading",
    "ResourceOperation",
    "ResourceProperties",
    "Retention",
    "SystemEvent",
    "SystemEventAction",
    "SystemEventType",
    "ValueType",
    "describe_errors",
]
