"""Device profiles: what a kind of device offers (resources) and how it is commanded."""

from __future__ import annotations

from typing import Any, TypeVar, cast

from pydantic import ValidationError

from core_metadata.application.base import UseCase, lookup_name, validated
from core_metadata.application.ports import Kind, MetadataStore, Query, SystemEventPublisher
from core_metadata.application.validation import validate_profile
from edgeplane_common.errors import ContractInvalid, Locked, NotFound, StatusConflict
from edgeplane_common.models import DeviceCommand, DeviceProfile, DeviceProfileBasicInfo, DeviceResource
from edgeplane_common.models.metadata import (
    UpdateDeviceCommand,
    UpdateDeviceProfileBasicInfo,
    UpdateDeviceResource,
    describe_errors,
)
from edgeplane_common.models.responses import UpdateTags
from edgeplane_common.models.system_event import SystemEventAction
from edgeplane_common.safe_yaml import YamlLimits, check_profile_counts, load_yaml

K = Kind.PROFILE


def parse_profile_file(content: bytes, limits: YamlLimits | None = None) -> DeviceProfile:
    """An uploaded YAML (or JSON, a YAML subset) profile, within `limits`; errors name the line and column.

    CPU-bound (a large profile takes a noticeable fraction of a second): callers run it off the event loop."""
    limits = limits or YamlLimits()
    data = load_yaml(content, what="the profile file", limits=limits)
    if not isinstance(data, dict):
        raise ContractInvalid("the profile file must hold one YAML mapping (name, deviceResources, ...)")
    check_profile_counts(data, limits, "the profile file")
    try:
        return DeviceProfile.model_validate(data)
    except ValidationError as err:
        raise ContractInvalid(f"invalid device profile: {describe_errors(err)}") from None


