"""What a rule does when it fires: device commands, alerts, HTTP calls, log lines.

Actions are prepared when a rule is created (templates checked against the rule's output columns) and when it
starts (a command's device and command resolved against core-metadata, its literal values checked by the
kernel). They run off the evaluation path, in tasks, so a slow device or webhook never holds back rules;
each rule has a bounded number of firings in flight, past which a firing is dropped and counted as failed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from edgeplane_common.bus import Topics
from edgeplane_common.durations import parse_duration
from edgeplane_common.edgex.profiles import ResolvedCommand, check_settings, check_writable, resolve
from edgeplane_common.errors import CommunicationError, ContractInvalid, EdgeError, NotFound, ServiceUnavailable
from edgeplane_common.models import Device, DeviceProfile
from rules_engine.application.models import CommandAction, RestAction, RuleAction, RuleDefinition
from rules_engine.application.ports import AlertPublisher, CommandSender, DeviceDirectory, HttpSender
from rules_engine.application.runtime import RuleRuntime
from rules_engine.application.sql.compiler import Row
from rules_engine.application.templates import placeholders, render, text

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 32
"""Firings of one rule whose actions may run at once; more are dropped (a device cannot keep up anyway)."""


def check_templates(rule: RuleDefinition, columns: frozenset[str] | None) -> None:
    """ContractInvalid when a template names a column the rule's SELECT does not output."""
    if columns is None:
        return
    for index, action in enumerate(rule.actions, start=1):
        used: set[str] = set()
        if action.command is not None:
            used = placeholders(action.command.values) | placeholders(action.command.device_name)
        elif action.publish is not None:
            used = placeholders(action.publish.template) | placeholders(action.publish.topic or "")
        elif action.rest is not None:
            used = placeholders(action.rest.body_template or "") | placeholders(action.rest.url)
        missing = sorted(used - columns)
        if missing:
            have = ", ".join(sorted(columns)) or "none"
            raise ContractInvalid(
                f"action {index} ({action.kind}): template names column {missing[0]!r}, which the rule's "
                f"SELECT does not output (its columns: {have})"
            )


@dataclass
class CommandTarget:
    """A command action's device and command, as resolved against core-metadata when the rule started, and
    again whenever core-metadata announces a change of that device or its profile (`retarget`)."""

    device: Device | None = None
    command: ResolvedCommand | None = None
    problem: str | None = None
    """Why the action cannot run now (its device or profile was deleted, or no longer has the command):
    firings fail with it, without asking core-metadata, until a change of the device makes it whole again."""


@dataclass
class Services:
    directory: DeviceDirectory
    commands: CommandSender
    alerts: AlertPublisher
    http: HttpSender


@dataclass
class PreparedRule:
    """A rule's actions, ready to run."""

    definition: RuleDefinition
    targets: dict[int, CommandTarget] = field(default_factory=dict)


