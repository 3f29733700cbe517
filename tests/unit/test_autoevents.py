"""AutoEvent scheduling: deadline ticks without drift, onChange and onChangeThreshold."""

from __future__ import annotations

import asyncio

from edgeplane_common.models import AutoEvent, Device, Event, Reading
from edgeplane_sdk.autoevents import AutoEventScheduler, changed


def event(**values: str) -> Event:
    return Event(
        device_name="d",
        profile_name="p",
        source_name="s",
        readings=[
            Reading(device_name="d", resource_name=k, profile_name="p", value_type="Float64", value=v)
            for k, v in values.items()
        ],
    )


def test_changed_compares_every_reading() -> None:
    assert not changed({"a": "1", "b": "2"}, event(a="1", b="2"), None)
    assert changed({"a": "1", "b": "2"}, event(a="1", b="3"), None)
    assert changed({"a": "1"}, event(a="1", b="2"), None)


def test_threshold_ignores_small_numeric_changes() -> None:
    assert not changed({"a": "10.0"}, event(a="10.4"), 0.5)
    assert changed({"a": "10.0"}, event(a="10.6"), 0.5)
    assert changed({"a": "10.0"}, event(a="9.4"), 0.5)


async def test_ticks_follow_a_fixed_grid_even_when_reads_are_slow() -> None:
    loop = asyncio.get_running_loop()
    times: list[float] = []

    async def read(device: str, source: str) -> Event:
        times.append(loop.time())
        await asyncio.sleep(0.03)  # a read taking 60% of the interval must not push later ticks
        return event(a=str(len(times)))

    async def publish(e: Event) -> None:
        return None

    sched = AutoEventScheduler(read, publish)
    sched.start_device(Device(name="d", service_name="s", auto_events=[AutoEvent(interval="50ms", source_name="s")]))
    await asyncio.sleep(0.52)
    await sched.stop()
    assert len(times) >= 9
    offsets = [t - times[0] for t in times]
    # Each read starts on the 50 ms grid (a read late by its own 30 ms would leave the grid within two
    # ticks); a slot may be skipped on a loaded machine, but never run twice or out of order.
    slots = [round(off / 0.05) for off in offsets]
    assert slots == sorted(set(slots)), offsets
    assert all(abs(off - slot * 0.05) < 0.02 for off, slot in zip(offsets, slots, strict=True)), offsets
    assert slots[-1] >= 8


async def test_on_change_publishes_only_changes() -> None:
    values = iter(["1", "1", "2", "2", "2", "3"] + ["3"] * 100)
    published: list[str] = []

    async def read(device: str, source: str) -> Event:
        return event(a=next(values))

    async def publish(e: Event) -> None:
        published.append(e.readings[0].value or "")

    sched = AutoEventScheduler(read, publish)
    sched.start_device(
        Device(name="d", service_name="s", auto_events=[AutoEvent(interval="10ms", source_name="s", on_change=True)])
    )
    await asyncio.sleep(0.15)
    await sched.stop()
    assert published == ["1", "2", "3"]


async def test_locked_devices_are_not_polled_and_stop_cancels() -> None:
    calls = 0

    async def read(device: str, source: str) -> Event:
        nonlocal calls
        calls += 1
        return event(a="1")

    async def publish(e: Event) -> None:
        return None

    sched = AutoEventScheduler(read, publish)
    ae = [AutoEvent(interval="10ms", source_name="s")]
    sched.start_device(Device(name="d", service_name="s", admin_state="LOCKED", auto_events=ae))
    await asyncio.sleep(0.05)
    assert calls == 0
    sched.start_device(Device(name="d", service_name="s", auto_events=ae))
    await asyncio.sleep(0.05)
    sched.stop_device("d")
    seen = calls
    await asyncio.sleep(0.05)
    assert seen > 0
    assert calls == seen


async def test_overrunning_reads_overlap_up_to_depth_and_publish_in_order() -> None:
    in_flight = 0
    most = 0
    started = 0
    published: list[str] = []

    async def read(device: str, source: str) -> Event:
        nonlocal in_flight, most, started
        started += 1
        n = started
        in_flight += 1
        most = max(most, in_flight)
        try:
            # Later reads finish sooner: publishing must still follow the order the reads started in.
            await asyncio.sleep(0.04 if n % 2 else 0.01)
        finally:
            in_flight -= 1
        return event(a=str(n))

    async def publish(e: Event) -> None:
        published.append(e.readings[0].value or "")

    sched = AutoEventScheduler(read, publish)  # depth 2
    sched.start_device(Device(name="d", service_name="s", auto_events=[AutoEvent(interval="1ms", source_name="s")]))
    await asyncio.sleep(0.3)
    await sched.stop()
    assert most == 2
    assert len(published) >= 6
    assert published == [str(i) for i in range(1, len(published) + 1)]
    assert in_flight == 0  # stop cancelled the reads in flight


async def test_reads_shorter_than_the_interval_never_overlap() -> None:
    in_flight = 0
    most = 0

    async def read(device: str, source: str) -> Event:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.005)
        in_flight -= 1
        return event(a="1")

    async def publish(e: Event) -> None:
        return None

    sched = AutoEventScheduler(read, publish, depth=4)
    sched.start_device(Device(name="d", service_name="s", auto_events=[AutoEvent(interval="20ms", source_name="s")]))
    await asyncio.sleep(0.2)
    await sched.stop()
    assert most == 1