class ProfileManager(UseCase):
    def __init__(
        self,
        store: MetadataStore,
        publisher: SystemEventPublisher,
        *,
        strict_changes: bool = False,
        max_resources: int = YamlLimits.max_resources,
        **kw: Any,
    ) -> None:
        super().__init__(store, publisher, **kw)
        self.max_resources = max_resources
        # EdgeX's StrictDeviceProfileChanges: refuse changes to a profile devices use (423).
        self.strict_changes = strict_changes

    async def add(self, profile: DeviceProfile) -> DeviceProfile:
        self._check(profile)
        async with self.lock:
            profile = self.stamp_new(profile.model_copy(update={"linked_device_count": None}))
            await self.store.add(K, profile)
        await self.emit(K, SystemEventAction.ADD, profile)
        return profile

    async def update(self, profile: DeviceProfile) -> DeviceProfile:
        self._check(profile)
        async with self.lock:
            old = await self._find(profile.id, profile.name)
            if old.name != profile.name:
                raise ContractInvalid(f"profile id {profile.id!r} belongs to {old.name!r}; a profile cannot be renamed")
            await self._check_unlocked(old.name)
            new = self.stamp_update(profile.model_copy(update={"linked_device_count": None}), old)
            await self.store.replace(K, new, old_name=old.name)
        await self.emit(K, SystemEventAction.UPDATE, new)
        return new

    async def get(self, name: str) -> DeviceProfile:
        profile = cast(DeviceProfile, await self.store.get(K, name))
        return await self._with_count(profile)

    async def query(self, query: Query, offset: int, limit: int) -> tuple[list[DeviceProfile], int]:
        items, total = await self.page(K, query, offset, limit)
        return [await self._with_count(cast(DeviceProfile, p)) for p in items], total

    async def basic_infos(self, labels: list[str], offset: int, limit: int) -> tuple[list[DeviceProfileBasicInfo], int]:
        profiles, total = await self.query(Query(labels=labels), offset, limit)
        fields = set(DeviceProfileBasicInfo.model_fields)
        return [DeviceProfileBasicInfo.model_validate(p.model_dump(include=fields)) for p in profiles], total

    async def patch_basic_info(self, patch: UpdateDeviceProfileBasicInfo) -> DeviceProfile:
        changes = patch.model_dump(exclude_unset=True, exclude={"id", "name"})

        def apply(p: DeviceProfile) -> DeviceProfile:
            # As EdgeX: basic info cannot rename; an id and a name that disagree is a bad request.
            if patch.id and patch.name is not None and patch.name != p.name:
                raise ContractInvalid(f"profile name {patch.name!r} does not match the name {p.name!r} of its id")
            return p.model_copy(update=changes)

        return await self._modify(patch.id, patch.name, apply, check_lock=False)

    async def patch_tags(self, name: str, resources: list[UpdateTags], commands: list[UpdateTags]) -> DeviceProfile:
        def apply(p: DeviceProfile) -> DeviceProfile:
            return p.model_copy(
                update={
                    "device_resources": _retag(p.name, p.device_resources, resources, "device resource"),
                    "device_commands": _retag(p.name, p.device_commands, commands, "device command"),
                }
            )

        return await self._modify(None, name, apply, check_lock=False)

    async def get_resource(self, profile_name: str, resource_name: str) -> DeviceResource:
        profile = await self.get(profile_name)
        res = profile.resource(resource_name)
        if res is None:
            raise NotFound(f"profile {profile_name!r} has no device resource {resource_name!r}")
        return res

    async def add_resource(self, profile_name: str, resource: DeviceResource) -> DeviceProfile:
        def apply(p: DeviceProfile) -> DeviceProfile:
            if p.resource(resource.name) is not None:
                raise ContractInvalid(f"profile {p.name!r} already has a device resource {resource.name!r}")
            return p.model_copy(update={"device_resources": [*p.device_resources, resource]})

        return await self._modify(None, profile_name, apply)

    async def patch_resource(self, profile_name: str, update: UpdateDeviceResource) -> DeviceProfile:
        def apply(p: DeviceProfile) -> DeviceProfile:
            if p.resource(update.name) is None:
                raise NotFound(f"profile {p.name!r} has no device resource {update.name!r}")
            changes = update.model_dump(exclude_unset=True, exclude={"name"})
            resources = [r.model_copy(update=changes) if r.name == update.name else r for r in p.device_resources]
            return p.model_copy(update={"device_resources": resources})

        return await self._modify(None, profile_name, apply, check_lock=False)

    async def delete_resource(self, profile_name: str, resource_name: str) -> DeviceProfile:
        def apply(p: DeviceProfile) -> DeviceProfile:
            if p.resource(resource_name) is None:
                raise NotFound(f"profile {p.name!r} has no device resource {resource_name!r}")
            users = [
                c.name
                for c in p.device_commands
                if any(o.device_resource == resource_name for o in c.resource_operations)
            ]
            if users:  # EdgeX: the profile without it fails validation, a 400
                raise ContractInvalid(
                    f"device resource {resource_name!r} is used by device command(s) {', '.join(users)}; "
                    "delete those first"
                )
            return p.model_copy(update={"device_resources": [r for r in p.device_resources if r.name != resource_name]})

        return await self._modify(None, profile_name, apply, unused=True)

    async def add_command(self, profile_name: str, command: DeviceCommand) -> DeviceProfile:
        def apply(p: DeviceProfile) -> DeviceProfile:
            if p.command(command.name) is not None:
                raise ContractInvalid(f"profile {p.name!r} already has a device command {command.name!r}")
            return p.model_copy(update={"device_commands": [*p.device_commands, command]})

        return await self._modify(None, profile_name, apply)

    async def patch_command(self, profile_name: str, update: UpdateDeviceCommand) -> DeviceProfile:
        def apply(p: DeviceProfile) -> DeviceProfile:
            if p.command(update.name) is None:
                raise NotFound(f"profile {p.name!r} has no device command {update.name!r}")
            changes = update.model_dump(exclude_unset=True, exclude={"name"})
            commands = [c.model_copy(update=changes) if c.name == update.name else c for c in p.device_commands]
            return p.model_copy(update={"device_commands": commands})

        return await self._modify(None, profile_name, apply, check_lock=False)

    async def delete_command(self, profile_name: str, command_name: str) -> DeviceProfile:
        def apply(p: DeviceProfile) -> DeviceProfile:
            if p.command(command_name) is None:
                raise NotFound(f"profile {p.name!r} has no device command {command_name!r}")
            return p.model_copy(update={"device_commands": [c for c in p.device_commands if c.name != command_name]})

        return await self._modify(None, profile_name, apply, unused=True)

    async def delete(self, name: str) -> None:
        async with self.lock:
            await self.store.get(K, name)
            devices = await self.store.count(Kind.DEVICE, Query(profile_name=name))
            watchers = await self.store.count(Kind.WATCHER, Query(profile_name=name))
            if devices or watchers:
                if self.strict_changes:
                    raise Locked(f"profile {name!r} is in use and strict profile changes are on")
                raise StatusConflict(
                    f"profile {name!r} is still in use by {devices} device(s) and {watchers} provision "
                    "watcher(s); delete or move them first"
                )
            profile = await self.store.delete(K, name)
        await self.emit(K, SystemEventAction.DELETE, profile)

    async def _modify(
        self, profile_id: str | None, name: str | None, apply: Any, *, check_lock: bool = True, unused: bool = False
    ) -> DeviceProfile:
        """`unused`: the change removes something devices of the profile may read (EdgeX refuses it, 409, while
        any device uses the profile)."""
        async with self.lock:
            old = await self._find(profile_id, name)
            if check_lock:
                await self._check_unlocked(old.name)
            if unused and await self.store.count(Kind.DEVICE, Query(profile_name=old.name)):
                raise StatusConflict(f"profile {old.name!r} is in use by devices; delete them first")
            new = apply(old)
            # Re-validate the whole profile, so a change can never leave it inconsistent.
            new = validated(DeviceProfile, new.model_dump(), f"profile {old.name!r}")
            self._check(new)
            new = self.stamp_update(new.model_copy(update={"linked_device_count": None}), old)
            await self.store.replace(K, new, old_name=old.name)
        await self.emit(K, SystemEventAction.UPDATE, new)
        return new

    def _check(self, profile: DeviceProfile) -> None:
        for what, items in (("deviceResources", profile.device_resources), ("deviceCommands", profile.device_commands)):
            if len(items) > self.max_resources:
                raise ContractInvalid(
                    f"profile {profile.name!r} has {len(items)} {what}; at most {self.max_resources} are accepted"
                )
        validate_profile(profile)

    async def _find(self, profile_id: str | None, name: str | None) -> DeviceProfile:
        if profile_id:
            return cast(DeviceProfile, await self.store.get_by_id(K, profile_id))
        if name:
            return cast(DeviceProfile, await self.store.get(K, lookup_name(name, "profile name")))
        raise ContractInvalid("the request names neither a profile id nor a profile name")

    async def _check_unlocked(self, name: str) -> None:
        if self.strict_changes and await self.store.count(Kind.DEVICE, Query(profile_name=name)):
            raise Locked(f"profile {name!r} is in use by devices and strict profile changes are on")

    async def _with_count(self, profile: DeviceProfile) -> DeviceProfile:
        count = await self.store.count(Kind.DEVICE, Query(profile_name=profile.name))
        return profile.model_copy(update={"linked_device_count": count})


_Named = TypeVar("_Named", DeviceResource, DeviceCommand)


def _retag(profile: str, items: list[_Named], updates: list[UpdateTags], what: str) -> list[_Named]:
    by_name = {item.name: item for item in items}
    for upd in updates:
        target = by_name.get(upd.name)
        if target is None:
            raise NotFound(f"profile {profile!r} has no {what} {upd.name!r}")
        by_name[upd.name] = target.model_copy(update={"tags": upd.tags})
    return list(by_name.values())
