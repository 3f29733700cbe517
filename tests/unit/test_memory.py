"""release_free_heap and trim_heap give freed heap back where glibc is, and are harmless everywhere."""

from __future__ import annotations

import asyncio
import platform

import pytest

from edgeplane_common import memory
from edgeplane_common.memory import release_free_heap, trim_heap


def test_release_free_heap() -> None:
    released = release_free_heap()
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert released is True
    else:
        assert released in (True, False)


def test_trim_heap_gives_the_same_answer_without_collecting() -> None:
    assert trim_heap() is release_free_heap()


async def test_trim_heap_every_runs_until_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    trims: list[int] = []
    three = asyncio.Event()

    def trim() -> bool:
        trims.append(1)
        if len(trims) == 3:
            three.set()
        return True

    monkeypatch.setattr(memory, "trim_heap", trim)
    task = asyncio.create_task(memory.trim_heap_every(0.001))
    await three.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
