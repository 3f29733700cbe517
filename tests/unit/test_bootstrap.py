"""The shared service lifecycle: start order, reverse teardown (also after a failed start), retry, readiness."""

from __future__ import annotations

import asyncio
import logging

import pytest

from edgeplane_common.bootstrap import STARTED, Backoff, ServiceBootstrap, connect_with_retry
from edgeplane_common.errors import ServiceUnavailable

FAST = Backoff(first=0.001, cap=0.002)


class Journal:
    """Records what ran, in order; `action(name)` makes a step that appends `name`."""

    def __init__(self) -> None:
        self.entries: list[str] = []

    def action(self, name: str, *, fail: BaseException | None = None):  # type: ignore[no-untyped-def]
        async def run() -> None:
            self.entries.append(name)
            if fail is not None:
                raise fail

        return run


def three_steps(journal: Journal, *, fail_third: bool = False) -> ServiceBootstrap:
    boot = ServiceBootstrap("svc", backoff=FAST)
    boot.connect("Redis", journal.action("redis up"), close=journal.action("redis closed"))
    boot.connect("NATS", journal.action("nats up"), close=journal.action("nats closed"))
    failure = RuntimeError("listener broke") if fail_third else None
    boot.step("listener", journal.action("listener up", fail=failure), stop=journal.action("listener down"))
    return boot


async def test_steps_start_in_the_order_given_and_stop_in_reverse() -> None:
    journal = Journal()
    boot = three_steps(journal)
    async with boot.run():
        assert journal.entries == ["redis up", "nats up", "listener up"]
        journal.entries.clear()
    assert journal.entries == ["listener down", "nats closed", "redis closed"]


async def test_a_failed_start_undoes_only_what_came_before_in_reverse() -> None:
    journal = Journal()
    boot = three_steps(journal, fail_third=True)
    with pytest.raises(RuntimeError, match="listener broke"):
        async with boot.run():
            pytest.fail("the body must not run when start-up failed")
    # The listener never started, so it is not stopped; the adapters before it are closed, newest first.
    assert journal.entries == ["redis up", "nats up", "listener up", "nats closed", "redis closed"]
    assert not boot.readiness.ready


async def test_an_adapter_that_never_connected_is_still_closed() -> None:
    journal = Journal()
    boot = ServiceBootstrap("svc", backoff=FAST)
    boot.close("metadata client", journal.action("metadata closed"))
    boot.connect(
        "Redis",
        journal.action("ping", fail=ServiceUnavailable("down")),
        close=journal.action("redis closed"),
        timeout=0.05,
    )
    with pytest.raises(ServiceUnavailable, match=r"Redis did not answer within 0\.05s: down"):
        async with boot.run():
            pass
    assert journal.entries[-2:] == ["redis closed", "metadata closed"]
    assert set(journal.entries[:-2]) == {"ping"}


async def test_a_failing_cleanup_does_not_keep_the_earlier_ones_from_running(caplog: pytest.LogCaptureFixture) -> None:
    journal = Journal()
    boot = ServiceBootstrap("svc")
    boot.close("first", journal.action("first closed"))
    boot.close("second", journal.action("second closed", fail=RuntimeError("boom")))
    async with boot.run():
        pass
    assert journal.entries == ["second closed", "first closed"]
    assert any("stopping second failed" in r.getMessage() for r in caplog.records)


async def test_connect_retries_until_the_dependency_answers_and_logs_the_wait_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    attempts = 0

    async def flaky() -> None:
        nonlocal attempts
        attempts += 1
        if attempts < 5:
            raise ConnectionRefusedError("connection refused")

    with caplog.at_level(logging.DEBUG, logger="edgeplane_common.bootstrap"):
        await connect_with_retry("Redis at x:6379/0", flaky, backoff=FAST)
    assert attempts == 5
    messages = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "edgeplane_common.bootstrap"]
    assert messages == [
        (logging.WARNING, "waiting for Redis at x:6379/0 (connection refused)"),
        (logging.INFO, "Redis at x:6379/0 is available"),
    ]


async def test_connect_fails_at_once_on_an_error_that_is_not_retried() -> None:
    attempts = 0

    async def misconfigured() -> None:
        nonlocal attempts
        attempts += 1
        raise ValueError("bad URL")

    with pytest.raises(ValueError, match="bad URL"):
        await connect_with_retry("NATS", misconfigured, backoff=FAST)
    assert attempts == 1


def test_backoff_grows_and_is_capped() -> None:
    delays = Backoff(first=0.1, cap=1.0).delays()
    assert [round(next(delays), 3) for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


async def test_readiness_flips_when_every_dependency_is_up_and_back_on_stop() -> None:
    connected = asyncio.Event()
    release = asyncio.Event()
    boot = ServiceBootstrap("svc", backoff=FAST)
    boot.connect("Redis", Journal().action("ping"))

    async def consumer() -> None:
        connected.set()
        await release.wait()

    boot.task("events consumer", consumer, ready=True)
    readiness = boot.readiness
    assert not readiness.ready
    assert readiness.pending() == [STARTED, "Redis", "events consumer"]
    async with boot.run():
        await connected.wait()
        # Started, Redis up, but the background consumer is not subscribed yet.
        assert readiness.pending() == ["events consumer"]
        assert not readiness.ready
        release.set()
        for _ in range(100):
            if readiness.ready:
                break
            await asyncio.sleep(0)
        assert readiness.ready
        assert readiness.as_dict() == {STARTED: True, "Redis": True, "events consumer": True}
        readiness.down("Redis")  # a dependency that drops later
        assert readiness.pending() == ["Redis"]
        readiness.up("Redis")
    assert not readiness.ready
    assert readiness.pending() == [STARTED]


async def test_background_tasks_are_cancelled_on_teardown_before_earlier_cleanups() -> None:
    journal = Journal()
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            journal.entries.append("task cancelled")

    boot = ServiceBootstrap("svc")
    boot.close("store", journal.action("store closed"))
    boot.task("retention", forever)
    async with boot.run():
        await started.wait()
    assert journal.entries == ["task cancelled", "store closed"]


async def test_a_failed_background_task_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    boot = ServiceBootstrap("svc")
    boot.task("ingest", Journal().action("ingest", fail=RuntimeError("no stream")), ready=True)
    async with boot.run():
        for _ in range(10):
            await asyncio.sleep(0)
        assert boot.readiness.pending() == ["ingest"]
    assert any("background task 'svc ingest' failed" in r.getMessage() for r in caplog.records)
