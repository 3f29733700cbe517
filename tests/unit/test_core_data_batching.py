"""The group-commit writer: one store write per burst, each caller gets its own result."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from core_data.application.batching import GroupCommitWriter
from edgeplane_common.errors import ServiceUnavailable


class Recorder:
    def __init__(self, delay: float = 0.01, fail: Exception | None = None) -> None:
        self.batches: list[list[int]] = []
        self.delay = delay
        self.fail = fail

    async def write(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        return [i * 10 for i in items]


async def test_a_burst_is_one_write_and_each_caller_gets_its_result() -> None:
    rec = Recorder()
    writer = GroupCommitWriter(rec.write, max_batch=100)
    results = await asyncio.gather(*(writer.submit(i) for i in range(50)))
    assert results == [i * 10 for i in range(50)]
    assert rec.batches == [list(range(50))]
    assert (writer.writes, writer.items) == (1, 50)
    await writer.close()


async def test_items_arriving_during_a_write_go_in_the_next_one() -> None:
    rec = Recorder(delay=0.05)
    writer = GroupCommitWriter(rec.write)
    first = asyncio.create_task(writer.submit(0))
    await asyncio.sleep(0.01)  # the first write is in flight
    later = [asyncio.create_task(writer.submit(i)) for i in range(1, 4)]
    assert await first == 0
    assert [await t for t in later] == [10, 20, 30]
    assert rec.batches == [[0], [1, 2, 3]]
    await writer.close()


async def test_max_batch_splits_a_burst() -> None:
    rec = Recorder(delay=0)
    writer = GroupCommitWriter(rec.write, max_batch=4)
    await asyncio.gather(*(writer.submit(i) for i in range(10)))
    assert [len(b) for b in rec.batches] == [4, 4, 2]
    await writer.close()


async def test_linger_fills_a_write() -> None:
    rec = Recorder(delay=0)
    writer = GroupCommitWriter(rec.write, linger=0.05)

    async def late(i: int) -> int:
        await asyncio.sleep(0.01)
        return await writer.submit(i)

    await asyncio.gather(writer.submit(0), late(1), late(2))
    assert rec.batches == [[0, 1, 2]]
    await writer.close()


async def test_a_failed_write_fails_its_callers_only() -> None:
    rec = Recorder(fail=ServiceUnavailable("redis down"))
    writer = GroupCommitWriter(rec.write)
    results = await asyncio.gather(*(writer.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, ServiceUnavailable) for r in results)
    rec.fail = None
    assert await writer.submit(7) == 70, "the writer keeps working after a failure"
    await writer.close()


async def test_a_store_returning_the_wrong_number_of_results_fails_loudly() -> None:
    async def broken(items: Sequence[int]) -> list[int]:
        return []

    writer = GroupCommitWriter(broken)
    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        await writer.submit(1)
    await writer.close()


async def test_close_writes_what_is_pending_then_refuses() -> None:
    rec = Recorder(delay=0.02)
    writer = GroupCommitWriter(rec.write)
    pending = [asyncio.create_task(writer.submit(i)) for i in range(3)]
    await asyncio.sleep(0)
    await writer.close()
    assert [t.result() for t in pending] == [0, 10, 20]
    with pytest.raises(ServiceUnavailable, match="shutting down"):
        await writer.submit(9)


async def test_a_cancelled_caller_does_not_break_the_batch() -> None:
    rec = Recorder(delay=0.05)
    writer = GroupCommitWriter(rec.write)
    a = asyncio.create_task(writer.submit(1))
    b = asyncio.create_task(writer.submit(2))
    await asyncio.sleep(0.01)
    a.cancel()
    assert await b == 20
    assert rec.batches == [[1, 2]], "the cancelled caller's item was written anyway"
    await writer.close()
