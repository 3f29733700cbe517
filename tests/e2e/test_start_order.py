"""Services started before NATS and Redis exist still come up and work once they appear.

podman-compose (and any compose that ignores `depends_on` health conditions) starts every container at
once: core-metadata before Redis answers, device-modbus before core-metadata, everything before NATS. Each
service retries at start (NATS forever, Redis 60 s, core-metadata 120 s), so the stack settles by itself.
Here `edgeplane up` is pointed at a NATS and a Redis that do not exist yet; they are started a few seconds
after the services, and the stack must then become healthy and move data end to end.
"""

from __future__ import annotations

import time
from pathlib import Path

from edgeplane_common.embedded import EmbeddedNats, EmbeddedRedis, free_port
from tests.support.native import (
    NAMES,
    check_command_write,
    check_device_up,
    check_pings,
    check_readings_in_core_data,
    edgeplane_up,
)

LATE_S = 4.0  # how long the services wait for NATS and Redis


def test_services_started_before_nats_and_redis_settle(tmp_path: Path) -> None:
    nats_port, redis_port = free_port(), free_port()
    with edgeplane_up(
        tmp_path,
        "--nats-url", f"nats://127.0.0.1:{nats_port}",
        "--redis-url", f"redis://127.0.0.1:{redis_port}/0",
    ) as stack:  # fmt: skip
        time.sleep(LATE_S)
        assert stack.proc.poll() is None, f"edgeplane up gave up without NATS and Redis:\n{stack.log()}"
        with (
            EmbeddedNats(port=nats_port, data_dir=tmp_path / "nats"),
            EmbeddedRedis(port=redis_port, data_dir=tmp_path / "redis"),
        ):
            stack.wait_ready()
            check_pings(stack)
            check_device_up(stack)
            if "core-data" in NAMES:
                check_readings_in_core_data(stack)
            if "core-command" in NAMES:
                check_command_write(stack)
            stack.stop()
