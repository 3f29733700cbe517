"""An in-memory Outbox for unit tests of the runtime: the same bound and policies as the JetStream one, no
durability."""

from __future__ import annotations

import asyncio
import time
from collections import deque

from app_services.application.data import Item
from app_services.application.ports import Entry


class MemoryOutbox:
    def __init__(self, *, max_bytes: int = 64 * 2**20, max_age: float = 86400.0, policy: str = "drop-oldest") -> None:
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.policy = policy
        self.dropped = 0
        self._entries: deque[tuple[Entry, float]] = deque()
        self._bytes = 0
        self._seq = 0
        self._held = 0
        """Entries at the front handed out by fetch and not yet acked."""
        self._ready = asyncio.Event()

    async def start(self) -> None:
        return None

    def _drop_front(self) -> None:
        entry, _ = self._entries.popleft()
        self._bytes -= len(entry.item.data)
        self._held = max(0, self._held - 1)
        self.dropped += 1

    def _expire(self) -> None:
        limit = time.monotonic() - self.max_age
        while self._entries and self._entries[0][1] < limit:
            self._drop_front()

    async def put(self, items: list[Item]) -> int:
        refused = 0
        for item in items:
            size = len(item.data)
            if self._bytes + size > self.max_bytes:
                if self.policy == "drop-newest":
                    refused += 1
                    continue
                while self._entries and self._bytes + size > self.max_bytes:
                    self._drop_front()
            self._seq += 1
            self._entries.append((Entry(item, self._seq), time.monotonic()))
            self._bytes += size
        self._ready.set()
        return refused

    async def fetch(self, max_items: int, timeout: float) -> list[Entry]:
        self._expire()
        if self._held >= len(self._entries):
            self._ready.clear()
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except TimeoutError:
                return []
        start = self._held
        out = [entry for entry, _ in list(self._entries)[start : start + max_items]]
        self._held += len(out)
        return out

    async def ack(self, entries: list[Entry]) -> None:
        done = {e.seq for e in entries}
        while self._entries and self._entries[0][0].seq in done:
            entry, _ = self._entries.popleft()
            self._bytes -= len(entry.item.data)
            self._held = max(0, self._held - 1)

    async def keep(self, entries: list[Entry]) -> None:
        return None

    async def depth(self) -> tuple[int, int]:
        return len(self._entries), self._bytes

    async def close(self) -> None:
        return None
