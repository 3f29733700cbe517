"""`edgeplane` command line: `up`, `status`, `version`, `opcua browse`, and the API commands of `edgeplane.api_cli`.

Thin on purpose: options and printing here, process supervision in `edgeplane.supervisor`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from edgeplane import api_cli, secure
from edgeplane.certs_cli import certs_app
from edgeplane.secure_cli import ADMIN_PASSWORD_ENV, secure_app
from edgeplane.services import NATS, PORT_OFFSET_ENV, REDIS, UnknownServiceError, select
from edgeplane.supervisor import (
    Child,
    ChildExitedError,
    Event,
    HealthTimeoutError,
    PortsBusyError,
    Row,
    ServerStartError,
    Stack,
    StackConfig,
    StopRequestedError,
    describe_exit,
    pid_alive,
    read_state,
    readiness,
    tcp_reachable,
)
from edgeplane.users_cli import token_app, user_app

app = typer.Typer(
    name="edgeplane",
    help="Run the edgeplane stack on this machine: embedded NATS and Redis plus every service.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold URLs with passwords
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_FAILED = 1
EXIT_USAGE = 2  # bad option, unknown service, busy port: nothing was started

DataDir = Annotated[
    Path, typer.Option("--data-dir", help="Where embedded NATS/Redis keep data and services write logs.")
]
Only = Annotated[
    list[str] | None,
    typer.Option("--only", help="Run only this service (repeatable). Default: every service.", metavar="NAME"),
]
PortOffset = Annotated[
    int | None,
    typer.Option(
        "--port-offset",
        envvar=PORT_OFFSET_ENV,
        help="Add this to every service's REST port (59881 → 59881+N), e.g. to run a second stack.",
    ),
]
NatsUrl = Annotated[
    str | None,
    typer.Option("--nats-url", envvar=NATS.url_env, help="Use this NATS server instead of an embedded one."),
]
RedisUrl = Annotated[
    str | None,
    typer.Option("--redis-url", envvar=REDIS.url_env, help="Use this Redis instead of an embedded one."),
]


class _Signals:
    """SIGINT/SIGTERM/SIGHUP → a stop request; a second one → stop without waiting for the grace period."""

    def __init__(self) -> None:
        self.count = 0

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        if self.count == 2:
            err.print("[yellow]second signal: killing what is left[/]")

    def stop_requested(self) -> bool:
        return self.count >= 1

    def force_requested(self) -> bool:
        return self.count >= 2


def _table(rows: list[Row]) -> Table:
    table = Table(show_edge=False, pad_edge=False)
    for column in ("service", "URL", "PID", "status"):
        table.add_column(column)
    for row in rows:
        status = row.status
        style = "green" if status.startswith(("healthy", "alive", "embedded", "external", "up")) else "red"
        table.add_row(row.name, row.url, str(row.pid) if row.pid else "-", Text(status, style=style))
    return table


def _show_log(child: Child, lines: int = 30) -> None:
    text = child.log_tail(lines)
    err.print(f"--- last lines of {child.log_path} ---", style="dim")
    err.print(Text(text or "(the log is empty)"))
    err.print("---", style="dim")


def _print_event(event: Event) -> None:
    # Text, not markup: a message may hold brackets ("[Errno 98] ...").
    line = Text(time.strftime("%H:%M:%S "), style="dim") + Text(event.message, style="green" if event.ok else "yellow")
    if event.ok:
        out.print(line)
        return
    err.print(line)
    if event.log:
        err.print(f"--- last lines of the {event.name} log ---", style="dim")
        err.print(Text(event.log))
        err.print("---", style="dim")


def _none_if_blank(value: str | None) -> str | None:
    return value if value and value.strip() else None


@app.command()
def up(
    data_dir: DataDir = Path(".data"),
    log_dir: Annotated[Path | None, typer.Option("--log-dir", help="Service logs (default: <data-dir>/logs).")] = None,
    nats_url: NatsUrl = None,
    redis_url: RedisUrl = None,
    nats_port: Annotated[int, typer.Option("--nats-port", help="Port of the embedded NATS.")] = NATS.default_port,
    redis_port: Annotated[int, typer.Option("--redis-port", help="Port of the embedded Redis.")] = REDIS.default_port,
    only: Only = None,
    port_offset: PortOffset = None,
    log_json: Annotated[
        bool, typer.Option("--log-json/--log-text", help="Service log format (JSON lines or plain text).")
    ] = True,
    health_timeout: Annotated[
        float, typer.Option("--health-timeout", help="Seconds each service gets to answer ping.")
    ] = 30.0,
    stop_timeout: Annotated[
        float, typer.Option("--stop-timeout", help="Seconds between SIGTERM and SIGKILL when stopping.")
    ] = 10.0,
    secure_mode: Annotated[
        bool,
        typer.Option(
            "--secure",
            help="Secure mode: tokens and roles, TLS, NATS and Redis users, encrypted secrets; generated in "
            "<data-dir>/secure on first use (see `edgeplane secure init`).",
        ),
    ] = False,
) -> None:
    """Start embedded NATS and Redis (unless URLs are given), then every service; Ctrl-C stops all."""
    started = time.monotonic()
    try:
        services = select(only)
    except UnknownServiceError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(EXIT_USAGE) from None
    secure_config = None
    if secure_mode:
        # Every service's files, not only the selected ones': a later run with other --only finds them.
        secure_config = secure.init(
            (data_dir / "secure").resolve(), admin_password=os.environ.get(ADMIN_PASSWORD_ENV) or None
        )
        out.print(f"secure mode: configuration in {secure_config.root}")
        if secure_config.admin_password:
            out.print(f"first admin: user 'admin', password [bold]{secure_config.admin_password}[/] (shown once)")

    config = StackConfig(
        services=services,
        data_dir=data_dir.resolve(),
        log_dir=log_dir.resolve() if log_dir else None,
        nats_url=_none_if_blank(nats_url),
        redis_url=_none_if_blank(redis_url),
        nats_port=nats_port,
        redis_port=redis_port,
        port_offset=port_offset or 0,
        log_json=log_json,
        health_timeout=health_timeout,
        stop_grace=stop_timeout,
        secure=secure_config,
        ca_file=str(secure_config.ca_file) if secure_config else None,
    )
    stack = Stack(config)
    try:
        stack.check_ports()
    except PortsBusyError as exc:
        _report_busy(exc)
        raise typer.Exit(EXIT_USAGE) from None

    signals = _Signals()
    signals.install()
    code = 0
    try:
        for infra, port in config.embedded():
            out.print(f"starting embedded {infra.label} on port {port}")
        stack.start_servers()
        out.print("starting " + ", ".join(s.name for s in services) + f" (logs in {config.logs})")
        stack.start_services()
        stack.wait_healthy(signals.stop_requested)
        out.print(_table(stack.rows()))
        out.print(f"[green]ready in {time.monotonic() - started:.1f} s[/]; Ctrl-C stops everything")
        if services:
            out.print(f"try: curl {services[0].ping_url(config.port_offset, scheme=config.scheme)}")
        # From here a service or server that dies is restarted; the rest keeps running.
        stack.supervise(signals.stop_requested, _print_event)
    except StopRequestedError:
        pass
    except PortsBusyError as exc:
        _report_busy(exc)
        code = EXIT_USAGE
    except ServerStartError as exc:
        err.print(f"[red]error:[/] {exc}")
        code = EXIT_FAILED
    except ChildExitedError as exc:
        err.print(f"[red]error:[/] {exc.child.name} exited during start (code {exc.code})")
        _show_log(exc.child)
        code = EXIT_FAILED
    except HealthTimeoutError as exc:
        err.print(f"[red]error:[/] {exc}")
        for child in exc.children:
            _show_log(child)
        code = EXIT_FAILED
    finally:
        stack.stop(signals.force_requested, on_step=lambda msg: out.print(msg, style="dim"))
    if code == 0:
        out.print("stopped")
    raise typer.Exit(code)


def _report_busy(exc: PortsBusyError) -> None:
    for problem in exc.problems:
        hint = ""
        owner = problem.claim.owner
        if owner == NATS.label:
            hint = " - pass --nats-port, or --nats-url to use the server already running"
        elif owner == REDIS.label:
            hint = " - pass --redis-port, or --redis-url to use the server already running"
        elif "already in use" in problem.reason:
            hint = f" - stop what holds it, or shift the service ports with --port-offset/{PORT_OFFSET_ENV}"
        err.print(f"[red]error:[/] {problem}{hint}")
    err.print("nothing was started")


@app.command()
def status(
    data_dir: DataDir = Path(".data"),
    only: Only = None,
    port_offset: PortOffset = None,
    nats_url: NatsUrl = None,
    redis_url: RedisUrl = None,
) -> None:
    """Ask every service's readiness, showing what is down (ping for one without /api/v3/health), and check
    NATS and Redis answer; exit 1 if any is down."""
    try:
        services = select(only)
    except UnknownServiceError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(EXIT_USAGE) from None
    state = read_state(data_dir.resolve()) or {}
    if port_offset is None:
        port_offset = int(state.get("portOffset", 0))
    entries = {e["name"]: e for e in state.get("servers", []) + state.get("services", [])}
    pids = {name: e.get("pid") for name, e in entries.items()}
    urls = {e["name"]: e.get("url") for e in state.get("servers", [])}

    rows: list[Row] = []
    all_up = True
    for infra, given in ((NATS, _none_if_blank(nats_url)), (REDIS, _none_if_blank(redis_url))):
        url = given or urls.get(infra.name) or f"{infra.name}://127.0.0.1:{infra.default_port}"
        ok = tcp_reachable(url)
        all_up &= ok
        pid = pids.get(infra.name)
        status = ("up" if ok else "down") + _restart_note(entries.get(infra.name))
        rows.append(Row(infra.name, url, pid if pid_alive(pid) else None, status))
    for service in services:
        ready = readiness(service, port_offset, state.get("caFile"))
        all_up &= ready.ready
        pid = pids.get(service.name)
        status = ready.status + _restart_note(entries.get(service.name))
        scheme = "https" if state.get("caFile") else "http"
        rows.append(Row(service.name, service.url(port_offset, scheme=scheme), pid if pid_alive(pid) else None, status))
    out.print(_table(rows))
    raise typer.Exit(0 if all_up else EXIT_FAILED)


def _restart_note(entry: dict[str, Any] | None) -> str:
    """What the supervisor wrote to run.json about a process's restarts, as a status suffix."""
    if not entry or (not entry.get("restarts") and entry.get("nextStartAt") is None):
        return ""
    parts = [f"restarted {entry['restarts']}x"] if entry.get("restarts") else []
    parts.append(f"last {describe_exit(entry.get('lastExit'))}")
    next_at = entry.get("nextStartAt")
    if next_at is not None:
        parts.append(f"next try in {max(0.0, float(next_at) - time.time()):.0f} s")
    return " (" + ", ".join(parts) + ")"


