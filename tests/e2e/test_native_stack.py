"""`make run` end to end: `python -m edgeplane up` as a subprocess, then what a user does next.

The launcher starts embedded NATS and Redis and every service in SERVICES (the list docker-compose.yml
follows too), on free ports. Then: every service answers ping, the demo device is provisioned and UP and its
autoEvents reach NATS, readings reach core-data within 30 s, a write through core-command changes the
simulator's register, and SIGTERM stops everything. The compose equivalent is `make compose-smoke`.

Parts that need a service the launcher does not run yet are skipped, naming the service.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.native import (
    NativeStack,
    check_command_write,
    check_device_up,
    check_events_on_nats,
    check_pings,
    check_readings_in_core_data,
    edgeplane_up,
    needs,
    rss_by_process,
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NativeStack]:
    with edgeplane_up(tmp_path_factory.mktemp("native-stack")) as stack:
        stack.ready_s = stack.wait_ready()
        yield stack


def test_every_service_answers_ping(stack: NativeStack) -> None:
    check_pings(stack)


def test_demo_device_is_provisioned_and_up(stack: NativeStack) -> None:
    check_device_up(stack)


async def test_demo_device_autoevents_reach_nats(stack: NativeStack) -> None:
    await check_events_on_nats(stack)


def test_readings_reach_core_data_within_30_s(stack: NativeStack) -> None:
    needs("core-data")
    after = check_readings_in_core_data(stack)
    print(f"\nnative stack: first readings in core-data {after:.1f} s after `edgeplane up` started")


def test_core_command_reads_and_writes_the_demo_device(stack: NativeStack) -> None:
    needs("core-command")
    check_command_write(stack)


def test_core_command_reads_and_writes_a_virtual_device(stack: NativeStack) -> None:
    needs("core-command")
    needs("device-virtual")
    url = f"{stack.url('core-command')}/api/v3/device/name/Virtual-Integer-Device/Int16"
    write = httpx.put(url, json={"Int16": "-42"}, timeout=10, trust_env=False)
    assert write.status_code == 200, f"{write.status_code} {write.text}\n{stack.log()}"
    read = httpx.get(url, timeout=10, trust_env=False)
    assert read.status_code == 200, f"{read.status_code} {read.text}\n{stack.log()}"
    assert read.json()["event"]["readings"][0]["value"] == "-42"


def test_figures(stack: NativeStack) -> None:
    """Time to healthy and memory, for the deployment notes (`pytest -s` shows them); timings are printed,
    never asserted."""
    rss = rss_by_process(stack)
    print(f"\nnative stack: ready in {stack.ready_s:.1f} s (the launcher's figure: start to all healthy)")
    for name, value in rss.items():
        print(f"  {name:<14} RSS {value / 2**20:6.1f} MiB")
    print(f"  {'total':<14} RSS {sum(rss.values()) / 2**20:6.1f} MiB")


def test_sigterm_stops_everything(stack: NativeStack) -> None:
    stack.stop()
