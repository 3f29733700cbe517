"""Clients of other edgeplane/EdgeX services, shared by every service: core-metadata over REST, a cache of its
devices and profiles, device commands over the bus, and the listener that keeps caches fresh from its system events."""

from edgeplane_common.clients.cache import CachedMetadata, MetadataSource
from edgeplane_common.clients.commands import BusCommandRelay
from edgeplane_common.clients.metadata import MetadataClient, edgex_error
from edgeplane_common.clients.system_events import (
    CacheUpdater,
    MetadataChanges,
    SystemEventListener,
    decode_system_event,
)

__all__ = [
    "BusCommandRelay",
    "CacheUpdater",
    "CachedMetadata",
    "MetadataChanges",
    "MetadataClient",
    "MetadataSource",
    "SystemEventListener",
    "decode_system_event",
    "edgex_error",
]