@app.command()
def version() -> None:
    """Print the launcher version."""
    try:
        ver = dist_version("edgeplane")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        ver = "unknown"
    out.print(f"edgeplane {ver} (Python {sys.version.split()[0]})")


opcua_app = typer.Typer(help="OPC UA tools (device-opcua).", no_args_is_help=True)
app.add_typer(opcua_app, name="opcua")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(certs_app, name="certs")
app.add_typer(secure_app, name="secure")


@opcua_app.command("browse")
def opcua_browse(
    endpoint: Annotated[str, typer.Argument(help="opc.tcp://host:port[/path] of the server")],
    start: Annotated[str, typer.Option("--start", help="Node to browse from (NodeId text).")] = "i=85",
    profile: Annotated[Path | None, typer.Option("--profile", help="Write the device profile YAML here.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Profile name (default: the server's product).")] = None,
    depth: Annotated[int, typer.Option("--depth", help="Levels to descend.")] = 8,
) -> None:
    """Browse an OPC UA server into an EdgeX device profile of its variables (value types, read/write)."""
    # Run by device-opcua's own module: the launcher imports no service package (scripts/check_imports.py).
    argv = [sys.executable, "-m", "device_opcua.browse", endpoint, "--start", start, "--depth", str(depth)]
    if profile is not None:
        argv += ["--profile", str(profile)]
    if name is not None:
        argv += ["--name", name]
    try:
        code = subprocess.call(argv)
    except OSError as exc:
        err.print(f"error: cannot run device_opcua.browse: {exc}")
        raise typer.Exit(EXIT_FAILED) from exc
    raise typer.Exit(code)


api_cli.install(app)


def main() -> None:
    app(prog_name="edgeplane")
