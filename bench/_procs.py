"""Child processes for the benchmarks: spawn with a log file, wait until they listen, stop them all; the
temporary folder of a run; the demo PLC stack (NATS, Redis, simulator, core-metadata, device-modbus)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml

from edgeplane.supervisor import SERVICE_PYTHON_FLAGS
from edgeplane_common.embedded import EmbeddedNats, EmbeddedRedis, free_port

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def ps(self) -> psutil.Process:
        return psutil.Process(self.popen.pid)


@dataclass
class Procs:
    tmp: Path
    running: list[Proc] = field(default_factory=list)

    def spawn(
        self,
        name: str,
        args: list[str],
        env: dict[str, str] | None = None,
        preexec: Callable[[], None] | None = None,
        python: str | None = None,
    ) -> Proc:
        """Start `python -m <service>` (args: ["-m", module, ...]) with the flags `edgeplane up` and the images
        run services with (-OO), so what is measured is what runs."""
        log = self.tmp / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                [python or sys.executable, *SERVICE_PYTHON_FLAGS, *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                cwd=ROOT,
                preexec_fn=preexec,
            )
        proc = Proc(name, popen, log)
        self.running.append(proc)
        return proc

    def stop_all(self) -> None:
        """Newest first (the device service before the simulators it polls), each waited for."""
        for proc in reversed(self.running):
            if proc.popen.poll() is None:
                proc.popen.terminate()
            try:
                proc.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait()
        self.running.clear()


def wait_tcp(proc: Proc, port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited during start:\n{proc.log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{proc.name} did not listen on {port} within {timeout}s:\n{proc.log.read_text()[-2000:]}")


def wait_http(proc: Proc, url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited during start:\n{proc.log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} not ready at {url} within {timeout}s:\n{proc.log.read_text()[-2000:]}")


@contextlib.contextmanager
def workdir(name: str, keep: bool) -> Iterator[Path]:
    """A temporary folder for one run (data, service logs); removed afterwards unless `keep`."""
    tmp = Path(tempfile.mkdtemp(prefix=f"edgeplane-{name}-bench-"))
    try:
        yield tmp
    finally:
        if keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


QUIET = {"EDGEPLANE_LOG_LEVEL": "WARNING", "EDGEPLANE_LOG_JSON": "false"}


@dataclass
class PlcStack:
    nats_url: str
    shared: dict[str, str]
    """Environment every further service needs: quiet logs, NATS, Redis and core-metadata's URL."""
    sim_port: int
    metadata_url: str
    device_url: str
    device_service: Proc


@contextlib.contextmanager
def demo_plc_stack(procs: Procs, tmp: Path, devices: Callable[[int], list[dict[str, Any]]]) -> Iterator[PlcStack]:
    """Embedded NATS and Redis, the Modbus simulator (demo PLC), core-metadata and device-modbus with the demo
    PLC's profile and `devices(simulator port)` as its device file, each ready; all stopped on leaving."""
    from device_modbus.main import RES_DIR

    nats_srv = EmbeddedNats(data_dir=tmp / "nats").start()
    redis_srv = EmbeddedRedis(data_dir=tmp / "redis").start()
    try:
        shared = {**QUIET, "EDGEPLANE_NATS__URL": nats_srv.url, "EDGEPLANE_REDIS__URL": redis_srv.url}
        sim_port, md_port, ds_port = (free_port() for _ in range(3))
        sim = procs.spawn("modbus-sim", ["-m", "device_modbus.sim", "--port", str(sim_port), "--no-log-json"], QUIET)
        metadata = procs.spawn(
            "core-metadata",
            ["-m", "core_metadata"],
            {**shared, "CORE_METADATA_HTTP__HOST": "127.0.0.1", "CORE_METADATA_HTTP__PORT": str(md_port)},
        )
        wait_tcp(sim, sim_port)
        md_url = f"http://127.0.0.1:{md_port}"
        wait_http(metadata, md_url + "/api/v3/ping")
        shared["EDGEPLANE_METADATA_URL"] = md_url
        res = tmp / "res"
        (res / "profiles").mkdir(parents=True)
        (res / "devices").mkdir()
        shutil.copy(RES_DIR / "profiles" / "edgeplane-demo-plc.profile.yaml", res / "profiles")
        (res / "devices" / "bench.devices.yaml").write_text(yaml.safe_dump({"deviceList": devices(sim_port)}))
        service = procs.spawn(
            "device-modbus",
            ["-m", "device_modbus"],
            {
                **shared,
                "DEVICE_MODBUS_HTTP__HOST": "127.0.0.1",
                "DEVICE_MODBUS_HTTP__PORT": str(ds_port),
                "DEVICE_MODBUS_RES_DIR": str(res),
            },
        )
        ds_url = f"http://127.0.0.1:{ds_port}"
        wait_http(service, ds_url + "/api/v3/ping")
        yield PlcStack(nats_srv.url, shared, sim_port, md_url, ds_url, service)
    finally:
        procs.stop_all()
        nats_srv.stop()
        redis_srv.stop()
