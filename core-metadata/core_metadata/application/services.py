"""Device services: the registry of services that own devices."""

from __future__ import annotations

from typing import Any, cast

from core_metadata.application.base import UseCase, lookup_name, refuse_nulls, validated
from core_metadata.application.ports import Kind, Query
from edgeplane_common.errors import ContractInvalid, StatusConflict
from edgeplane_common.models import DeviceService
from edgeplane_common.models.metadata import UpdateDeviceService
from edgeplane_common.models.names import NameRule
from edgeplane_common.models.system_event import SystemEventAction

K = Kind.SERVICE


class DeviceServiceManager(UseCase):
    async def add(self, service: DeviceService) -> DeviceService:
        async with self.lock:
            service = self.stamp_new(service)
            await self.store.add(K, service)
        await self.emit(K, SystemEventAction.ADD, service)
        return service

    async def patch(self, update: UpdateDeviceService) -> DeviceService:
        async with self.lock:
            old = await _find(self, update.id, update.name)
            changes: dict[str, Any] = update.model_dump(exclude_unset=True, exclude={"id", "name"})
            what = f"device service {old.name!r}"
            refuse_nulls(changes, ("base_address", "admin_state"), what)
            merged = validated(DeviceService, {**old.model_dump(), **changes}, what)
            merged = self.stamp_update(merged, old)
            await self.store.replace(K, merged, old_name=old.name)
        await self.emit(K, SystemEventAction.UPDATE, merged)
        return merged

    async def get(self, name: str) -> DeviceService:
        return cast(DeviceService, await self.store.get(K, name))

    async def all(self, labels: list[str], offset: int, limit: int) -> tuple[list[DeviceService], int]:
        items, total = await self.page(K, Query(labels=labels), offset, limit)
        return cast(list[DeviceService], items), total

    async def delete(self, name: str) -> None:
        async with self.lock:
            await self.store.get(K, name)
            devices = await self.store.count(Kind.DEVICE, Query(service_name=name))
            watchers = await self.store.count(Kind.WATCHER, Query(service_name=name))
            if devices or watchers:
                raise StatusConflict(
                    f"device service {name!r} is still in use by {devices} device(s) and "
                    f"{watchers} provision watcher(s); delete or move them first"
                )
            service = await self.store.delete(K, name)
        await self.emit(K, SystemEventAction.DELETE, service)


async def _find(uc: UseCase, entity_id: str | None, name: str | None) -> DeviceService:
    if entity_id:
        service = cast(DeviceService, await uc.store.get_by_id(K, entity_id))
        # As EdgeX: a PATCH cannot rename; an id and a name that disagree is a bad request.
        if name is not None and name != service.name:
            raise ContractInvalid(f"device service name {name!r} does not match the name {service.name!r} of its id")
        return service
    if name:
        return cast(DeviceService, await uc.store.get(K, lookup_name(name, "device service name", NameRule.SERVICE)))
    raise ContractInvalid("the update names neither an id nor a name")
