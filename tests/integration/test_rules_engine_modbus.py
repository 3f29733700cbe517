"""The rules engine end to end: Modbus simulator -> device-modbus -> NATS -> rules-engine -> NATS -> device-modbus
-> simulator coil, with real NATS and Redis and core-metadata in this process over real HTTP. core-data and
core-command are never started: rules need neither; core-metadata is stopped after the rule started."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from core_metadata.main import create_app as create_metadata_app
from device_modbus.main import RES_DIR
from device_modbus.main import create_app as create_modbus_app
from device_modbus.settings import DeviceModbusSettings
from device_modbus.sim.config import load_config
from device_modbus.sim.server import ModbusSimulator
from edgeplane_common.embedded import free_port
from rules_engine.main import create_app as create_rules_app
from rules_engine.settings import RulesEngineSettings
from tests.support.metadata import metadata_settings
from tests.support.stack import serve, wait_until

DEMO_PROFILE = RES_DIR / "profiles" / "edgeplane-demo-plc.profile.yaml"
DEMO_SIM = RES_DIR / "sim" / "demo-plc.yaml"


@dataclass
class Stack:
    rules: httpx.AsyncClient
    sim: ModbusSimulator
    metadata: AsyncExitStack
    """Exit it to stop core-metadata."""


@pytest.fixture
async def stack(nats_url: str, redis_url: str) -> AsyncIterator[Stack]:
    r = aioredis.from_url(redis_url)
    await r.flushdb()
    await r.aclose()
    async with AsyncExitStack() as es:
        sim = await es.enter_async_context(ModbusSimulator(load_config(DEMO_SIM), "127.0.0.1", 0, autotick=False))
        await sim.set(1, "tank_temp_x10", 200)
        md_stack = AsyncExitStack()
        es.push_async_callback(md_stack.aclose)
        md_url = await md_stack.enter_async_context(serve(create_metadata_app(metadata_settings(nats_url, redis_url))))
        async with httpx.AsyncClient(base_url=md_url + "/api/v3") as md:
            with DEMO_PROFILE.open("rb") as fh:
                assert (await md.post("/deviceprofile/uploadfile", files={"file": fh})).status_code == 201
            ds_port = free_port()
            ds = DeviceModbusSettings.model_validate(
                {
                    "nats": {"url": nats_url},
                    "metadata_url": md_url,
                    "provision": False,
                    "http": {"host": "127.0.0.1", "port": ds_port},
                }
            )
            await es.enter_async_context(serve(create_modbus_app(ds), ds_port))
            protocol = {
                "Address": "127.0.0.1",
                "Port": str(sim.port),
                "UnitID": "1",
                "Timeout": "1",
                "IdleTimeout": "0",
            }
            device = {
                "name": "plc1",
                "serviceName": "device-modbus",
                "profileName": "Edgeplane-Demo-PLC",
                "adminState": "UNLOCKED",
                "operatingState": "UP",
                "protocols": {"modbus-tcp": protocol},
                "autoEvents": [{"interval": "50ms", "sourceName": "TankTemperature"}],
            }
            r2 = await md.post("/device", json=[{"apiVersion": "v3", "device": device}])
            assert r2.json()[0]["statusCode"] == 201, r2.text
        rules_port = free_port()
        settings = RulesEngineSettings.model_validate(
            {
                "nats": {"url": nats_url},
                "redis": {"url": redis_url},
                "metadata_url": md_url,
                "rules_dir": "",
                "http": {"host": "127.0.0.1", "port": rules_port},
            }
        )
        rules_url = await es.enter_async_context(serve(create_rules_app(settings), rules_port))
        rules = await es.enter_async_context(httpx.AsyncClient(base_url=rules_url + "/api/v3", timeout=10))
        yield Stack(rules, sim, md_stack)


HOT_RULE: dict[str, Any] = {
    "id": "hot-pump",
    "sql": "SELECT TankTemperature AS t FROM events WHERE deviceName = 'plc1' AND TankTemperature > 30",
    "actions": [{"command": {"deviceName": "plc1", "commandName": "PumpRun", "values": {"PumpRun": "true"}}}],
}


async def status(stack: Stack, rule: str) -> dict[str, Any]:
    r = await stack.rules.get(f"/rule/id/{rule}/status")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()["status"]
    return body


async def coil(stack: Stack) -> bool:
    return (await stack.sim.read_bits(1, "coils", 0, 1))[0]


async def settle(stack: Stack, rule: str, events: int = 3) -> None:
    """Wait until the rule has seen `events` more events (the device publishes every 50 ms)."""
    seen = (await status(stack, rule))["recordsIn"]

    async def more() -> bool:
        return (await status(stack, rule))["recordsIn"] >= seen + events

    await wait_until(more)


async def test_a_value_crossing_the_threshold_writes_the_coil(stack: Stack) -> None:
    assert (await stack.rules.post("/rule", json=HOT_RULE)).status_code == 201
    await settle(stack, "hot-pump")
    assert await coil(stack) is False
    await stack.sim.set(1, "tank_temp_x10", 315)  # 31.5 C
    await wait_until(lambda: coil(stack))
    s = await status(stack, "hot-pump")
    assert s["matched"] >= 1
    assert s["actionsFired"] >= 1
    assert s["actionFailures"] == 0
    assert s.get("lastError") is None


async def test_transition_and_min_interval_hold_under_a_noisy_signal(stack: Stack) -> None:
    rule = {**HOT_RULE, "options": {"triggerOn": "transition", "rearm": "TankTemperature < 28"}}
    limited = {
        **HOT_RULE,
        "id": "limited",
        "actions": [{"command": {"deviceName": "plc1", "commandName": "Mode", "values": {"Mode": "2"}}}],
        "options": {"minInterval": "1h"},
    }
    assert (await stack.rules.post("/rule", json=rule)).status_code == 201
    assert (await stack.rules.post("/rule", json=limited)).status_code == 201
    await stack.sim.set(1, "tank_temp_x10", 310)
    await wait_until(lambda: coil(stack))

    async def mode_written() -> bool:  # mode starts at 1: wait for the rule's write of 2 itself
        return await stack.sim.get(1, "mode") == 2

    await wait_until(mode_written)
    # Someone switches the pump off and resets the mode; the signal chatters around 30 C without falling under 28.
    await stack.sim.set(1, "pump_run", False)
    await stack.sim.set(1, "mode", 1)
    for raw in (295, 305, 290, 312, 299, 301):
        await stack.sim.set(1, "tank_temp_x10", raw)
        await settle(stack, "hot-pump", 2)
    assert await coil(stack) is False  # no second firing: not re-armed
    assert await stack.sim.get(1, "mode") == 1  # the minimum interval held the other rule back
    hot, lim = await status(stack, "hot-pump"), await status(stack, "limited")
    assert (hot["fired"], lim["fired"]) == (1, 1)
    assert hot["suppressed"] > 0
    assert lim["suppressed"] > 0
    # Under 28 re-arms; the next crossing fires again.
    await stack.sim.set(1, "tank_temp_x10", 270)
    await settle(stack, "hot-pump", 2)
    await stack.sim.set(1, "tank_temp_x10", 320)
    await wait_until(lambda: coil(stack))
    assert (await status(stack, "hot-pump"))["fired"] == 2


async def test_the_rule_still_acts_with_core_metadata_stopped(stack: Stack) -> None:
    assert (await stack.rules.post("/rule", json=HOT_RULE)).status_code == 201
    await settle(stack, "hot-pump")
    await stack.metadata.aclose()  # core-data and core-command never ran
    await settle(stack, "hot-pump")
    await stack.sim.set(1, "tank_temp_x10", 330)
    await wait_until(lambda: coil(stack))
    assert (await status(stack, "hot-pump"))["actionFailures"] == 0


async def test_an_action_on_a_missing_device_is_reported_in_status_and_others_run(stack: Stack) -> None:
    ghost = {
        **HOT_RULE,
        "id": "ghost",
        "actions": [{"command": {"deviceName": "ghost", "commandName": "PumpRun", "values": {"PumpRun": "true"}}}],
    }
    assert (await stack.rules.post("/rule", json=ghost)).status_code == 201
    assert (await stack.rules.post("/rule", json=HOT_RULE)).status_code == 201
    s = await status(stack, "ghost")
    assert s["status"] == "stopped"
    assert "device 'ghost' does not exist" in s["lastError"]
    r = await stack.rules.post("/rule/id/ghost/start")
    assert r.status_code == 404
    await stack.sim.set(1, "tank_temp_x10", 330)
    await wait_until(lambda: coil(stack))
