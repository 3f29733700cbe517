"""One lifecycle for every service: ordered start steps on an `AsyncExitStack`, then readiness.

A service's `create_app` builds its adapters, then lists what start-up does, in order (by convention the
store's Redis, then NATS, then the service's own steps):

    boot = ServiceBootstrap("core-data")
    boot.connect("Redis at host:6379/0", client.ping, close=store.close, timeout=60)
    boot.connect("NATS", bus.connect, close=bus.close)
    boot.step("system events", listener.start, stop=listener.stop)
    boot.task("retention", retention.run_forever)

Each step registers its cleanup on the stack, so teardown is exactly the reverse of what was started, also
when a step fails half-way (then only what came before it, and its own `close`, is undone). Adapters handed
to `create_app` by tests are simply not added: the bootstrap enters only what the service built, so no
`own_*` flags are needed. `readiness` turns ready once every step has run and every dependency is up; the
health endpoint (`GET /api/v3/health`) serves its `report()`, which also asks each live probe (bus connected,
Redis answering, consumer running) at that moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from edgeplane_common.errors import EdgeError, ServiceUnavailable

logger = logging.getLogger(__name__)

Action = Callable[[], Awaitable[object]]
RETRYABLE: tuple[type[BaseException], ...] = (EdgeError, OSError, TimeoutError)
"""What `connect_with_retry` retries by default: a dependency not (yet) there. Anything else is a bug or a
configuration error and fails start-up at once."""
STARTED = "start-up"
"""The readiness entry of the start steps themselves (up once the last one has run)."""
PROBE_TIMEOUT_S = 2.0
"""How long `Readiness.report` waits for one probe (under the container healthcheck's own timeout)."""

Probe = Callable[[], "str | Awaitable[str | None] | None"]
"""A live readiness check: None when the dependency is up, else why not. It may raise (down, with the error)."""


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff: first, first*factor, ... never more than cap seconds."""

    first: float = 0.1
    cap: float = 2.0
    factor: float = 2.0

    def delays(self) -> Iterator[float]:
        delay = self.first
        while True:
            yield delay
            delay = min(delay * self.factor, self.cap)


async def connect_with_retry(
    name: str,
    attempt: Action,
    *,
    timeout: float | None = None,
    backoff: Backoff = Backoff(),
    retry_on: tuple[type[BaseException], ...] = RETRYABLE,
    log: logging.Logger = logger,
) -> None:
    """Call `attempt` until it returns, sleeping `backoff` between failures; the wait is logged once when it
    starts and once when it ends, not once per try. With `timeout`, each attempt is bounded by what is left of
    it, and ServiceUnavailable (naming `name` and the last error) is raised once it has passed."""
    deadline = None if timeout is None else time.monotonic() + timeout
    delays = backoff.delays()
    waiting = False
    while True:
        try:
            if deadline is None:
                await attempt()
            else:
                # The pool/connection behind a cancelled attempt is discarded by the adapter.
                async with asyncio.timeout(max(deadline - time.monotonic(), 0.1)):
                    await attempt()
        except retry_on as err:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise ServiceUnavailable(f"{name} did not answer within {timeout:g}s: {err}") from err
            if not waiting:
                log.warning("waiting for %s (%s)", name, err or type(err).__name__)
                waiting = True
            delay = next(delays)
            await asyncio.sleep(delay if remaining is None else min(delay, remaining))
            continue
        if waiting:
            log.info("%s is available", name)
        return


@dataclass(frozen=True)
class CheckResult:
    up: bool
    message: str


class Readiness:
    """Whether a service can do its job: each named dependency (and its start-up) is up or not.

    Steps mark their entry up when they succeed; a dependency that later drops can be marked down again.
    Probes are asked by `report()`: an entry with a probe is up when its step (if any) has run and the probe
    says it is up now."""

    def __init__(self) -> None:
        self._up: dict[str, bool] = {}
        self._probes: dict[str, Probe] = {}

    def probe(self, name: str, check: Probe) -> None:
        """Ask `check` whenever readiness is reported (e.g. `bus.problem`, a Redis PING)."""
        self._probes[name] = check

    async def report(self, timeout: float = PROBE_TIMEOUT_S) -> dict[str, CheckResult]:
        """Every entry, up or down with a message; the probes are asked concurrently, each within `timeout`."""
        results = {
            name: CheckResult(True, "up") if up else CheckResult(False, "not started yet")
            for name, up in self._up.items()
        }
        asked = [name for name in self._probes if results.get(name, CheckResult(True, "")).up]
        answers = await asyncio.gather(*(_ask(self._probes[name], timeout) for name in asked))
        results.update(zip(asked, answers, strict=True))
        return results

    def expect(self, name: str) -> None:
        self._up.setdefault(name, False)

    def up(self, name: str) -> None:
        self._up[name] = True

    def down(self, name: str) -> None:
        self._up[name] = False

    @property
    def ready(self) -> bool:
        return bool(self._up) and all(self._up.values())

    def pending(self) -> list[str]:
        """What is not up yet, in the order it was expected."""
        return [name for name, up in self._up.items() if not up]

    def as_dict(self) -> dict[str, bool]:
        return dict(self._up)

    def __repr__(self) -> str:
        return f"Readiness(ready={self.ready}, pending={self.pending()})"


async def _ask(check: Probe, timeout: float) -> CheckResult:
    try:
        async with asyncio.timeout(timeout):
            answer = check()
            problem = await answer if inspect.isawaitable(answer) else answer
    except TimeoutError:
        return CheckResult(False, f"no answer within {timeout:g}s")
    except Exception as err:
        return CheckResult(False, f"{type(err).__name__}: {err}" if str(err) else type(err).__name__)
    return CheckResult(True, "up") if problem is None else CheckResult(False, problem)


@dataclass(frozen=True)
class _Step:
    name: str
    start: Action | None
    stop: Action | None
    retry: bool = False
    timeout: float | None = None
    retry_on: tuple[type[BaseException], ...] = RETRYABLE
    background: bool = False
    ready: bool = True


class ServiceBootstrap:
    """The start steps of one service, run in the order they were added (see the module docstring)."""

    def __init__(self, service: str, *, started_message: str | None = None, backoff: Backoff = Backoff()) -> None:
        self.service = service
        self.readiness = Readiness()
        self.readiness.expect(STARTED)
        self._started_message = started_message or f"{service} started"
        self._backoff = backoff
        self._steps: list[_Step] = []

    def connect(
        self,
        name: str,
        attempt: Action,
        *,
        close: Action | None = None,
        timeout: float | None = None,
        retry_on: tuple[type[BaseException], ...] = RETRYABLE,
        first: bool = False,
    ) -> None:
        """A dependency: `attempt` is retried (`connect_with_retry`) until it succeeds, or until `timeout`
        when given. `close` is registered before the first attempt: the adapter exists already and is closed
        even when it never connected, so it must be safe to call then. `first`: before the steps added so
        far (the secret store, which the service's own steps read from)."""
        self.readiness.expect(name)
        step = _Step(name, attempt, close, retry=True, timeout=timeout, retry_on=retry_on)
        if first:
            self._steps.insert(0, step)
        else:
            self._steps.append(step)

    def step(self, name: str, start: Action, *, stop: Action | None = None) -> None:
        """One of the service's own start steps (it may wait by itself); `stop` is registered once `start`
        has returned."""
        self._steps.append(_Step(name, start, stop, ready=False))

    def close(self, name: str, close: Action) -> None:
        """Only a cleanup at this point of the order: an adapter the service built and uses lazily."""
        self._steps.append(_Step(name, None, close, ready=False))

    def task(self, name: str, run: Action, *, ready: bool = False) -> None:
        """A background task started at this point and cancelled on teardown. With `ready`, readiness waits
        until it has returned (e.g. a consumer that retries until it is subscribed)."""
        if ready:
            self.readiness.expect(name)
        self._steps.append(_Step(name, run, None, background=True, ready=ready))

    @asynccontextmanager
    async def run(self) -> AsyncIterator[Readiness]:
        """Start every step in order; on exit (or a failed start) undo them in reverse."""
        async with AsyncExitStack() as stack:
            for step in self._steps:
                await self._enter(stack, step)
            self.readiness.up(STARTED)
            logger.info("%s", self._started_message)
            try:
                yield self.readiness
            finally:
                self.readiness.down(STARTED)

    @asynccontextmanager
    async def lifespan(self, _app: Any = None) -> AsyncIterator[None]:
        """`run()` as an ASGI lifespan (`FastAPI(lifespan=boot.lifespan)`); it yields no lifespan state."""
        async with self.run():
            yield

    async def _enter(self, stack: AsyncExitStack, step: _Step) -> None:
        if step.background:
            assert step.start is not None
            stack.push_async_callback(_cancel, self._spawn(step))
            return
        if step.retry:
            if step.stop is not None:
                stack.push_async_callback(_closer(step.name, step.stop))
            assert step.start is not None
            await connect_with_retry(
                step.name, step.start, timeout=step.timeout, backoff=self._backoff, retry_on=step.retry_on
            )
        elif step.start is not None:
            await step.start()
            if step.stop is not None:
                stack.push_async_callback(_closer(step.name, step.stop))
        elif step.stop is not None:
            stack.push_async_callback(_closer(step.name, step.stop))
        if step.ready:
            self.readiness.up(step.name)

    def _spawn(self, step: _Step) -> asyncio.Task[None]:
        assert step.start is not None
        start = step.start

        async def body() -> None:
            await start()
            if step.ready:
                self.readiness.up(step.name)

        task = asyncio.create_task(body(), name=f"{self.service} {step.name}")
        task.add_done_callback(_log_failure)
        return task


def _closer(name: str, close: Action) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        # One failing cleanup must not keep the others (earlier steps) from running.
        try:
            await close()
        except Exception:
            logger.exception("stopping %s failed", name)

    return run


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("background task %r failed", task.get_name(), exc_info=task.exception())


__all__ = [
    "PROBE_TIMEOUT_S",
    "RETRYABLE",
    "STARTED",
    "Backoff",
    "CheckResult",
    "Probe",
    "Readiness",
    "ServiceBootstrap",
    "connect_with_retry",
]