class ActionRunner:
    def __init__(self, services: Services) -> None:
        self.services = services
        self._in_flight: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.submitted = 0
        """Firings handed over so far (the event source yields to the loop after one, so it starts now)."""

    # -- start ---------------------------------------------------------------------------------------
    async def prepare(self, rule: RuleDefinition) -> PreparedRule:
        """Resolve every command action's device and command. NotFound / NotAllowed / ContractInvalid when
        one names a device, command or value that does not exist or fit; when core-metadata cannot be asked,
        the target is resolved on first use instead."""
        prepared = PreparedRule(rule)
        for index, action in enumerate(rule.actions, start=1):
            if action.command is None:
                continue
            target = CommandTarget()
            prepared.targets[index] = target
            if "{{" in action.command.device_name:
                continue  # a device named by the output row: resolved when it fires
            try:
                await self._resolve(action.command, action.command.device_name, target)
            except (ServiceUnavailable, CommunicationError) as err:
                log.warning(
                    "rule %s: cannot check action %d yet (%s); it is checked when it fires", rule.id, index, err
                )
            except EdgeError as err:
                raise type(err)(f"action {index} (command): {err.message}") from None
        return prepared

    async def _resolve(
        self,
        action: CommandAction,
        device_name: str,
        target: CommandTarget,
        *,
        device: Device | None = None,
        profile: DeviceProfile | None = None,
    ) -> None:
        """Resolve `target` (the device and profile given, or asked of core-metadata)."""
        directory = self.services.directory
        if device is None:
            device = await directory.device(device_name)
        if not device.profile_name:
            raise NotFound(f"device {device.name!r} has no device profile, so it has no commands")
        if profile is None or profile.name != device.profile_name:
            profile = await directory.profile(device.profile_name)
        command = resolve(profile, action.command_name)
        check_writable(device.name, command)
        names = {r.name for r in command.resources} | ({command.name} if len(command.resources) == 1 else set())
        unknown = sorted(k for k in action.values if k not in names)
        if unknown:
            raise ContractInvalid(
                f"{command.kind} {command.name!r} of device {device.name!r} has no resource {unknown[0]!r}; it "
                f"writes {', '.join(r.name for r in command.resources)}"
            )
        literal = {k: v for k, v in action.values.items() if not placeholders(v)}
        if literal:
            check_settings(device.name, command, {k: text(v) for k, v in literal.items()})
        target.device, target.command, target.problem = device, command, None

    # -- metadata changes ----------------------------------------------------------------------------
    def targets(self, prepared: PreparedRule) -> list[tuple[int, CommandAction, CommandTarget]]:
        """The rule's command actions with their targets."""
        out = []
        for index, action in enumerate(prepared.definition.actions, start=1):
            if action.command is not None:
                out.append((index, action.command, prepared.targets.setdefault(index, CommandTarget())))
        return out

    async def retarget(
        self,
        runtime: RuleRuntime,
        index: int,
        action: CommandAction,
        target: CommandTarget,
        *,
        device: Device | None = None,
        profile: DeviceProfile | None = None,
        gone: str | None = None,
    ) -> None:
        """Re-resolve one command action after a change core-metadata announced: `gone` says what was deleted;
        else the action is resolved again against the changed `device` or `profile`. A problem is kept on the
        target (firings fail with it) and reported in the rule's status."""
        if gone is not None:
            target.device, target.command = None, None
            target.problem = gone
        elif "{{" in action.device_name:
            target.device, target.command, target.problem = None, None, None  # resolved on the next firing
            return
        else:
            try:
                await self._resolve(action, action.device_name, target, device=device or target.device, profile=profile)
                log.info("rule %s: action %d targets %s again", runtime.id, index, action.device_name)
                return
            except (ServiceUnavailable, CommunicationError) as err:
                # core-metadata cannot be asked for the rest: keep what is known, checked again when it fires.
                target.device, target.command, target.problem = device or target.device, None, None
                log.warning("rule %s: action %d not checked again yet (%s)", runtime.id, index, err)
                return
            except EdgeError as err:
                # Kept: a later change of its profile is recognised by the device.
                target.device, target.command = device or target.device, None
                target.problem = err.message
        runtime.counters.error(f"action {index} (command): {target.problem}")
        log.warning("rule %s: action %d (command): %s", runtime.id, index, target.problem)

    # -- firing --------------------------------------------------------------------------------------
    def submit(self, prepared: PreparedRule, runtime: RuleRuntime, rows: list[Row], arrived_ns: int) -> None:
        rule_id = prepared.definition.id
        if self._in_flight.get(rule_id, 0) >= MAX_IN_FLIGHT:
            runtime.counters.action_failures += len(prepared.definition.actions)
            runtime.counters.error(f"actions dropped: {MAX_IN_FLIGHT} firings still in flight")
            return
        self._in_flight[rule_id] = self._in_flight.get(rule_id, 0) + 1
        self.submitted += 1
        task = asyncio.get_running_loop().create_task(self._run(prepared, runtime, rows, arrived_ns))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, prepared: PreparedRule, runtime: RuleRuntime, rows: list[Row], arrived_ns: int) -> None:
        rule = prepared.definition
        c = runtime.counters
        try:
            results = await asyncio.gather(
                *(self._action(prepared, i, a, rows) for i, a in enumerate(rule.actions, start=1)),
                return_exceptions=True,
            )
            for index, result in enumerate(results, start=1):
                if isinstance(result, BaseException):
                    c.action_failures += 1
                    message = result.message if isinstance(result, EdgeError) else repr(result)
                    c.error(f"action {index} ({rule.actions[index - 1].kind}): {message}")
                    log.warning("rule %s: action %d failed: %s", rule.id, index, message)
                else:
                    c.actions_fired += 1
            if arrived_ns:
                c.action_latency_ms = round((time.perf_counter_ns() - arrived_ns) / 1e6, 3)
        finally:
            self._in_flight[rule.id] -= 1

    async def _action(self, prepared: PreparedRule, index: int, action: RuleAction, rows: list[Row]) -> None:
        rule_id = prepared.definition.id
        last = rows[-1] if rows else {}
        if action.command is not None:
            await self._command(action.command, prepared.targets.setdefault(index, CommandTarget()), last)
        elif action.publish is not None:
            p = action.publish
            topic = render(p.topic, last) if p.topic else Topics.rule_alerts(rule_id)
            payload = render(p.template, last) if p.template is not None else _alert(rule_id, rows)
            await self.services.alerts.publish(str(topic), payload)
        elif action.rest is not None:
            await self._rest(action.rest, rule_id, rows)
        elif action.log is not None:
            level = logging.getLevelNamesMapping()[action.log.level.upper()]
            if log.isEnabledFor(level):
                log.log(level, "rule %s fired: %s", rule_id, orjson.dumps(rows, default=str).decode())

    async def _command(self, action: CommandAction, target: CommandTarget, row: Row) -> None:
        if target.problem is not None:
            raise NotFound(target.problem)
        device_name = text(render(action.device_name, row))
        if target.device is None or target.command is None or target.device.name != device_name:
            await self._resolve(action, device_name, target)
        assert target.device is not None
        assert target.command is not None
        settings = {k: text(render(v, row)) for k, v in action.values.items()}
        check_settings(target.device.name, target.command, settings)
        await self.services.commands.set(target.device, action.command_name, settings, {})

    async def _rest(self, action: RestAction, rule_id: str, rows: list[Row]) -> None:
        last = rows[-1] if rows else {}
        url = text(render(action.url, last))
        body: bytes | None
        if action.method in ("GET", "DELETE") and action.body_template is None:
            body = None
        elif action.body_template is not None:
            rendered = render(action.body_template, last)
            body = rendered.encode() if isinstance(rendered, str) else orjson.dumps(rendered, default=str)
        else:
            body = orjson.dumps(_alert(rule_id, rows), default=str)
        headers = dict(action.headers)
        if body is not None:
            headers.setdefault("Content-Type", "application/json")
        timeout = parse_duration(action.timeout)
        pause = parse_duration(action.retry_interval)
        last_problem = ""
        for attempt in range(action.retries + 1):
            if attempt:
                await asyncio.sleep(pause * 2 ** (attempt - 1))
            try:
                status = await self.services.http.send(action.method, url, headers, body, timeout)
            except EdgeError as err:
                last_problem = err.message
                continue
            if status < 400:
                return
            last_problem = f"{action.method} {url} answered {status}"
            if status < 500 and status != 429:
                break  # the request itself is wrong: sending it again cannot help
        raise CommunicationError(f"{last_problem} (after {attempt + 1} attempt(s))")

    async def drain(self) -> None:
        """Wait until every firing submitted so far has run its actions."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _alert(rule_id: str, rows: list[Row]) -> dict[str, Any]:
    return {"ruleId": rule_id, "firedAt": time.time_ns(), "data": rows}
