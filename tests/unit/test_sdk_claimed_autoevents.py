"""A driver that serves an autoEvent by subscription claims it: the SDK does not poll it (the others it does)."""

from __future__ import annotations

from typing import Any

from edgeplane_common.models import AutoEvent, Device
from edgeplane_sdk.autoevents import AutoEventScheduler


async def test_claimed_autoevents_are_not_polled() -> None:
    async def read(device: str, source: str) -> dict[str, Any]:
        raise AssertionError("not reached")

    async def publish(event: object) -> None:
        return None

    scheduler = AutoEventScheduler(read, publish, claimed=lambda d, ae: ae.source_name == "Subscribed")
    device = Device.model_validate(
        {
            "name": "d",
            "serviceName": "s",
            "profileName": "p",
            "protocols": {},
            "autoEvents": [
                AutoEvent(interval="1h", source_name="Subscribed").model_dump(by_alias=True),
                AutoEvent(interval="1h", source_name="Polled").model_dump(by_alias=True),
            ],
        }
    )
    scheduler.start_device(device)
    assert [t.get_name() for t in scheduler.tasks["d"]] == ["autoevent:d:Polled"]
    await scheduler.stop()
