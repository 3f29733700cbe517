"""The rules engine's use case: rules created, changed, started and stopped, and every event of the stream
offered to the running rules that can match it.

Dispatch is indexed: a rule whose WHERE selects one device (`deviceName = 'x'`) or cannot hold without some
reading is offered only the events of that device, carrying that reading. A rule that fails to start (an
action naming a device or command that does not exist) stays stopped with the reason in its status; no rule
can stop another.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from edgeplane_common.edgex.events import EventRecord
from edgeplane_common.errors import ContractInvalid, DuplicateName, EdgeError, NotFound
from edgeplane_common.models import Device, DeviceProfile
from rules_engine.application.actions import ActionRunner, PreparedRule, check_templates
from rules_engine.application.models import RuleDefinition, RuleStatus
from rules_engine.application.ports import Clock, RuleStore, StoredRule
from rules_engine.application.rows import event_row
from rules_engine.application.runtime import RuleRuntime
from rules_engine.application.sql.compiler import Query, Row, compile_query

log = logging.getLogger(__name__)


def parse_rule(data: Any) -> RuleDefinition:
    """A rule from JSON or YAML; ContractInvalid naming the field."""
    try:
        return RuleDefinition.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "rule"
        raise ContractInvalid(f"invalid rule: {where}: {first['msg']}") from None


@dataclass
class _Entry:
    definition: RuleDefinition
    query: Query
    runtime: RuleRuntime | None = None
    prepared: PreparedRule | None = None
    start_error: str | None = None
    waits_for_metadata: bool = False
    """It was to run (loaded, created or updated running) but names a device or command core-metadata does not
    have yet: started as soon as core-metadata announces a device or profile. At a gateway's start the rules
    engine may load its rules before a device service has provisioned the devices they command."""


class RuleManager:
    def __init__(self, store: RuleStore, runner: ActionRunner, clock: Clock) -> None:
        self.store = store
        self.runner = runner
        self.clock = clock
        self._rules: dict[str, _Entry] = {}
        self._index: dict[str | None, dict[str | None, list[RuleRuntime]]] = {}
        self.events_in = 0
        self.events_dropped = 0

    # -- compile -------------------------------------------------------------------------------------
    def compile(self, rule: RuleDefinition) -> Query:
        """The rule's query, with its templates and options checked (400 naming what is wrong)."""
        transition = rule.options.trigger_on == "transition"
        query = compile_query(rule.sql, rearm=rule.options.rearm if transition else None)
        check_templates(rule, query.output_names)
        if rule.options.rearm is not None and not transition:
            raise ContractInvalid("options.rearm needs options.triggerOn = transition")
        if rule.options.is_event_time and query.window is not None and query.window.kind.value == "CountWindow":
            raise ContractInvalid("options.isEventTime does not apply to a CountWindow")
        return query

    # -- CRUD ----------------------------------------------------------------------------------------
    async def create(self, rule: RuleDefinition) -> RuleStatus:
        query = self.compile(rule)
        if rule.id in self._rules or not await self.store.add(rule.id, StoredRule(rule.to_json_dict(), False)):
            raise DuplicateName(f"rule {rule.id!r} already exists")
        self._rules[rule.id] = _Entry(rule, query)
        if rule.triggered:
            await self._start(self._rules[rule.id], raise_errors=False)
        return self.status(rule.id)

    async def update(self, rule_id: str, rule: RuleDefinition) -> RuleStatus:
        if rule.id != rule_id:
            raise ContractInvalid(f"the rule's id {rule.id!r} differs from the id in the path {rule_id!r}")
        entry = self._entry(rule_id)
        query = self.compile(rule)
        was_running = entry.runtime is not None
        self._stop(entry)
        self._rules[rule_id] = new = _Entry(rule, query)
        await self.store.put(rule_id, StoredRule(rule.to_json_dict(), False))
        if was_running:
            await self._start(new, raise_errors=False)
        return self.status(rule_id)

    async def delete(self, rule_id: str) -> None:
        entry = self._entry(rule_id)
        self._stop(entry)
        del self._rules[rule_id]
        await self.store.delete(rule_id)

    def get(self, rule_id: str) -> RuleDefinition:
        return self._entry(rule_id).definition

    def all(self) -> list[tuple[RuleDefinition, RuleStatus]]:
        return [(e.definition, self.status(i)) for i, e in sorted(self._rules.items())]

    def status(self, rule_id: str) -> RuleStatus:
        entry = self._entry(rule_id)
        if entry.runtime is not None:
            return entry.runtime.status(True)
        status = RuleStatus(id=rule_id, status="stopped")
        if entry.start_error:
            status.last_error = entry.start_error
        return status

    async def start(self, rule_id: str) -> RuleStatus:
        await self._start(self._entry(rule_id), raise_errors=True)
        return self.status(rule_id)

    async def stop(self, rule_id: str) -> RuleStatus:
        entry = self._entry(rule_id)
        status = self.status(rule_id)
        self._stop(entry)
        entry.waits_for_metadata = False
        await self.store.put(rule_id, StoredRule(entry.definition.to_json_dict(), False))
        status.status = "stopped"
        return status

    # -- loading -------------------------------------------------------------------------------------
    async def load(self, files: Iterable[tuple[str, list[Any]]] = ()) -> None:
        """Rules from the store (each restarted if it was running), then rules from YAML files that the store
        does not have yet (created, and started unless `triggered: false`). A bad rule is logged and skipped."""
        for stored in await self.store.all():
            try:
                rule = parse_rule(stored.definition)
                self._rules[rule.id] = entry = _Entry(rule, self.compile(rule))
            except EdgeError as err:
                log.error("stored rule %r cannot be loaded: %s", stored.definition.get("id"), err)
                continue
            if stored.running:
                await self._start(entry, raise_errors=False)
        for source, items in files:
            for item in items:
                try:
                    rule = parse_rule(item)
                    if rule.id in self._rules:
                        continue
                    await self.create(rule)
                    log.info("rule %s loaded from %s", rule.id, source)
                except EdgeError as err:
                    log.error("rule in %s refused: %s", source, err)

    # -- running -------------------------------------------------------------------------------------
    async def _start(self, entry: _Entry, *, raise_errors: bool) -> None:
        rule = entry.definition
        if entry.runtime is not None:
            return
        try:
            prepared = await self.runner.prepare(rule)
        except EdgeError as err:
            entry.start_error = err.message
            # Not when a person asked to start it: they get the error and decide.
            entry.waits_for_metadata = not raise_errors and isinstance(err, NotFound)
            log.warning("rule %s not started: %s", rule.id, err.message)
            # A waiting rule is still meant to run: after a restart it is tried (and waits) again.
            await self.store.put(rule.id, StoredRule(rule.to_json_dict(), entry.waits_for_metadata))
            if raise_errors:
                raise
            return
        runner = self.runner

        def fire(runtime: RuleRuntime, rows: list[Row], arrived_ns: int) -> None:
            runner.submit(prepared, runtime, rows, arrived_ns)

        entry.prepared = prepared
        entry.start_error = None
        entry.waits_for_metadata = False
        entry.runtime = RuleRuntime(rule, entry.query, fire)
        self._reindex()
        await self.store.put(rule.id, StoredRule(rule.to_json_dict(), True))
        log.info("rule %s started", rule.id)

    def _stop(self, entry: _Entry) -> None:
        if entry.runtime is None:
            return
        entry.runtime = None
        entry.prepared = None
        self._reindex()
        log.info("rule %s stopped", entry.definition.id)

    def _reindex(self) -> None:
        index: dict[str | None, dict[str | None, list[RuleRuntime]]] = {}
        for entry in self._rules.values():
            if entry.runtime is None:
                continue
            q = entry.query
            reading = min(q.required) if q.required else None
            index.setdefault(q.device, {}).setdefault(reading, []).append(entry.runtime)
        self._index = index

    def running(self) -> list[RuleRuntime]:
        return [e.runtime for e in self._rules.values() if e.runtime is not None]

    def dispatch(self, record: EventRecord, arrived_ns: int = 0) -> int:
        """Offer one event to the rules that can match it; the number of rules it was offered to."""
        self.events_in += 1
        index = self._index
        if not index:
            return 0
        row = event_row(record)
        now = self.clock.now_ms()
        arrived = arrived_ns or time.perf_counter_ns()
        offered = 0
        for device in (record.device, None):
            by_reading = index.get(device)
            if by_reading is None:
                continue
            candidates = list(by_reading.get(None, ()))
            for reading in record.readings:
                found = by_reading.get(reading.resource)
                if found:
                    candidates.extend(found)
            for runtime in candidates:
                offered += 1
                try:
                    runtime.on_row(row, now, arrived)
                except Exception as err:  # a bug in one rule must not stop the others
                    runtime.counters.error(f"evaluation failed: {err!r}")
                    log.exception("rule %s failed on an event", runtime.id)
        return offered

    # -- metadata changes (core-metadata's system events) -----------------------------------------------
    async def device_changed(self, device: Device) -> None:
        """A device was added or updated: the command actions naming it are resolved again (a deleted device
        that is back makes its rules act again), and the rules that were waiting for it start."""
        for runtime, prepared in self._prepared():
            for index, action, target in self.runner.targets(prepared):
                if action.device_name == device.name or (
                    target.device is not None and target.device.name == device.name
                ):
                    await self.runner.retarget(runtime, index, action, target, device=device)
        await self.start_waiting()

    async def device_deleted(self, device: Device) -> None:
        """A device was deleted: the command actions naming it fail from now on, and their rules say why."""
        for runtime, prepared in self._prepared():
            for index, action, target in self.runner.targets(prepared):
                if action.device_name == device.name or (
                    target.device is not None and target.device.name == device.name
                ):
                    await self.runner.retarget(
                        runtime, index, action, target, gone=f"device {device.name!r} was deleted"
                    )

    async def profile_changed(self, profile: DeviceProfile) -> None:
        """A profile was added or updated: the command actions of its devices are resolved against it again."""
        for runtime, prepared in self._prepared():
            for index, action, target in self.runner.targets(prepared):
                if target.device is not None and target.device.profile_name == profile.name:
                    await self.runner.retarget(runtime, index, action, target, profile=profile)
        await self.start_waiting()

    async def start_waiting(self) -> None:
        """Start the rules waiting for a device or command that core-metadata may have by now."""
        for entry in list(self._rules.values()):
            if entry.waits_for_metadata and entry.runtime is None:
                await self._start(entry, raise_errors=False)

    async def profile_deleted(self, profile: DeviceProfile) -> None:
        for runtime, prepared in self._prepared():
            for index, action, target in self.runner.targets(prepared):
                if target.device is not None and target.device.profile_name == profile.name:
                    gone = f"profile {profile.name!r} of device {target.device.name!r} was deleted"
                    await self.runner.retarget(runtime, index, action, target, gone=gone)

    def _prepared(self) -> list[tuple[RuleRuntime, PreparedRule]]:
        return [
            (e.runtime, e.prepared) for e in self._rules.values() if e.runtime is not None and e.prepared is not None
        ]

    def tick(self) -> None:
        """Close the processing-time windows that are due."""
        now = self.clock.now_ms()
        for runtime in self.running():
            try:
                runtime.tick(now)
            except Exception as err:
                runtime.counters.error(f"window failed: {err!r}")
                log.exception("rule %s failed closing a window", runtime.id)

    def _entry(self, rule_id: str) -> _Entry:
        entry = self._rules.get(rule_id)
        if entry is None:
            raise NotFound(f"rule {rule_id!r} does not exist")
        return entry
