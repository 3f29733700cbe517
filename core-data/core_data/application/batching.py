"""Group commit: many concurrent callers, one store write per burst.

Each caller submits one item and waits for its own result, so a bus message is acknowledged only after its
event is stored. Items submitted while a write is in flight are written together by the next one, so the
batch size follows the load: one event per write when idle, up to `max_batch` under a burst. `linger`
optionally holds a write that is not full for a little longer, to fill it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from edgeplane_common.errors import ServiceUnavailable

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)

GATHER_YIELDS = 3
"""Event-loop turns a write waits for runnable callers before it takes the pending items."""
CLOSE_TIMEOUT_S = 10.0
"""How long closing waits for the pending items to be written."""


class GroupCommitWriter(Generic[T, R]):
    def __init__(
        self,
        write: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
        *,
        max_batch: int = 512,
        linger: float = 0.0,
        name: str = "writer",
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._write = write
        self._max_batch = max_batch
        self._linger = linger
        self._name = name
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._writing = False
        self._failing = False
        self.writes = 0
        """Store writes so far (each one round trip); with `items` it gives the mean batch size."""
        self.items = 0

    async def submit(self, item: T) -> R:
        """Write `item` with whatever else is pending; its result, or the write's exception."""
        if self._closed:
            raise ServiceUnavailable("core-data is shutting down")
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._wakeup.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"group commit {self._name}")
        return await future

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                if self._linger > 0 and len(self._pending) < self._max_batch:
                    await asyncio.sleep(self._linger)
                else:
                    # Let the callers that are already runnable (woken by the previous write) submit too.
                    for _ in range(GATHER_YIELDS):
                        await asyncio.sleep(0)
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                self._writing = True
                try:
                    await self._flush(batch)
                finally:
                    self._writing = False

    async def _flush(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = list(await self._write([item for item, _ in batch]))
            if len(results) != len(batch):
                raise RuntimeError(f"{self._name}: {len(results)} results for {len(batch)} items")
        except asyncio.CancelledError:
            for _, future in batch:
                if not future.done():
                    future.set_exception(ServiceUnavailable("core-data is shutting down"))
            raise
        except Exception as err:
            if not self._failing:
                log.warning("%s: writing %d item(s) failed: %s", self._name, len(batch), err)
                self._failing = True
            for _, future in batch:
                if not future.done():
                    future.set_exception(err)
            return
        if self._failing:
            log.info("%s: writes succeed again", self._name)
            self._failing = False
        self.writes += 1
        self.items += len(batch)
        for (_, future), result in zip(batch, results, strict=False):
            if not future.done():  # the caller may have given up (cancelled); the item is written anyway
                future.set_result(result)

    async def close(self) -> None:
        """Refuse new items, write the pending ones, stop."""
        self._closed = True
        task = self._task
        if task is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                while (self._pending or self._writing) and not task.done():
                    self._wakeup.set()
                    await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        leftover, self._pending = self._pending, []
        for _, future in leftover:
            if not future.done():
                future.set_exception(ServiceUnavailable("core-data is shutting down"))
