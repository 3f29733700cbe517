"""Provision watchers: rules that turn discovered devices into provisioned ones."""

from __future__ import annotations

from typing import Any, cast

from core_metadata.application.base import UseCase, lookup_name, refuse_nulls, validated
from core_metadata.application.ports import Kind, Query
from edgeplane_common.errors import ContractInvalid, NotFound
from edgeplane_common.models import ProvisionWatcher
from edgeplane_common.models.metadata import UpdateProvisionWatcher
from edgeplane_common.models.system_event import SystemEventAction

K = Kind.WATCHER


class ProvisionWatcherManager(UseCase):
    async def add(self, watcher: ProvisionWatcher) -> ProvisionWatcher:
        await self._check_references(watcher)
        async with self.lock:
            watcher = self.stamp_new(watcher)
            await self.store.add(K, watcher)
        await self.emit(K, SystemEventAction.ADD, watcher)
        return watcher

    async def patch(self, update: UpdateProvisionWatcher) -> ProvisionWatcher:
        async with self.lock:
            if update.id:
                old = cast(ProvisionWatcher, await self.store.get_by_id(K, update.id))
                # As EdgeX: a PATCH cannot rename; an id and a name that disagree is a bad request.
                if update.name is not None and update.name != old.name:
                    raise ContractInvalid(
                        f"provision watcher name {update.name!r} does not match the name {old.name!r} of its id"
                    )
            elif update.name:
                old = cast(
                    ProvisionWatcher, await self.store.get(K, lookup_name(update.name, "provision watcher name"))
                )
            else:
                raise ContractInvalid("the update names neither a provision watcher id nor a name")
            changes: dict[str, Any] = update.model_dump(exclude_unset=True, exclude={"id", "name"})
            what = f"provision watcher {old.name!r}"
            refuse_nulls(changes, ("name", "service_name", "identifiers", "admin_state"), what)
            base = old.model_dump()
            if "discovered_device" in changes:
                changes["discovered_device"] = {
                    **base["discovered_device"],
                    **(changes["discovered_device"] or {}),
                }
            merged = validated(ProvisionWatcher, {**base, **changes}, what)
            await self._check_references(merged)
            merged = self.stamp_update(merged, old)
            await self.store.replace(K, merged, old_name=old.name)
        await self.emit(K, SystemEventAction.UPDATE, merged)
        return merged

    async def get(self, name: str) -> ProvisionWatcher:
        return cast(ProvisionWatcher, await self.store.get(K, name))

    async def query(self, query: Query, offset: int, limit: int) -> tuple[list[ProvisionWatcher], int]:
        items, total = await self.page(K, query, offset, limit)
        return cast(list[ProvisionWatcher], items), total

    async def delete(self, name: str) -> None:
        async with self.lock:
            watcher = await self.store.delete(K, name)
        await self.emit(K, SystemEventAction.DELETE, watcher)

    async def _check_references(self, watcher: ProvisionWatcher) -> None:
        # As EdgeX 4: the device service need not be registered yet (it picks its watchers up when it
        # registers), but the profile the discovered devices get must exist (404, as EdgeX answers).
        profile = watcher.discovered_device.profile_name
        if profile and not await self.store.exists(Kind.PROFILE, profile):
            raise NotFound(f"provision watcher {watcher.name!r}: device profile {profile!r} does not exist")


__all__ = ["ProvisionWatcherManager"]
