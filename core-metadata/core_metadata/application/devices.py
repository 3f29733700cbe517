"""Devices: instances of a profile, owned by a device service."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from core_metadata.application.base import UseCase, lookup_name, refuse_nulls, validated
from core_metadata.application.pagination import check_range, page_limit
from core_metadata.application.ports import DeviceValidator, Kind, MetadataStore, Query, SystemEventPublisher
from edgeplane_common.errors import ContractInvalid, DuplicateName, EdgeError, NotFound, StatusConflict
from edgeplane_common.models import Device, DeviceProfile
from edgeplane_common.models.metadata import UpdateDevice
from edgeplane_common.models.system_event import SystemEventAction

log = logging.getLogger(__name__)
K = Kind.DEVICE


@dataclass
class _References:
    """What a batch has looked up already: each distinct service and profile is read (and indexed) once."""

    services: dict[str, bool] = field(default_factory=dict)
    profiles: dict[str, frozenset[str] | None] = field(default_factory=dict)  # its source names; None: missing
    batch: set[str] = field(default_factory=set)


class DeviceManager(UseCase):
    def __init__(
        self, store: MetadataStore, publisher: SystemEventPublisher, validator: DeviceValidator, **kw: Any
    ) -> None:
        super().__init__(store, publisher, **kw)
        self.validator = validator

    async def add(
        self, device: Device, *, force: bool = False, bypass_validation: bool = False
    ) -> tuple[Device, str | None]:
        """Add (or, with `force`, replace) a device. Returns it and a note for the caller, if any."""
        await self._check_references(device)
        note = None if bypass_validation else await self.validator.validate(device)
        async with self.lock:
            if await self.store.exists(K, device.name):
                if not force:
                    raise DuplicateName(f"device name {device.name!r} already exists")
                old = await self.store.get(K, device.name)
                device = self.stamp_update(device, old)
                await self.store.replace(K, device, old_name=old.name)
                action = SystemEventAction.UPDATE
            else:
                device = self.stamp_new(device)
                await self.store.add(K, device)
                action = SystemEventAction.ADD
        await self.emit(K, action, device)
        return device, note

    async def add_many(
        self, devices: Sequence[Device], *, force: bool = False, bypass_validation: bool = False
    ) -> list[tuple[Device, str | None] | EdgeError]:
        """`add` for each device, in order, each with its own outcome; the store work of the whole batch
        takes a few round trips (references looked up once per distinct name, one existence check, chunked
        transactions), so 17,000 devices take seconds, not half a minute."""
        results: list[tuple[Device, str | None] | EdgeError] = []
        refs = _References()
        checked: list[tuple[int, Device, str | None]] = []
        for i, device in enumerate(devices):
            try:
                await self._check_references(device, refs)
                note = None if bypass_validation else await self.validator.validate(device)
            except EdgeError as err:
                results.append(err)
                continue
            results.append(ContractInvalid("not processed"))  # replaced below
            checked.append((i, device, note))
            refs.batch.add(device.name)  # a later device of the batch may name it as its parent
        emitted: list[tuple[SystemEventAction, Device]] = []
        async with self.lock:
            existing = await self.store.existing(K, [d.name for _, d, _ in checked])
            new: list[tuple[int, Device, str | None]] = []
            seen: set[str] = set()
            for i, device, note in checked:
                if device.name in seen or (device.name in existing and not force):
                    results[i] = DuplicateName(f"device name {device.name!r} already exists")
                    continue
                seen.add(device.name)
                if device.name in existing:
                    try:
                        old = await self.store.get(K, device.name)
                        device = self.stamp_update(device, old)
                        await self.store.replace(K, device, old_name=old.name)
                    except EdgeError as err:
                        results[i] = err
                        continue
                    results[i] = (device, note)
                    emitted.append((SystemEventAction.UPDATE, device))
                else:
                    new.append((i, self.stamp_new(device), note))
            try:
                await self.store.add_many(K, [d for _, d, _ in new])
                added = new
            except DuplicateName:  # an id a caller supplied is taken: one at a time, to say which
                added = []
                for i, device, note in new:
                    try:
                        await self.store.add(K, device)
                        added.append((i, device, note))
                    except EdgeError as err:
                        results[i] = err
            except EdgeError as err:
                added = []
                for i, _, _ in new:
                    results[i] = err
            for i, device, note in added:
                results[i] = (device, note)
                emitted.append((SystemEventAction.ADD, device))
        for action, device in emitted:
            await self.emit(K, action, device)
        return results

    async def patch(self, update: UpdateDevice, *, bypass_validation: bool = False) -> tuple[Device, str | None]:
        old = await self._find(update.id, update.name)
        changes = update.model_dump(exclude_unset=True, exclude={"id", "name"})
        what = f"device {old.name!r}"
        refuse_nulls(changes, ("name", "admin_state", "operating_state", "service_name", "profile_name"), what)
        merged = validated(Device, {**old.model_dump(), **changes}, what)
        await self._check_references(merged)
        note = None if bypass_validation else await self.validator.validate(merged)
        async with self.lock:
            current = await self._find(update.id, old.name)
            merged = self.stamp_update(merged, current)
            await self.store.replace(K, merged, old_name=current.name)
        await self.emit(K, SystemEventAction.UPDATE, merged)
        return merged, note

    async def get(self, name: str) -> Device:
        return cast(Device, await self.store.get(K, name))

    async def get_by_id(self, device_id: str) -> Device:
        return cast(Device, await self.store.get_by_id(K, device_id))

    async def exists(self, name: str) -> bool:
        return await self.store.exists(K, name)

    async def query(self, query: Query, offset: int, limit: int) -> tuple[list[Device], int]:
        items, total = await self.page(K, query, offset, limit)
        return cast(list[Device], items), total

    async def descendants(
        self, parent: str, labels: list[str], max_levels: int, offset: int, limit: int
    ) -> tuple[list[Device], int]:
        """Devices below `parent` in the parent tree, up to `max_levels` (0 = all levels)."""
        limit = page_limit(offset, limit, self.max_result_count)
        every, _ = await self.store.query(K, Query(labels=labels))
        children: dict[str, list[Device]] = {}
        for d in cast(list[Device], every):
            if d.parent:
                children.setdefault(d.parent, []).append(d)
        found: list[Device] = []
        level, frontier = 1, [parent]
        while frontier and (max_levels == 0 or level <= max_levels):
            nxt = [c for p in frontier for c in children.get(p, [])]
            found.extend(nxt)
            frontier = [c.name for c in nxt]
            level += 1
        found.sort(key=lambda d: d.name)
        check_range(offset, len(found))
        return found[offset : offset + limit], len(found)

    async def delete(self, name: str) -> None:
        async with self.lock:
            await self.store.get(K, name)
            if await self.store.count(K, Query(parent=name)):
                raise StatusConflict(f"device {name!r} has child devices; delete or re-parent them first")
            device = await self.store.delete(K, name)
        await self.emit(K, SystemEventAction.DELETE, device)

    async def _find(self, device_id: str | None, name: str | None) -> Device:
        if device_id:
            device = await self.get_by_id(device_id)
            # As EdgeX: a PATCH cannot rename; an id and a name that disagree is a bad request.
            if name is not None and name != device.name:
                raise ContractInvalid(
                    f"device name {name!r} does not match the name {device.name!r} of id {device_id!r}"
                )
            return device
        if name:
            return await self.get(lookup_name(name, "device name"))
        raise ContractInvalid("the update names neither a device id nor a device name")

    async def _check_references(self, device: Device, refs: _References | None = None) -> None:
        refs = refs or _References()
        if device.service_name not in refs.services:
            refs.services[device.service_name] = await self.store.exists(Kind.SERVICE, device.service_name)
        if not refs.services[device.service_name]:
            raise ContractInvalid(f"device {device.name!r}: device service {device.service_name!r} does not exist")
        parent = device.parent
        if parent == device.name:
            raise ContractInvalid(f"device {device.name!r} cannot be its own parent")
        if parent and parent not in refs.batch and not await self.store.exists(K, parent):
            raise ContractInvalid(f"device {device.name!r}: parent device {device.parent!r} does not exist")
        if not device.profile_name:
            if device.auto_events:
                raise ContractInvalid(f"device {device.name!r}: autoEvents need a profileName")
            return
        if device.profile_name not in refs.profiles:
            try:
                profile = cast(DeviceProfile, await self.store.get(Kind.PROFILE, device.profile_name))
                found: frozenset[str] | None = frozenset(r.name for r in profile.device_resources) | {
                    c.name for c in profile.device_commands
                }
            except NotFound:
                found = None
            refs.profiles[device.profile_name] = found
        sources = refs.profiles[device.profile_name]
        if sources is None:
            raise ContractInvalid(f"device {device.name!r}: device profile {device.profile_name!r} does not exist")
        for ae in device.auto_events:
            if ae.source_name not in sources:
                raise ContractInvalid(
                    f"device {device.name!r}: autoEvent sourceName {ae.source_name!r} is neither a device "
                    f"resource nor a device command of profile {device.profile_name!r}"
                )
