"""Process supervision for `edgeplane up`: port checks, embedded servers, child services, health, stop.

The CLI only parses options, prints and turns signals into `stop_requested()`; everything that can go
wrong with processes lives here and is tested on its own (tests/unit/test_launcher_supervisor.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from edgeplane.services import LOG_JSON_ENV, METADATA_URL_ENV, NATS, REDIS, SERVICES, Infra, Service
from edgeplane_common.embedded import EmbeddedNats, EmbeddedRedis, PortBusyError, port_in_use

STATE_FILE = "run.json"
LOOPBACK = "127.0.0.1"
ANY_HOST = "0.0.0.0"  # where services bind by default (HttpSettings.host)


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

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
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
        """Exit code, or None while running (or never started)."""
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


def http_ping(url: str) -> bool:
    if url.startswith("tcp://"):
        return tcp_reachable(url)
    try:
        # trust_env=False: an HTTP(S)_PROXY in the environment must not capture loopback checks.
        return httpx.get(url, timeout=1.0, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


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

    def start(self) -> object: ...

    def stop(self) -> None: ...


ServerFactory = Callable[[Infra, str, int, Path], Server]


def embedded_server(infra: Infra, host: str, port: int, data_dir: Path) -> Server:
    if infra is NATS:
        return EmbeddedNats(host=host, port=port, data_dir=data_dir)
    return EmbeddedRedis(host=host, port=port, data_dir=data_dir)


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
    python: str = sys.executable
    base_env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    @property
    def logs(self) -> Path:
        return self.log_dir if self.log_dir is not None else self.data_dir / "logs"

    def embedded(self) -> list[tuple[Infra, int]]:
        """The servers to start here (those a selected service needs and no URL points elsewhere)."""
        out: list[tuple[Infra, int]] = []
        if self.nats_url is None and any(s.needs_nats for s in self.services):
            out.append((NATS, self.nats_port))
        if self.redis_url is None and any(s.needs_redis for s in self.services):
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

    def __init__(self, config: StackConfig, *, server_factory: ServerFactory = embedded_server) -> None:
        self.config = config
        self._server_factory = server_factory
        self.servers: list[tuple[Infra, Server]] = []
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
                env[METADATA_URL_ENV] = other.url(self.config.port_offset)
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
                    "-m",
                    service.module,
                    *(a.format(port=service.http_port(offset)) for a in service.args),
                ],
                env=self.service_env(service),
                log_path=self.config.logs / f"{service.name}.log",
                health_url=service.ping_url(offset),
                url=service.ping_url(offset) if service.health == "tcp" else service.url(offset),
            )
            self.children.append(child)
            child.start()
        self.write_state()

    def wait_healthy(self, stop_requested: Callable[[], bool] = lambda: False) -> None:
        wait_healthy(self.children, timeout=self.config.health_timeout, stop_requested=stop_requested)

    def watch(self, stop_requested: Callable[[], bool], interval: float = 0.2) -> Child | None:
        """Block until a stop is requested (returns None) or a service exits (returns it)."""
        while not stop_requested():
            for child in self.children:
                if not child.running:
                    return child
            time.sleep(interval)
        return None

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
            rows.append(
                Row(
                    infra.name,
                    self.urls[infra.name],
                    server.pid if server else None,
                    "embedded" if server else "external",
                )
            )
        for child in self.children:
            if child.healthy_after is not None and child.running:
                status = f"healthy ({child.healthy_after:.1f} s)"
            elif child.running:
                status = "starting"
            else:
                status = f"exited ({child.poll()})"
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
            "servers": [{"name": infra.name, "url": server.url, "pid": server.pid} for infra, server in self.servers],
            "services": [{"name": c.name, "url": c.url, "pid": c.pid} for c in self.children],
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
