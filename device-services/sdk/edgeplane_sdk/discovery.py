"""Provision-watcher matching (device-sdk-go's autodiscovery), pure: which discovered devices become which
core-metadata devices. The runtime does the I/O (driver.discover, the watchers, adding the devices).

As in EdgeX: a watcher applies when it belongs to this service and is UNLOCKED. Its `identifiers` map a
protocol property name to a regular expression, searched (not anchored, as Go's `regexp.MatchString`) in the
property's value; every identifier must match. `blockingIdentifiers` map a property name to values that
exclude the device when equal. The first applicable watcher by name wins; the device is added with the
watcher's discoveredDevice profile, adminState, autoEvents and properties, named as discovered.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from edgeplane_common.models import AdminState, Device, OperatingState, ProvisionWatcher
from edgeplane_common.models.metadata import describe_errors
from edgeplane_sdk.driver import DiscoveredDevice

log = logging.getLogger(__name__)


def _text(value: Any) -> str:
    """A property value as text, as EdgeX formats it (`%v`): booleans lower case."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _values(device: DiscoveredDevice, name: str) -> list[str]:
    """The values of property `name` in every protocol of `device` that has it."""
    return [_text(props[name]) for props in device.protocols.values() if name in props]


def identifiers_match(device: DiscoveredDevice, watcher: ProvisionWatcher) -> bool:
    """Every identifier is a property of the device, and matches wherever the device has it."""
    for name, pattern in watcher.identifiers.items():
        values = _values(device, name)
        if not values or not all(re.search(pattern, v) for v in values):
            return False
    return True


def blocked(device: DiscoveredDevice, watcher: ProvisionWatcher) -> bool:
    """A blocking identifier's value equals one of the device's values for that property."""
    for name, refused in (watcher.blocking_identifiers or {}).items():
        if any(v in refused for v in _values(device, name)):
            return True
    return False


def matching_watcher(
    device: DiscoveredDevice, watchers: Iterable[ProvisionWatcher], service: str
) -> ProvisionWatcher | None:
    """The first watcher (by name) of `service` that is UNLOCKED, whose identifiers match and whose blocking
    identifiers do not."""
    for watcher in sorted(watchers, key=lambda w: w.name):
        if watcher.service_name != service or watcher.admin_state is not AdminState.UNLOCKED:
            continue
        if identifiers_match(device, watcher) and not blocked(device, watcher):
            return watcher
    return None


def device_for(discovered: DiscoveredDevice, watcher: ProvisionWatcher) -> Device:
    """The core-metadata device a discovered device becomes under `watcher` (ValidationError if it cannot)."""
    template = watcher.discovered_device
    return Device(
        name=discovered.name,
        description=discovered.description,
        labels=list(discovered.labels),
        service_name=watcher.service_name,
        profile_name=template.profile_name,
        admin_state=template.admin_state,
        operating_state=OperatingState.UP,
        auto_events=list(template.auto_events),
        protocols=discovered.protocols,
        properties=template.properties,
    )


def to_provision(
    discovered: Iterable[DiscoveredDevice], watchers: list[ProvisionWatcher], service: str, known: set[str]
) -> list[tuple[Device, ProvisionWatcher]]:
    """The devices to add for what a discovery found, each with the watcher that matched it; devices whose
    name is already `known` are skipped, as are names core-metadata would refuse (logged)."""
    out: list[tuple[Device, ProvisionWatcher]] = []
    seen = set(known)
    for found in discovered:
        if found.name in seen:
            continue
        watcher = matching_watcher(found, watchers, service)
        if watcher is None:
            log.debug("discovered device %s matches no provision watcher", found.name)
            continue
        try:
            device = device_for(found, watcher)
        except ValidationError as err:
            log.warning("discovered device %r cannot be added: %s", found.name, describe_errors(err))
            continue
        seen.add(found.name)
        out.append((device, watcher))
    return out
