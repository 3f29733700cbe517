"""core-data settings: env vars `CORE_DATA_*`, falling back to `EDGEPLANE_*` (e.g. `EDGEPLANE_METADATA_URL`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, Field, field_validator

from edgeplane_common.bus import Topics
from edgeplane_common.durations import parse_duration, parse_retention_duration
from edgeplane_common.settings import HttpSettings, ServiceSettings

KB = 1024
DEFAULT_MAX_EVENT_SIZE_KB = 25_000
"""EdgeX core-data's default `MaxEventSize` (kilobytes)."""


class IngestSettings(BaseModel):
    enabled: bool = Field(True, description="Consume events from the JetStream stream (false: REST only).")
    durable: str = Field(
        "core-data", description="Durable consumer name; every core-data instance with this name shares the load."
    )
    topic: str = Field(Topics.EVENTS_ALL, description="Subject filter of the durable consumer.")
    consumers: int = Field(
        2,
        ge=1,
        le=32,
        description="Pull consumers per instance; each hands its fetches to the store whole (one write per "
        "fetch), so two let one write overlap the next fetch. Keep consumers x fetch_batch (per instance, "
        "summed over instances) under the durable consumer's MaxAckPending (JetStream default 1000).",
    )
    fetch_batch: int = Field(256, ge=1, description="Most events one pull consumer fetches, stores and acks at once.")
    max_batch: int = Field(512, ge=1, description="Most events added over REST written in one Redis round trip.")
    linger_ms: float = Field(
        0.0,
        ge=0,
        description="Wait this long for more events added over REST before a write that is not full (0: group "
        "commit, a write starts as soon as the previous one is done).",
    )


class RetentionSettings(BaseModel):
    enabled: bool = Field(True, description="Purge old events on a schedule (EdgeX 4.0 retention).")
    interval: str = Field("10m", description="How often retention runs (Go duration).")
    default_max_cap: int = Field(
        -1,
        description="Events of one device source that trigger a purge, unless its autoEvent says otherwise "
        "(-1: always purge by duration).",
    )
    default_min_cap: int = Field(1, description="Newest events of one device source always kept by a purge.")
    default_duration: str = Field(
        "168h", description="Events younger than this are kept (Go duration, also `7d`; empty or 0: count only)."
    )

    @field_validator("interval")
    @classmethod
    def _valid_interval(cls, v: str) -> str:
        parse_duration(v)
        return v

    @field_validator("default_duration")
    @classmethod
    def _valid_duration(cls, v: str) -> str:
        parse_retention_duration(v)
        return v


class CoreDataHttpSettings(HttpSettings):
    # Own defaults rather than `HttpSettings(port=...)` as a default factory: with a factory, setting one
    # nested variable (CORE_DATA_HTTP__HOST) would rebuild HttpSettings and lose the port.
    port: int = Field(59880, description="REST API port.")
    max_request_size: int = Field(
        (DEFAULT_MAX_EVENT_SIZE_KB + 64) * KB,
        description="Largest request body accepted, in bytes; larger answers 413 (above the event limit, so "
        "that an event's own limit is the one that speaks).",
    )


class CoreDataSettings(ServiceSettings):
    env_prefix: ClassVar[str] = "CORE_DATA_"

    service_name: str = Field("core-data", description="Name the service registers and logs under.")
    http: CoreDataHttpSettings = Field(default_factory=CoreDataHttpSettings)
    max_result_count: int = Field(
        50000, description="Most items one GET returns (limit=-1 means this many; more is a 400). EdgeX's default."
    )
    max_event_size: int = Field(
        DEFAULT_MAX_EVENT_SIZE_KB,
        description="Largest event accepted over REST, in kilobytes; larger answers 413 (0: no limit but "
        "the HTTP body limit).",
    )
    persist_data: bool = Field(True, description="Store events (false: accept and drop them, as EdgeX).")
    publish_rest_events: bool = Field(
        True,
        description="Publish events added over REST on `edgex.events.core.<service>.<profile>.<device>.<source>` "
        "(core NATS, as EdgeX core-data does).",
    )
    metadata_url: str = Field("http://127.0.0.1:59881", description="core-metadata's base URL (for retention).")
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
