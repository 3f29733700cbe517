"""device-opcua as its own process, as the launcher and the image run it (`python -m device_opcua`): it reads and
serves subscriptions, and neither asyncua's server nor pydantic.v1 is loaded in it (device_opcua/__main__.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import redis.asyncio as aioredis

from core_metadata.main import create_app as create_metadata_app
from device_opcua.sim import OpcuaSimulator, load_config
from edgeplane_common.embedded import free_port
from tests.support.metadata import metadata_settings
from tests.support.opcua import DEMO_PROFILE, DEMO_SIM, event_log, opcua_device, readings, upload_profile
from tests.support.stack import serve, wait_until

# Runs the service's own __main__; on SIGUSR1 it writes down which modules it has loaded.
RUN_AND_RECORD = """
import runpy, signal, sys
def record(*_):
    server = sys.modules.get("asyncua.server")
    loaded = sorted(name for name, module in sys.modules.items() if module is not None)
    lines = [*loaded, "server-file=" + str(getattr(server, "__file__", None))]
    with open(sys.argv[1] + ".part", "w") as out:
        out.write("\\n".join(lines))
    import os
    os.replace(sys.argv[1] + ".part", sys.argv[1])
signal.signal(signal.SIGUSR1, record)
runpy.run_module("device_opcua", run_name="__main__")
"""


async def _pings(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=1) as client:
            return (await client.get(url)).status_code == 200
    except httpx.HTTPError:
        return False


async def test_the_service_process_reads_and_subscribes_without_asyncua_server(
    nats_url: str, redis_url: str, tmp_path: Path
) -> None:
    r = aioredis.from_url(redis_url)
    await r.flushdb()
    await r.aclose()
    modules_file = tmp_path / "modules.txt"
    log_file = tmp_path / "device-opcua.log"
    async with AsyncExitStack() as es:
        sim = await es.enter_async_context(OpcuaSimulator(load_config(DEMO_SIM), "127.0.0.1", 0, tick_interval=0.1))
        md_url = await es.enter_async_context(serve(create_metadata_app(metadata_settings(nats_url, redis_url))))
        metadata = await es.enter_async_context(httpx.AsyncClient(base_url=md_url, timeout=10))
        assert (await upload_profile(metadata, DEMO_PROFILE)).status_code == 201
        port = free_port()
        env = {
            **os.environ,
            "EDGEPLANE_NATS__URL": nats_url,
            "EDGEPLANE_REDIS__URL": redis_url,
            "DEVICE_OPCUA_METADATA_URL": md_url,
            "DEVICE_OPCUA_PROVISION": "false",
            "DEVICE_OPCUA_HTTP__HOST": "127.0.0.1",
            "DEVICE_OPCUA_HTTP__PORT": str(port),
        }
        with log_file.open("wb") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", RUN_AND_RECORD, str(modules_file), env=env, stdout=log, stderr=log
            )
        try:
            url = f"http://127.0.0.1:{port}"
            await wait_until(lambda: _pings(f"{url}/api/v3/ping"), timeout=60)
            async with event_log(nats_url) as events:
                device = opcua_device(
                    "line", "Edgeplane-Demo-Line", sim.url, autoEvents=[{"interval": "100ms", "sourceName": "Speed"}]
                )
                resp = await metadata.post("/api/v3/device", json=[device])
                assert resp.json()[0]["statusCode"] == 201, resp.text
                await wait_until(lambda: len(events.of("line", "Speed")) >= 2, timeout=30)
                async with httpx.AsyncClient(base_url=url, timeout=15) as service:
                    got = readings(await service.get("/api/v3/device/name/line/LineReadings"))
            assert got["PartsMade"]["valueType"] == "Uint32"
            assert events.of("line", "Speed")[-1]["readings"][0]["valueType"] == "Int16"
            proc.send_signal(signal.SIGUSR1)
            await wait_until(modules_file.exists, timeout=10)
            assert proc.returncode is None, log_file.read_text()[-3000:]
        finally:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            await asyncio.wait_for(proc.wait(), 30)
    loaded = modules_file.read_text().splitlines()
    assert "asyncua.client.client" in loaded
    assert "server-file=None" in loaded  # the stand-in, not asyncua's package
    assert [m for m in loaded if m.startswith(("asyncua.server.", "asyncua.pubsub", "pydantic.v1"))] == []
