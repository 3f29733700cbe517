"""The ports of the app-service use cases: the durable buffer and the export targets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from app_services.application.data import Context, Item


@dataclass(slots=True)
class Entry:
    """An item in the buffer, in order; `handle` is the adapter's (a JetStream message)."""

    item: Item
    seq: int
    handle: Any = None


class Outbox(Protocol):
    """The instance's durable, bounded buffer between the per-event functions and the export (store-and-
    forward). `put` returns once the items are stored (so the source may be acknowledged); `fetch` hands them
    back in order; an entry leaves the buffer only when acked (after its export). The bound (bytes, age) and
    its policy are the adapter's: with drop-oldest, the oldest entries are dropped to make room; with
    drop-newest, `put` refuses what does not fit. Both are counted in `dropped`."""

    dropped: int

    async def start(self) -> None: ...

    async def put(self, items: list[Item]) -> int:
        """Store the items durably; returns how many were refused (drop-newest, buffer full)."""
        ...

    async def fetch(self, max_items: int, timeout: float) -> list[Entry]:
        """Up to `max_items` entries after the last fetched one, waiting at most `timeout` for the first."""
        ...

    async def ack(self, entries: list[Entry]) -> None:
        """The entries were exported: remove them."""
        ...

    async def keep(self, entries: list[Entry]) -> None:
        """Still working on these (retrying): do not hand them out again."""
        ...

    async def depth(self) -> tuple[int, int]:
        """(entries, bytes) in the buffer now."""
        ...

    async def close(self) -> None: ...


class Exporter(Protocol):
    name: str
    target: str
    """Where it exports, for logs and the status endpoint (no credentials)."""
    max_batch: int
    """Items joined into one export when the pipeline has no Batch function (1: one export per event)."""
    accepts: frozenset[str]
    """Item kinds it can take (`lp`, `json`, `event`, `bytes`)."""

    async def start(self) -> None: ...

    async def export(self, ctx: Context, payload: bytes, count: int) -> None:
        """Send `payload` (`count` items); ExportFailed when it did not go through."""
        ...

    async def close(self) -> None: ...


__all__ = ["Entry", "Exporter", "Outbox"]
