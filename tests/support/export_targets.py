"""Real servers the app-service exports talk to, started by tests on free loopback ports: VictoriaMetrics
(the InfluxDB v2 write API) and mosquitto (MQTT), each stoppable and restartable (an outage). Tests skip with
a clear reason when the binary is not installed (.ci/run installs both from Debian's packages)."""

from __future__ import annotations

import asyncio
import getpass
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from edgeplane_common.embedded import free_port

VICTORIA = shutil.which("victoria-metrics")
MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
NO_VICTORIA = "victoria-metrics is not installed (Debian package victoria-metrics; .ci/run installs it)"
NO_MOSQUITTO = "mosquitto is not installed (Debian package mosquitto; .ci/run installs it)"


class ServerProcess:
    """A server binary on a fixed loopback port that a test can stop and start again (an outage)."""

    def __init__(self, name: str, command: list[str], port: int, log: Path) -> None:
        self.name = name
        self.command = command
        self.port = port
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"{self.name} exited; see {self.log}"
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise AssertionError(f"{self.name} did not listen on {self.port}; see {self.log}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


class Victoria(ServerProcess):
    """VictoriaMetrics: speaks the InfluxDB v2 write API (`/api/v2/write`); read back with /api/v1/export."""

    def __init__(self, data: Path) -> None:
        port = free_port()
        data.mkdir(parents=True, exist_ok=True)
        assert VICTORIA is not None
        super().__init__(
            "victoria-metrics",
            [
                VICTORIA,
                f"-httpListenAddr=127.0.0.1:{port}",
                f"-storageDataPath={data}",
                "-retentionPeriod=100y",
                "-search.disableCache",
                "-loggerLevel=WARN",
            ],
            port,
            data / "victoria.log",
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _export(self, match: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as client:
            await client.get("/internal/force_flush")
            response = await client.post("/api/v1/export", data={"match[]": match})
            response.raise_for_status()
        return [orjson.loads(line) for line in response.text.splitlines() if line.strip()]

    async def series(self, match: str, *, at_least: int = 1, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Every series matching the selector, as VictoriaMetrics exports them (ms timestamps). New series
        become searchable a moment after their write, so this waits until `at_least` values are there, then
        reads once more after a pause (so that a surplus, a duplicate, would show too)."""
        deadline = time.monotonic() + timeout
        while True:
            found = await self._export(match)
            if sum(len(s["values"]) for s in found) >= at_least or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.3)
        await asyncio.sleep(1.0)
        return await self._export(match)

    async def count(self, match: str, *, at_least: int = 1) -> int:
        return sum(len(s["values"]) for s in await self.series(match, at_least=at_least))


class Mosquitto(ServerProcess):
    def __init__(self, data: Path, *, persistence: bool = False) -> None:
        port = free_port()
        data.mkdir(parents=True, exist_ok=True)
        conf = data / "mosquitto.conf"
        # Started as root, mosquitto would switch to its own user, which cannot write in the test's folder.
        text = f"listener {port} 127.0.0.1\nallow_anonymous true\nuser {getpass.getuser()}\n"
        if persistence:  # sessions and queued messages kept across a restart (saved when it stops)
            text += f"persistence true\npersistence_location {data}/\n"
        else:
            text += "persistence false\n"
        conf.write_text(text)
        assert MOSQUITTO is not None
        super().__init__("mosquitto", [MOSQUITTO, "-c", str(conf)], port, data / "mosquitto.log")


def now_ms_origin(offset_ms: int = 0) -> int:
    """An origin (ns) on a whole millisecond: VictoriaMetrics keeps milliseconds."""
    return (time.time_ns() // 1_000_000 + offset_ms) * 1_000_000


@asynccontextmanager
async def running_app(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as client,
    ):
        yield client


async def status(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/api/v3/status")
    assert response.status_code == 200
    data: dict[str, Any] = response.json()
    return data


def skip_without(binary: str | None, reason: str) -> None:
    if binary is None:
        pytest.skip(reason)
