"""Ports of core-metadata's use cases: the store, the system-event publisher, the device validator."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, Field

from edgeplane_common.models import Device, DeviceProfile, DeviceService, ProvisionWatcher
from edgeplane_common.models.system_event import SystemEventAction

Entity = Device | DeviceProfile | DeviceService | ProvisionWatcher


class Kind(StrEnum):
    DEVICE = "device"
    PROFILE = "deviceprofile"
    SERVICE = "deviceservice"
    WATCHER = "provisionwatcher"


MODEL: dict[Kind, type[Entity]] = {
    Kind.DEVICE: Device,
    Kind.PROFILE: DeviceProfile,
    Kind.SERVICE: DeviceService,
    Kind.WATCHER: ProvisionWatcher,
}


class Query(BaseModel):
    """Filters (all must match) and a page. `limit=None` means no limit."""

    labels: list[str] = Field(default_factory=list)
    service_name: str | None = None
    profile_name: str | None = None
    parent: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    offset: int = 0
    limit: int | None = None


def index_terms(kind: Kind, entity: Entity) -> set[str]:
    """The secondary-index terms an entity is found under; a Query asks for the same terms."""
    terms = {f"label:{label}" for label in entity.labels}
    if isinstance(entity, Device):
        terms.add(f"service:{entity.service_name}")
        if entity.profile_name:
            terms.add(f"profile:{entity.profile_name}")
        if entity.parent:
            terms.add(f"parent:{entity.parent}")
    elif isinstance(entity, ProvisionWatcher):
        terms.add(f"service:{entity.service_name}")
        if entity.discovered_device.profile_name:
            terms.add(f"profile:{entity.discovered_device.profile_name}")
    elif isinstance(entity, DeviceProfile):
        if entity.manufacturer:
            terms.add(f"manufacturer:{entity.manufacturer}")
        if entity.model:
            terms.add(f"model:{entity.model}")
    return terms


def query_terms(query: Query) -> set[str]:
    terms = {f"label:{label}" for label in query.labels}
    for key in ("service_name", "profile_name", "parent", "manufacturer", "model"):
        value = getattr(query, key)
        if value is not None:
            terms.add(f"{key.removesuffix('_name')}:{value}")
    return terms


class MetadataStore(Protocol):
    """Persistence of metadata entities, keyed by unique name and unique id per kind."""

    async def add(self, kind: Kind, entity: Entity) -> None:
        """Store a new entity; DuplicateName if the name or id exists."""
        ...

    async def add_many(self, kind: Kind, entities: Sequence[Entity]) -> None:
        """Store new entities in a few round trips; DuplicateName (storing none) if a name or id exists."""
        ...

    async def existing(self, kind: Kind, names: Sequence[str]) -> set[str]:
        """Which of `names` are stored (one round trip)."""
        ...

    async def replace(self, kind: Kind, entity: Entity, *, old_name: str) -> None:
        """Overwrite the entity stored as `old_name` (the name may change); NotFound if absent."""
        ...

    async def delete(self, kind: Kind, name: str) -> Entity:
        """Remove and return the entity; NotFound if absent."""
        ...

    async def get(self, kind: Kind, name: str) -> Entity:
        """NotFound if absent."""
        ...

    async def get_by_id(self, kind: Kind, entity_id: str) -> Entity: ...

    async def exists(self, kind: Kind, name: str) -> bool: ...

    async def query(self, kind: Kind, query: Query) -> tuple[list[Entity], int]:
        """Entities matching every filter, ordered by name, paged; and the total before paging."""
        ...

    async def count(self, kind: Kind, query: Query) -> int: ...

    async def close(self) -> None: ...


class SystemEventPublisher(Protocol):
    async def publish(self, kind: Kind, action: SystemEventAction, entity: Entity) -> None:
        """Tell listeners (device services) what changed; never fails the request."""
        ...


class DeviceValidator(Protocol):
    async def validate(self, device: Device) -> str | None:
        """Ask the owning device service to validate `device`.

        Returns None when it accepted, or a note when validation was deferred (service not running).
        Raises ContractInvalid when the service rejected the device, ServiceUnavailable when it did
        not answer in time."""
        ...
