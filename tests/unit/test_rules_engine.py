"""The rule manager with a controlled clock and fake adapters: rules fire their actions with templates filled,
transition-only firing with hysteresis and a minimum interval hold under a noisy signal, windows close on the
clock, bad rules are refused (4xx) or stopped with the reason in their status, and none stops the others."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from edgeplane_common.bus import MessageEnvelope, Topics
from edgeplane_common.bus.memory import InMemoryBus
from edgeplane_common.clients.system_events import SystemEventListener
from edgeplane_common.edgex.events import EventRecord, validate_event
from edgeplane_common.errors import CommunicationError, ContractInvalid, DuplicateName, NotAllowed, NotFound
from edgeplane_common.models import Device, DeviceProfile, SystemEvent
from edgeplane_common.models.system_event import SystemEventAction, SystemEventType
from rules_engine.application.rules import RuleManager, parse_rule
from rules_engine.infrastructure.rule_files import load_rule_files
from rules_engine.messaging.metadata import RuleTargets
from rules_engine.settings import RES_DIR
from tests.support.rules import PROFILE, Engine, Http, event

PUMP_ON = {"command": {"deviceName": "plc1", "commandName": "PumpRun", "values": {"PumpRun": "true"}}}


async def test_a_filter_rule_writes_the_device_with_templates_filled_from_its_columns() -> None:
    e = Engine()
    await e.add(
        id="speed",
        sql="SELECT FlowRate * 2 AS speed, deviceName FROM events WHERE deviceName = 'plc1' AND FlowRate > 100",
        actions=[
            {
                "command": {
                    "deviceName": "plc1",
                    "commandName": "SpeedSetpoint",
                    "values": {"SpeedSetpoint": "{{.speed}}"},
                }
            }
        ],
    )
    await e.send(FlowRate=50)
    await e.send(FlowRate=600)
    await e.send("other", FlowRate=900)  # another device: not even offered to the rule
    assert e.commands.sent == [("plc1", "SpeedSetpoint", {"SpeedSetpoint": "1200"})]
    status = e.rules.status("speed")
    assert (status.status, status.records_in, status.matched, status.fired, status.actions_fired) == (
        "running",
        2,
        1,
        1,
        1,
    )
    assert status.action_failures == 0
    assert status.last_fired is not None
    assert status.evaluation_latency_max_us > 0


async def test_transition_with_hysteresis_and_min_interval_hold_under_a_noisy_signal() -> None:
    e = Engine()
    await e.add(
        id="hot",
        sql="SELECT TankTemperature AS t FROM events WHERE deviceName = 'plc1' AND TankTemperature > 30",
        actions=[PUMP_ON],
        options={"triggerOn": "transition", "rearm": "TankTemperature < 28", "minInterval": "10s"},
    )
    # Noise around 30: fires on the first crossing only; dips to 29 do not re-arm (hysteresis).
    for t in [25, 31, 29.5, 30.5, 29, 31, 30.2]:
        await e.send(TankTemperature=float(t), advance_ms=100)
    assert len(e.commands.sent) == 1
    # Below 28 re-arms; the next crossing is within 10 s of the first firing: held back, then fires once
    # the interval has passed and the condition still holds.
    await e.send(TankTemperature=27.0, advance_ms=100)
    await e.send(TankTemperature=31.0, advance_ms=100)
    assert len(e.commands.sent) == 1
    await e.send(TankTemperature=31.5, advance_ms=10_000)
    assert len(e.commands.sent) == 2
    await e.send(TankTemperature=32.0, advance_ms=100)
    assert len(e.commands.sent) == 2
    status = e.rules.status("hot")
    assert (status.fired, status.suppressed) == (2, 5)
    # An event without the reading is no observation: it neither re-arms nor fires.
    await e.send(FlowRate=3, advance_ms=100)
    assert e.rules.status("hot").records_in == 11


async def test_transition_without_rearm_rearms_when_the_condition_is_false() -> None:
    e = Engine()
    await e.add(
        id="t", sql="SELECT * FROM events WHERE FlowRate > 10", actions=[PUMP_ON], options={"triggerOn": "transition"}
    )
    for v in [11, 12, 5, 13, 14]:
        await e.send(FlowRate=v)
    assert len(e.commands.sent) == 2
    # Partitions are per device: another device's crossing fires for it.
    e.directory.devices["plc2"] = e.directory.devices["plc1"].model_copy(update={"name": "plc2"})
    await e.send("plc2", FlowRate=20)
    assert len(e.commands.sent) == 3


async def test_min_interval_alone_limits_the_rate() -> None:
    e = Engine()
    await e.add(
        id="r", sql="SELECT * FROM events WHERE FlowRate > 10", actions=[PUMP_ON], options={"minInterval": "1s"}
    )
    for _ in range(10):
        await e.send(FlowRate=20, advance_ms=250)
    assert len(e.commands.sent) == 3  # at 0, 1 s and 2 s of the 2.5 s


async def test_a_tumbling_average_is_published_when_the_window_closes_on_the_clock() -> None:
    e = Engine()
    e.clock.now = 1_700_000_000_000  # a multiple of 10 s: the window is [now, now + 10 s)
    await e.add(
        id="avg",
        sql="SELECT avg(TankTemperature) AS avgT, count(*) AS n, deviceName FROM events "
        "WHERE TankTemperature IS NOT NULL GROUP BY TumblingWindow(ss, 10), deviceName",
        actions=[
            {"publish": {}},
            {"publish": {"topic": "alerts.{{deviceName}}", "template": {"avg": "{{.avgT}}", "text": "avg {{avgT}}"}}},
        ],
    )
    await e.send(TankTemperature=20.0, advance_ms=1_000)
    await e.send(TankTemperature=30.0, advance_ms=1_000)
    await e.send("plc2", TankTemperature=5.0, advance_ms=1_000)
    await e.send(FlowRate=1, advance_ms=1_000)  # no temperature: filtered out by WHERE
    await e.tick(5_000)
    assert e.alerts.published == []
    await e.tick(1_000)
    topics = [t for t, _ in e.alerts.published]
    assert topics.count(Topics.rule_alerts("avg")) == 2
    assert set(topics) == {Topics.rule_alerts("avg"), "alerts.plc1", "alerts.plc2"}
    default = [p for t, p in e.alerts.published if t == Topics.rule_alerts("avg")]
    assert sorted((p["data"][0]["deviceName"], p["data"][0]["avgT"], p["data"][0]["n"]) for p in default) == [
        ("plc1", 25.0, 2),
        ("plc2", 5.0, 1),
    ]
    assert {"avg": 25.0, "text": "avg 25.0"} in [p for t, p in e.alerts.published if t == "alerts.plc1"]
    await e.tick(10_000)
    assert len(e.alerts.published) == 4  # an empty window publishes nothing


async def test_a_sliding_window_fires_after_the_condition_held_for_its_length() -> None:
    e = Engine()
    await e.add(
        id="held",
        sql="SELECT min(TankTemperature) AS coolest FROM events WHERE TankTemperature IS NOT NULL "
        "GROUP BY SlidingWindow(ss, 3) HAVING min(TankTemperature) > 30 AND count(*) >= 3",
        actions=[PUMP_ON],
        options={"triggerOn": "transition", "rearm": "max(TankTemperature) < 28"},
    )
    for t in [25, 31, 32]:
        await e.send(TankTemperature=float(t), advance_ms=1_000)
    assert e.commands.sent == []
    await e.send(TankTemperature=33.0, advance_ms=1_000)  # 31, 32, 33 over the last 3 s
    assert len(e.commands.sent) == 1
    for t in [34, 35, 29]:
        await e.send(TankTemperature=float(t), advance_ms=1_000)
    assert len(e.commands.sent) == 1


async def test_event_time_windows_use_the_origin() -> None:
    e = Engine()
    await e.add(
        id="et",
        sql="SELECT count(*) AS n FROM events GROUP BY TumblingWindow(ss, 1)",
        actions=[{"publish": {}}],
        options={"isEventTime": True, "lateTolerance": 500},
    )

    def at(ms: int) -> EventRecord:
        record = event("plc1", FlowRate=1)
        doc = {**record.doc, "origin": ms * 1_000_000}
        return validate_event(doc)

    for ms in [100, 900, 1_200, 600, 1_600, 300]:  # 600 within tolerance; 300 after the watermark passed 1000
        e.rules.dispatch(at(ms))
    await e.runner.drain()
    assert [p["data"][0]["n"] for _, p in e.alerts.published] == [3]
    assert e.rules.status("et").late_events == 1


async def test_bad_rules_are_refused_with_a_clear_4xx() -> None:
    e = Engine()
    with pytest.raises(ContractInvalid, match=r"line 1, column 30"):
        await e.add(id="a", sql="SELECT t FROM events WHERE t >", actions=[{"log": {}}])
    with pytest.raises(ContractInvalid, match="unknown stream 'pumps'"):
        await e.add(id="a", sql="SELECT t FROM pumps", actions=[{"log": {}}])
    with pytest.raises(ContractInvalid, match="template names column 'speed'"):
        await e.add(
            id="a",
            sql="SELECT FlowRate AS flow FROM events",
            actions=[
                {
                    "command": {
                        "deviceName": "plc1",
                        "commandName": "SpeedSetpoint",
                        "values": {"SpeedSetpoint": "{{.speed}}"},
                    }
                }
            ],
        )
    with pytest.raises(ContractInvalid, match="unknown action 'mqtt'"):
        parse_rule({"id": "a", "sql": "SELECT * FROM events", "actions": [{"mqtt": {}}]})
    with pytest.raises(ContractInvalid, match="actions"):
        parse_rule({"id": "a", "sql": "SELECT * FROM events", "actions": []})
    with pytest.raises(ContractInvalid, match=r"rearm needs options\.triggerOn"):
        await e.add(id="a", sql="SELECT * FROM events", actions=[{"log": {}}], options={"rearm": "x < 1"})
    await e.add(id="a", sql="SELECT * FROM events", actions=[{"log": {}}])
    with pytest.raises(DuplicateName):
        await e.add(id="a", sql="SELECT * FROM events", actions=[{"log": {}}])


async def test_an_action_naming_a_missing_device_or_command_stops_only_that_rule() -> None:
    e = Engine()
    bad_device = {"command": {"deviceName": "ghost", "commandName": "PumpRun", "values": {"PumpRun": "true"}}}
    bad_command = {"command": {"deviceName": "plc1", "commandName": "Nope", "values": {"Nope": "1"}}}
    read_only = {"command": {"deviceName": "plc1", "commandName": "FlowRate", "values": {"FlowRate": "1"}}}
    bad_value = {"command": {"deviceName": "plc1", "commandName": "Mode", "values": {"Mode": "7"}}}
    for rule_id, action in [("d", bad_device), ("c", bad_command), ("ro", read_only), ("v", bad_value)]:
        await e.add(id=rule_id, sql="SELECT * FROM events WHERE FlowRate > 1", actions=[action])
    await e.add(id="good", sql="SELECT * FROM events WHERE FlowRate > 1", actions=[PUMP_ON])
    assert "device 'ghost' does not exist" in (e.rules.status("d").last_error or "")
    assert "no device command or device resource named 'Nope'" in (e.rules.status("c").last_error or "")
    assert "read-only" in (e.rules.status("ro").last_error or "")
    assert "above the maximum 2" in (e.rules.status("v").last_error or "")
    assert [e.rules.status(i).status for i in ("d", "c", "ro", "v", "good")] == ["stopped"] * 4 + ["running"]
    with pytest.raises(NotFound):
        await e.rules.start("d")
    with pytest.raises(NotAllowed):
        await e.rules.start("ro")
    await e.send(FlowRate=5)
    assert e.commands.sent == [("plc1", "PumpRun", {"PumpRun": "true"})]
    # The device appears: starting the rule now works.
    e.directory.devices["ghost"] = e.directory.devices["plc1"].model_copy(update={"name": "ghost"})
    assert (await e.rules.start("d")).status == "running"


async def test_action_failures_are_counted_and_do_not_stop_other_actions_or_rules() -> None:
    e = Engine()
    await e.add(id="x", sql="SELECT * FROM events WHERE FlowRate > 1", actions=[PUMP_ON, {"publish": {}}, {"log": {}}])
    await e.add(id="y", sql="SELECT * FROM events WHERE FlowRate > 1", actions=[{"publish": {}}])
    e.commands.fail = CommunicationError("device service 'device-modbus' failed set command")
    await e.send(FlowRate=5)
    x = e.rules.status("x")
    assert (x.fired, x.actions_fired, x.action_failures) == (1, 2, 1)
    assert "action 1 (command): device service 'device-modbus' failed" in (x.last_error or "")
    assert len(e.alerts.published) == 2


async def test_command_targets_are_checked_when_they_fire_if_metadata_was_down_at_start() -> None:
    e = Engine()
    e.directory.down = True
    await e.add(id="x", sql="SELECT * FROM events WHERE FlowRate > 1", actions=[PUMP_ON])
    assert e.rules.status("x").status == "running"
    await e.send(FlowRate=5)
    assert e.rules.status("x").action_failures == 1
    e.directory.down = False
    await e.send(FlowRate=5)
    assert e.commands.sent == [("plc1", "PumpRun", {"PumpRun": "true"})]
    # Once resolved, core-metadata is no longer needed.
    e.directory.down = True
    await e.send(FlowRate=5)
    assert len(e.commands.sent) == 2


async def test_rest_action_retries_server_errors_but_not_client_errors() -> None:
    http = Http([503, CommunicationError("connection refused"), 200])
    e = Engine(http)
    await e.add(
        id="hook",
        sql="SELECT FlowRate AS flow FROM events WHERE FlowRate > 1",
        actions=[
            {
                "rest": {
                    "url": "http://hook/{{flow}}",
                    "method": "put",
                    "bodyTemplate": '{"flow": {{.flow}}}',
                    "retryInterval": "1ms",
                }
            }
        ],
    )
    await e.send(FlowRate=7)
    assert [(m, u, b) for m, u, _, b in http.calls] == [("PUT", "http://hook/7", b'{"flow": 7}')] * 3
    assert e.rules.status("hook").actions_fired == 1
    http.statuses = [400]
    http.calls.clear()
    await e.send(FlowRate=8)
    assert len(http.calls) == 1
    status = e.rules.status("hook")
    assert status.action_failures == 1
    assert "answered 400 (after 1 attempt(s))" in (status.last_error or "")


async def test_update_delete_stop_and_start() -> None:
    e = Engine()
    await e.add(id="x", sql="SELECT * FROM events WHERE FlowRate > 1", actions=[PUMP_ON])
    await e.rules.stop("x")
    await e.send(FlowRate=5)
    assert e.commands.sent == []
    assert e.store.rules["x"].running is False
    await e.rules.start("x")
    assert e.store.rules["x"].running is True
    await e.rules.update(
        "x", parse_rule({"id": "x", "sql": "SELECT * FROM events WHERE FlowRate > 10", "actions": [PUMP_ON]})
    )
    await e.send(FlowRate=5)
    assert e.commands.sent == []
    await e.send(FlowRate=50)
    assert len(e.commands.sent) == 1
    with pytest.raises(ContractInvalid, match="differs from the id in the path"):
        await e.rules.update("x", parse_rule({"id": "y", "sql": "SELECT * FROM events", "actions": [PUMP_ON]}))
    await e.rules.delete("x")
    assert e.store.rules == {}
    with pytest.raises(NotFound):
        e.rules.status("x")


async def test_rules_load_from_the_store_with_their_state_then_from_yaml_files(tmp_path: Path) -> None:
    e = Engine()
    await e.add(id="kept", sql="SELECT * FROM events WHERE FlowRate > 1", actions=[PUMP_ON])
    await e.add(id="off", sql="SELECT * FROM events WHERE FlowRate > 1", actions=[PUMP_ON])
    await e.rules.stop("off")
    (tmp_path / "a.yaml").write_text(
        yaml.safe_dump(
            {
                "rules": [
                    {"id": "kept", "sql": "SELECT * FROM events WHERE FlowRate > 999", "actions": [{"log": {}}]},
                    {"id": "new", "sql": "SELECT * FROM events", "actions": [{"log": {}}]},
                    {"id": "paused", "sql": "SELECT * FROM events", "actions": [{"log": {}}], "triggered": False},
                    {"id": "broken", "sql": "SELECT FROM", "actions": [{"log": {}}]},
                ]
            }
        )
    )
    (tmp_path / "b.yml").write_text("not: rules")
    restarted = RuleManager(e.store, e.runner, e.clock)
    await restarted.load(load_rule_files(tmp_path))
    states = {d.id: s.status for d, s in restarted.all()}
    assert states == {"kept": "running", "off": "stopped", "new": "running", "paused": "stopped"}
    assert "FlowRate > 1" in restarted.get("kept").sql  # the store wins over the file


async def test_the_shipped_demo_rules_compile() -> None:
    e = Engine()
    e.directory.devices["demo-plc"] = e.directory.devices["plc1"].model_copy(update={"name": "demo-plc"})
    await e.rules.load(load_rule_files(RES_DIR / "rules"))
    assert {d.id: s.status for d, s in e.rules.all()} == {
        "demo-avg-temperature": "running",
        "demo-cool-tank-pump-off": "running",
        "demo-hot-tank-pump-on": "running",
    }


class CountingTargets(RuleTargets):
    """RuleTargets telling when it has applied a change (so a test knows when an event has been handled)."""

    def __init__(self, rules: RuleManager) -> None:
        super().__init__(rules)
        self.handled = asyncio.Event()

    async def device_changed(self, device: Device) -> None:
        await super().device_changed(device)
        self.handled.set()

    async def device_deleted(self, device: Device) -> None:
        await super().device_deleted(device)
        self.handled.set()

    async def profile_changed(self, profile: DeviceProfile) -> None:
        await super().profile_changed(profile)
        self.handled.set()


async def test_command_targets_follow_core_metadatas_system_events() -> None:
    """A device deleted: its rule's status says so and firings fail without a write; re-added: it acts again.
    Driven through the real listener on a bus, as core-metadata publishes the events."""
    e = Engine()
    bus = InMemoryBus()
    await bus.connect()
    targets = CountingTargets(e.rules)
    listener = SystemEventListener(bus, targets)
    await listener.start()
    await e.add(
        id="hot",
        sql="SELECT TankTemperature AS t FROM events WHERE deviceName = 'plc1' AND TankTemperature > 30",
        actions=[PUMP_ON],
    )
    plc1 = e.directory.devices["plc1"]

    async def announce(entity: Device | DeviceProfile, action: SystemEventAction) -> None:
        kind = SystemEventType.DEVICE if isinstance(entity, Device) else SystemEventType.DEVICE_PROFILE
        event = SystemEvent(type=kind, action=action, source="core-metadata", owner="device-modbus", details=entity)
        topic = Topics.system_event("core-metadata", kind.value, action.value, "device-modbus", PROFILE.name)
        targets.handled.clear()
        await bus.publish(topic, MessageEnvelope(payload=event.to_json_dict()))
        await asyncio.wait_for(targets.handled.wait(), 5)

    await e.send(TankTemperature=31.0)
    assert len(e.commands.sent) == 1

    del e.directory.devices["plc1"]
    await announce(plc1, SystemEventAction.DELETE)
    status = e.rules.status("hot")
    assert status.last_error == "action 1 (command): device 'plc1' was deleted"
    await e.send(TankTemperature=32.0)
    assert len(e.commands.sent) == 1  # no write to a device that is gone
    status = e.rules.status("hot")
    assert (status.status, status.fired, status.action_failures) == ("running", 2, 1)

    e.directory.devices["plc1"] = plc1
    await announce(plc1, SystemEventAction.ADD)
    await e.send(TankTemperature=33.0)
    assert e.commands.sent[-1] == ("plc1", "PumpRun", {"PumpRun": "true"})
    assert len(e.commands.sent) == 2

    # A profile update that drops the command: reported, and no write; the profile back: it acts again.
    without = PROFILE.model_copy(
        update={"device_commands": [c for c in PROFILE.device_commands if c.name != "PumpRun"]}
    )
    without = without.model_copy(
        update={"device_resources": [r for r in without.device_resources if r.name != "PumpRun"]}
    )
    await announce(without, SystemEventAction.UPDATE)
    assert "PumpRun" in (e.rules.status("hot").last_error or "")
    await e.send(TankTemperature=34.0)
    assert len(e.commands.sent) == 2
    await announce(PROFILE, SystemEventAction.UPDATE)
    await e.send(TankTemperature=35.0)
    assert len(e.commands.sent) == 3
    await listener.stop()
    await bus.close()


async def test_a_rule_loaded_before_its_device_exists_starts_when_core_metadata_announces_it() -> None:
    # At a gateway's start the rules engine may load its rules before device-modbus provisions the PLC.
    e = Engine()
    late = {"command": {"deviceName": "late-plc", "commandName": "PumpRun", "values": {"PumpRun": "true"}}}
    await e.add(id="waits", sql="SELECT * FROM events WHERE FlowRate > 1", actions=[late])
    await e.add(id="stopped-by-hand", sql="SELECT * FROM events WHERE FlowRate > 1", actions=[late])
    assert e.rules.status("waits").status == "stopped"
    assert "device 'late-plc' does not exist" in (e.rules.status("waits").last_error or "")
    await e.rules.stop("stopped-by-hand")  # a person's stop ends the wait
    stored = await e.store.get("waits")
    assert stored is not None
    assert stored.running  # still meant to run after a restart

    await e.rules.device_changed(e.directory.devices["plc1"])  # another device: still waiting
    assert e.rules.status("waits").status == "stopped"

    device = e.directory.devices["plc1"].model_copy(update={"name": "late-plc"})
    e.directory.devices["late-plc"] = device
    await e.rules.device_changed(device)
    assert e.rules.status("waits").status == "running"
    assert e.rules.status("waits").last_error is None
    assert e.rules.status("stopped-by-hand").status == "stopped"
    await e.send(FlowRate=5)
    assert ("late-plc", "PumpRun", {"PumpRun": "true"}) in e.commands.sent
