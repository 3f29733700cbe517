"""device-opcua recovers by itself: a server restart and a network drop each take the device DOWN and back UP
in core-metadata, and subscriptions deliver again, without restarting device-opcua."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from device_opcua.sim import OpcuaSimulator, load_config
from tests.support.opcua import DEMO_SIM, Stack, add_device, event_log, opcua_device, opcua_stack, operating_state
from tests.support.stack import wait_until
from tests.support.tcp_proxy import TcpProxy


@pytest.fixture(scope="module")
async def sim() -> AsyncIterator[OpcuaSimulator]:
    async with OpcuaSimulator(load_config(DEMO_SIM), "127.0.0.1", 0, tick_interval=0.1) as s:
        yield s


@pytest.fixture
async def stack(nats_url: str, redis_url: str) -> AsyncIterator[Stack]:
    async with opcua_stack(nats_url, redis_url) as s:
        yield s


def subscribed(name: str, endpoint: str) -> dict[str, object]:
    return opcua_device(
        name, "Edgeplane-Demo-Line", endpoint, autoEvents=[{"interval": "100ms", "sourceName": "LineReadings"}]
    )


async def is_state(stack: Stack, name: str, state: str) -> bool:
    return await operating_state(stack, name) == state


async def test_server_restart_recreates_session_and_subscriptions(
    stack: Stack, sim: OpcuaSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with event_log(stack.nats_url) as log:
        await add_device(stack, subscribed("line", sim.url))
        await add_device(stack, opcua_device("polled", "Edgeplane-Demo-Line", sim.url))  # shares the session
        await wait_until(lambda: len(log.of("line", "PartsMade")) >= 2, timeout=15)
        assert len(stack.app.state.runtime.driver.sessions) == 1

        await sim.stop()
        await wait_until(lambda: is_state(stack, "line", "DOWN"), timeout=15)
        await wait_until(lambda: is_state(stack, "polled", "DOWN"), timeout=15)
        r = await stack.opcua.get("/api/v3/device/name/line/Recipe")
        assert r.status_code == 423
        before = len(log.of("line", "PartsMade"))

        await sim.start()  # the same port, a fresh server: no session or subscription survives
        await wait_until(lambda: is_state(stack, "line", "UP"), timeout=20)
        await wait_until(lambda: is_state(stack, "polled", "UP"), timeout=10)
        await wait_until(lambda: len(log.of("line", "PartsMade")) >= before + 3, timeout=15)
        r = await stack.opcua.get("/api/v3/device/name/polled/Recipe")
        assert r.status_code == 200, r.text
    # The loss and the recovery are each logged once, not once per attempt.
    down = [r for r in caplog.records if "OPC UA session" in r.getMessage() and "is down" in r.getMessage()]
    up = [r for r in caplog.records if "OPC UA session" in r.getMessage() and "established" in r.getMessage()]
    assert len(down) == 1, [r.getMessage() for r in down]
    assert len(up) == 2  # the first connect and the recovery
    marked = [r for r in caplog.records if "line marked DOWN" in r.getMessage()]
    assert len(marked) == 1


async def test_network_drop_through_a_tcp_proxy(stack: Stack, sim: OpcuaSimulator) -> None:
    async with TcpProxy("127.0.0.1", sim.port) as proxy, event_log(stack.nats_url) as log:
        endpoint = f"opc.tcp://127.0.0.1:{proxy.port}{sim.config.path}"
        await add_device(stack, subscribed("line", endpoint))
        await wait_until(lambda: len(log.of("line", "Speed")) >= 2, timeout=15)

        await proxy.cut(refuse=True)  # the network is gone: open connections cut, new ones refused
        await wait_until(lambda: is_state(stack, "line", "DOWN"), timeout=15)
        proxy.resume()
        await wait_until(lambda: is_state(stack, "line", "UP"), timeout=20)
        before = len(log.of("line", "Speed"))
        await wait_until(lambda: len(log.of("line", "Speed")) >= before + 3, timeout=15)

        # A cut with the network back at once: the session comes back on its own again.
        connections = proxy.connections
        await proxy.cut()
        await wait_until(lambda: proxy.connections > connections, timeout=15)
        before = len(log.of("line", "Speed"))
        await wait_until(lambda: len(log.of("line", "Speed")) >= before + 3, timeout=15)
        assert await operating_state(stack, "line") == "UP"


async def test_silent_network_drop_is_found_by_the_keepalive(stack: Stack, sim: OpcuaSimulator) -> None:
    """The link goes silent (no FIN, no RST: bytes are just lost); the keep-alive finds the session dead, the
    device goes DOWN, and when bytes flow again the session and its subscription come back by themselves."""
    async with TcpProxy("127.0.0.1", sim.port) as proxy, event_log(stack.nats_url) as log:
        endpoint = f"opc.tcp://127.0.0.1:{proxy.port}{sim.config.path}"
        await add_device(stack, subscribed("line", endpoint))
        await wait_until(lambda: len(log.of("line", "Speed")) >= 2, timeout=15)
        connections = proxy.connections

        proxy.stall()
        await wait_until(lambda: is_state(stack, "line", "DOWN"), timeout=15)
        r = await stack.opcua.get("/api/v3/device/name/line/Recipe")
        assert r.status_code == 423  # DOWN: commands refused at once, not left to time out

        proxy.resume()
        await wait_until(lambda: is_state(stack, "line", "UP"), timeout=20)
        assert proxy.connections > connections  # a new session on a new connection
        before = len(log.of("line", "Speed"))
        await wait_until(lambda: len(log.of("line", "Speed")) >= before + 3, timeout=15)
