"""Run real services in the test's event loop: uvicorn on a free loopback port, so services talk real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from fastapi import FastAPI

from edgeplane_common.embedded import free_port
from edgeplane_common.http.app import server_config
from edgeplane_common.settings import TlsSettings


@asynccontextmanager
async def serve(app: FastAPI, port: int | None = None, tls: TlsSettings | None = None) -> AsyncIterator[str]:
    """Serve `app` (lifespan included) on 127.0.0.1 as the services are served (their uvicorn config: h11,
    header names as Go spells them; HTTPS with `tls`'s certificate); yields its base URL."""
    port = port or free_port()
    config = server_config(app, "127.0.0.1", port, tls)
    config.lifespan = "on"
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(30):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("server stopped during start")
                await asyncio.sleep(0.02)
        yield f"{'https' if config.is_ssl else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def wait_until(check, timeout: float = 10.0, interval: float = 0.05):  # type: ignore[no-untyped-def]
    """Poll `check()` (sync or async) until it returns a truthy value; fail with the last value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = None
    while loop.time() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")


async def get_json(url: str, **kw: object) -> httpx.Response:
    async with httpx.AsyncClient() as c:
        return await c.get(url, **kw)  # type: ignore[arg-type]
