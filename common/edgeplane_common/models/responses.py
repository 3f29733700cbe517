"""Request envelopes and responses of the metadata API (EdgeX v3 shapes)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from edgeplane_common.models.base import (
    BaseRequest,
    BaseResponse,
    BaseWithIdResponse,
    BaseWithTotalCountResponse,
    ContractModel,
)
from edgeplane_common.models.metadata import (
    Device,
    DeviceCommand,
    DeviceProfile,
    DeviceProfileBasicInfo,
    DeviceResource,
    DeviceService,
    ProvisionWatcher,
    UpdateDevice,
    UpdateDeviceCommand,
    UpdateDeviceProfileBasicInfo,
    UpdateDeviceResource,
    UpdateDeviceService,
    UpdateProvisionWatcher,
    profile_problem,
)
from edgeplane_common.models.names import ProfileName


class AddDeviceRequest(BaseRequest):
    device: Device


class UpdateDeviceRequest(BaseRequest):
    device: UpdateDevice


class _ProfileRequest(BaseRequest):
    profile: DeviceProfile

    @model_validator(mode="after")
    def _consistent(self) -> _ProfileRequest:
        # EdgeX validates the profile inside the DTO: one broken profile refuses the whole batch (400).
        problem = profile_problem(self.profile)
        if problem:
            raise ValueError(problem)
        return self


class AddDeviceProfileRequest(_ProfileRequest):
    pass


class UpdateDeviceProfileRequest(_ProfileRequest):
    pass


class DeviceProfileBasicInfoRequest(BaseRequest):
    basic_info: UpdateDeviceProfileBasicInfo = Field(alias="basicinfo")


class UpdateTags(ContractModel):
    name: str
    tags: dict[str, Any] | None = None


class DeviceProfileTagsRequest(BaseRequest):
    device_resources: list[UpdateTags] = Field(default_factory=list)
    device_commands: list[UpdateTags] = Field(default_factory=list)


class AddDeviceServiceRequest(BaseRequest):
    service: DeviceService


class UpdateDeviceServiceRequest(BaseRequest):
    service: UpdateDeviceService


class AddProvisionWatcherRequest(BaseRequest):
    provision_watcher: ProvisionWatcher = Field(alias="provisionwatcher")


class UpdateProvisionWatcherRequest(BaseRequest):
    provision_watcher: UpdateProvisionWatcher = Field(alias="provisionwatcher")


class AddDeviceResourceRequest(BaseRequest):
    profile_name: ProfileName
    resource: DeviceResource


class UpdateDeviceResourceRequest(BaseRequest):
    profile_name: ProfileName
    resource: UpdateDeviceResource


class AddDeviceCommandRequest(BaseRequest):
    profile_name: ProfileName
    device_command: DeviceCommand


class UpdateDeviceCommandRequest(BaseRequest):
    profile_name: ProfileName
    device_command: UpdateDeviceCommand


class DeviceResponse(BaseResponse):
    device: Device


class MultiDevicesResponse(BaseWithTotalCountResponse):
    devices: list[Device]


class DeviceProfileResponse(BaseResponse):
    profile: DeviceProfile


class MultiDeviceProfilesResponse(BaseWithTotalCountResponse):
    profiles: list[DeviceProfile]


class MultiDeviceProfileBasicInfosResponse(BaseWithTotalCountResponse):
    profiles: list[DeviceProfileBasicInfo]


class DeviceResourceResponse(BaseResponse):
    resource: DeviceResource


class DeviceServiceResponse(BaseResponse):
    service: DeviceService


class MultiDeviceServicesResponse(BaseWithTotalCountResponse):
    services: list[DeviceService]


class ProvisionWatcherResponse(BaseResponse):
    provision_watcher: ProvisionWatcher


class MultiProvisionWatchersResponse(BaseWithTotalCountResponse):
    provision_watchers: list[ProvisionWatcher]


__all__ = [
    "AddDeviceCommandRequest",
    "AddDeviceProfileRequest",
    "AddDeviceRequest",
    "AddDeviceResourceRequest",
    "AddDeviceServiceRequest",
    "AddProvisionWatcherRequest",
    "BaseResponse",
    "BaseWithIdResponse",
    "BaseWithTotalCountResponse",
    "DeviceProfileBasicInfoRequest",
    "DeviceProfileResponse",
    "DeviceProfileTagsRequest",
    "DeviceResourceResponse",
    "DeviceResponse",
    "DeviceServiceResponse",
    "MultiDeviceProfileBasicInfosResponse",
    "MultiDeviceProfilesResponse",
    "MultiDeviceServicesResponse",
    "MultiDevicesResponse",
    "MultiProvisionWatchersResponse",
    "ProvisionWatcherResponse",
    "UpdateDeviceCommandRequest",
    "UpdateDeviceProfileRequest",
    "UpdateDeviceRequest",
    "UpdateDeviceResourceRequest",
    "UpdateDeviceServiceRequest",
    "UpdateProvisionWatcherRequest",
    "UpdateTags",
]
