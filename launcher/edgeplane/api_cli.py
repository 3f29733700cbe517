"""`edgeplane` commands for every API a user needs without curl: profiles, devices, reads and writes,
readings, live events, rules and the services' health.

Tables for people, `--json` for scripts; `--url`/`EDGEPLANE_URL` (and `--port-offset`) for a remote
gateway. In secure mode `edgeplane login` stores a token that every command then sends to that gateway.
Exit codes a script can test:

    0  done            3  not found (404)
    1  failed (also: not logged in, login expired (401), role too weak (403))
    2  bad input: refused before sending (checked against the profile) or by the service (400)
    4  a service cannot be reached (or answered 503)
"""

from __future__ import annotations

import asyncio
import getpass
import os
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

import orjson
import typer
import yaml
from rich.console import Console
from rich.table import Table

from edgeplane import login as logins
from edgeplane_common.clients.gateway import Endpoints, GatewayClient, check_write
from edgeplane_common.durations import parse_duration
from edgeplane_common.errors import ContractInvalid, EdgeError, ServiceUnavailable
from edgeplane_common.tls import CA_FILE_ENV, TlsConfigError

T = TypeVar("T")

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_NOT_FOUND, EXIT_UNAVAILABLE = 0, 1, 2, 3, 4
URL_ENV = "EDGEPLANE_URL"

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

Url = Annotated[
    str,
    typer.Option("--url", envvar=URL_ENV, help="The gateway: its host (services on their default ports)."),
]
Offset = Annotated[
    int, typer.Option("--port-offset", envvar="EDGEPLANE_PORT_OFFSET", help="Added to every service's port.")
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts) instead of a table.")]
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="EDGEPLANE_HTTP__AUTH_TOKEN",
        help="Bearer token of the services (default: the one `edgeplane login` stored for this gateway).",
    ),
]
DEFAULT_URL = "http://127.0.0.1"


def exit_code(error: EdgeError) -> int:
    status = error.status_code
    if status == 404:
        return EXIT_NOT_FOUND
    if status == 503 or isinstance(error, ServiceUnavailable):
        return EXIT_UNAVAILABLE
    if status in (400, 405, 413, 415, 416):
        return EXIT_BAD_INPUT
    return EXIT_FAILED


def stored_token(url: str, offset: int) -> str | None:
    """The token `edgeplane login` stored for this gateway, if any; an expired one ends the command."""
    try:
        return logins.token_for(Endpoints.on_host(url, offset=offset).url("core-metadata"))
    except logins.LoginExpired as expired:
        err.print(f"error: {expired}")
        raise typer.Exit(EXIT_FAILED) from None


def run(
    url: str,
    offset: int,
    token: str | None,
    call: Callable[[GatewayClient], Awaitable[T]],
    *,
    stored: bool = True,
) -> T:
    """Run one API conversation; an error is printed as the service's message and becomes the exit code.
    Without `token`, the one `edgeplane login` stored for this gateway is sent (unless `stored` is off)."""
    if token is None and stored:
        token = stored_token(url, offset)

    async def main() -> T:
        # `--url https://gw`: the services are verified with EDGEPLANE_TLS__CA_FILE when set.
        ca_file = os.environ.get(CA_FILE_ENV) or None
        async with GatewayClient(Endpoints.on_host(url, offset=offset), token=token, ca_file=ca_file) as client:
            return await call(client)

    try:
        return asyncio.run(main())
    except TlsConfigError as error:
        err.print(f"error: {error}", markup=False, highlight=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except EdgeError as error:
        message = error.message
        if error.status_code == 401 and stored:
            message += " (secure mode: log in with `edgeplane login`)"
        elif error.status_code == 403:
            message += " (your role does not allow this)"
        err.print(f"[red]error:[/] {message}", markup=True, highlight=False)
        raise typer.Exit(exit_code(error)) from None


def print_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def table(columns: list[str], rows: list[list[Any]]) -> None:
    t = Table(show_edge=False, pad_edge=False)
    for column in columns:
        t.add_column(column)
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    out.print(t)


def read_document(path: Path) -> Any:
    """A YAML or JSON file (`-` for standard input); bad input → exit 2 with the parser's words."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text()
    except OSError as error:
        err.print(f"error: cannot read {path}: {error.strerror}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        err.print(f"error: {path} is not valid YAML/JSON: {error}")
        raise typer.Exit(EXIT_BAD_INPUT) from None


def bad_input(message: str) -> typer.Exit:
    err.print(f"error: {message}")
    return typer.Exit(EXIT_BAD_INPUT)


def _time(ns: Any) -> str:
    if not isinstance(ns, int) or ns <= 0:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


# ---------------------------------------------------------------------------------------------- profiles

profile_app = typer.Typer(help="Device profiles (core-metadata).", no_args_is_help=True)
_STORED_ONLY = ("id", "created", "modified", "apiVersion", "linkedDeviceCount")


def profile_yaml(profile: dict[str, Any]) -> str:
    return yaml.safe_dump({k: v for k, v in profile.items() if k not in _STORED_ONLY}, sort_keys=False)


@profile_app.command("list")
def profile_list(url: Url = DEFAULT_URL, port_offset: Offset = 0, token: Token = None, json: Json = False) -> None:
    """Every profile."""
    profiles = run(url, port_offset, token, lambda c: c.profiles())
    if json:
        print_json(profiles)
        return
    rows = [[p["name"], p.get("manufacturer"), p.get("model"), len(p.get("deviceResources") or [])] for p in profiles]
    table(["name", "manufacturer", "model", "resources"], rows)


@profile_app.command("show")
def profile_show(
    name: str, url: Url = DEFAULT_URL, port_offset: Offset = 0, token: Token = None, json: Json = False
) -> None:
    """One profile, as YAML (or JSON)."""
    profile = run(url, port_offset, token, lambda c: c.profile(name))
    if json:
        print_json(profile)
    else:
        sys.stdout.write(profile_yaml(profile))


@profile_app.command("upload")
def profile_upload(
    file: Annotated[Path, typer.Argument(help="The profile's YAML (or JSON) file; - for standard input.")],
    replace: Annotated[bool, typer.Option("--replace", help="Replace the profile of that name.")] = False,
    url: Url = DEFAULT_URL,
    port_offset: Offset = 0,
    token: Token = None,
    json: Json = False,
) -> None:
    """Add a profile from its YAML file (core-metadata names the line of a YAML error)."""
    try:
        content = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    except OSError as error:
        raise bad_input(f"cannot read {file}: {error.strerror}") from None
    run(url, port_offset, token, lambda c: c.upload_profile(content, replace=replace, filename=file.name))
    if json:
        print_json({"uploaded": file.name, "replaced": replace})
    else:
        out.print(f"{file.name}: {'replaced' if replace else 'added'}")


@profile_app.command("download")
def profile_download(
    name: str,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to this file (default: stdout).")] = None,
    url: Url = DEFAULT_URL,
    port_offset: Offset = 0,
    token: Token = None,
) -> None:
    """A profile as a YAML file core-metadata accepts back (`profile upload --replace`)."""
    text = profile_yaml(run(url, port_offset, token, lambda c: c.profile(name)))
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
        out.print(f"{name} written to {output}")


@profile_app.command("delete")
def profile_delete(name: str, url: Url = DEFAULT_URL, port_offset: Offset = 0, token: Token = None) -> None:
    """Delete a profile (core-metadata refuses while devices use it)."""
    run(url, port_offset, token, lambda c: c.delete_profile(name))
    out.print(f"profile {name} deleted")


# ----------------------------------------------------------------------------------------------- devices

device_app = typer.Typer(help="Devices (core-metadata).", no_args_is_help=True)


@device_app.command("list")
def device_list(url: Url = DEFAULT_URL, port_offset: Offset = 0, token: Token = None, json: Json = False) -> None:
    """Every device with its state, service and profile."""
    devices = run(url, port_offset, token, lambda c: c.devices())
    if json:
        print_json(devices)
        return
    rows = [
        [d["name"], d.get("operatingState"), d.get("adminState"), d.get("serviceName"), d.get("profileName")]
        for d in devices
    ]
    table(["name", "state", "admin", "service", "profile"], rows)


@device_app.command("show")
def device_show(
    name: str, url: Url = DEFAULT_URL, port_offset: Offset = 0, token: Token = None, json: Json = False
) -> None:
    """One device, as YAML (or JSON)."""
    device = run(url, port_offset, token, lambda c: c.device(name))
    if json:
        print_json(device)
    else:
        sys.stdout.write(yaml.safe_dump(device, sort_keys=False))


@device_app.command("add")
def device_add(
    file: Annotated[
        Path | None, typer.Argument(help="The device as YAML/JSON (EdgeX's Device); - for standard input.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name")] = None,
    service: Annotated[str | None, typer.Option("--service", help="Its device service.")] = None,
    profile: Annotated[str | None, typer.Option("--profile")] = None,
    protocol: Annotated[
        list[str] | None,
        typer.Option("--protocol", help="PROTOCOL.KEY=VALUE, e.g. modbus-tcp.Address=10.0.0.5 (repeatable)."),
    ] = None,
    url: Url = DEFAULT_URL,
    port_offset: Offset = 0,
    token: Token = None,
    json: Json = False,
) -> None:
    """Add a device from a file, or from --name/--service/--profile/--protocol (options override the file)."""
    device: dict[str, Any] = {}
    if file is not None:
        loaded = read_document(file)
        if not isinstance(loaded, dict):
            raise bad_input(f"{file} must hold one device (a YAML mapping: name, serviceName, profileName, ...)")
        device = loaded
    for key, value in (("name", name), ("serviceName", service), ("profileName", profile)):
        if value is not None:
            device[key] = value
    for item in protocol or []:
        key, sep, value = item.partition("=")
        proto, dot, field = key.partition(".")
        if not sep or not dot:
            raise bad_input(f"--protocol {item!r}: write PROTOCOL.KEY=VALUE")
        device.setdefault("protocols", {}).setdefault(proto, {})[field] = value
    missing = [k for k in ("name", "serviceName", "profileName") if not device.get(k)]
    if missing:
        raise bad_input(f"the device needs {', '.join(missing)} (options --name, --service, --profile or a file)")
    device.setdefault("adminState", "UNLOCKED")
    device.setdefault("operatingState", "UP")
    device.setdefault("protocols", {})
    run(url, port_offset, token, lambda c: c.add_device(device))
    if json:
        print_json({"added": device["name"]})
    else:
        out.print(f"device {device['name']} added")


@device_app.command("delete")
def device_delete(name: str, url: Url = DEFAULT_URL, port_offset: Offset = 0, token: Token = None) -> None:
    """Delete a device."""
    run(url, port_offset, token, lambda c: c.delete_device(name))
    out.print(f"device {name} deleted")


@device_app.command("lock")
def device_lock(name: str, url: Url = DEFAULT_URL, port_offset: Offset = 0, token: Token = None) -> None:
    """Lock a device: commands to it answer 423 until it is unlocked."""
    run(url, port_offset, token, lambda c: c.set_admin_state(name, "LOCKED"))
    out.print(f"device {name} locked")


@device_app.command("unlock")
def device_unlock(name: str, url: Url = DEFAULT_URL, port_offset: Offset = 0, token: Token = None) -> None:
    """Unlock a device."""
    run(url, port_offset, token, lambda c: c.set_admin_state(name, "UNLOCKED"))
    out.print(f"device {name} unlocked")


# ----------------------------------------------------------------------------------- commands and data


def read(
    device: str,
    command: Annotated[str | None, typer.Argument(help="Without it: list the device's commands.")] = None,
    url: Url = DEFAULT_URL,
    port_offset: Offset = 0,
    token: Token = None,
    json: Json = False,
) -> None:
    """Read a device now through core-command (or list the commands it offers)."""
    if command is None:
        commands = run(url, port_offset, token, lambda c: c.device_commands(device))
        if json:
            print_json(commands)
            return
        rows = [
            [
                c["name"],
                "yes" if c.get("get") else "",
                "yes" if c.get("set") else "",
                ", ".join(f"{p['resourceName']} ({p.get('valueType')})" for p in c.get("parameters") or []),
            ]
            for c in commands
        ]
        table(["command", "read", "write", "resources"], rows)
        return
    event = run(url, port_offset, token, lambda c: c.read(device, command))
    if json:
        print_json(event)
        return
    rows = [
        [r["resourceName"], r.get("value", "(binary)"), r.get("units"), _time(r.get("origin"))]
        for r in event.get("readings") or []
    ]
    table(["resource", "value", "units", "time"], rows)


def write(
    device: str,
    command: str,
    values: Annotated[list[str], typer.Argument(help="RESOURCE=VALUE ... (one for a single-resource command).")],
    url: Url = DEFAULT_URL,
    port_offset: Offset = 0,
    token: Token = None,
    json: Json = False,
) -> None:
    """Write a device through core-command; the values are checked against its profile before sending."""
    settings: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise bad_input(f"{item!r}: write RESOURCE=VALUE")
        settings[key] = value

    async def call(client: GatewayClient) -> None:
        found = await client.device(device)
        check_write(await client.profile(found["profileName"]), device, command, settings)
        await client.write(device, command, settings)

    run(url, port_offset, token, call)
    if json:
        print_json({"device": device, "command": command, "written": settings})
    else:
        out.print(f"{device} {command}: written " + ", ".join(f"{k}={v}" for k, v in settings.items()))


def readings(
    device: str,
    since: Annotated[str, typer.Option("--since", help="How far back: 30s, 10m, 2h (Go durations).")] = "10m",
    resource: Annotated[str | None, typer.Option("--resource", help="Only this resource.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many (the newest).")] = 100,
    url: Url = DEFAULT_URL,
    port_offset: Offset = 0,
    token: Token = None,
    json: Json = False,
) -> None:
    """Stored readings of a device from core-data, newest first."""
    try:
        seconds = parse_duration(since)
    except (ValueError, ContractInvalid) as error:
        raise bad_input(f"--since {since!r}: {error}") from None
    start = datetime.now(UTC) - timedelta(seconds=seconds)
    found = run(url, port_offset, token, lambda c: c.readings(device, resource=resource, start=start, limit=limit))
    if json:
        print_json(found)
        return
    rows = [[_time(r.get("origin")), r["resourceName"], r.get("value", "(binary)"), r.get("units")] for r in found]
    table(["time", "resource", "value", "units"], rows)


# ------------------------------------------------------------------------------------------------ events

events_app = typer.Typer(help="Events as they happen (NATS).", no_args_is_help=True)


@events_app.command("tail")
def events_tail(
    device: Annotated[str | None, typer.Option("--device", help="Only this device's events.")] = None,
    count: Annotated[int, typer.Option("--count", help="Stop after this many events (0: until Ctrl-C).")] = 0,
    timeout: Annotated[float, typer.Option("--timeout", help="Give up after this many seconds (0: never).")] = 0,
    nats_url: Annotated[
        str | None,
        typer.Option(
            "--nats-url",
            envvar="EDGEPLANE_NATS__URL",
            help="Default: port 4222 of the --url host (tls:// when a CA is known).",
        ),
    ] = None,
    secure_dir: Annotated[
        Path | None,
        typer.Option(
            "--secure-dir",
            envvar="EDGEPLANE_SECURE_DIR",
            help="Secure mode: the directory of `edgeplane secure init` (.data/secure natively, .secure for compose); "
            "its NATS user `viewer` and its CA are used.",
        ),
    ] = None,
    nats_user: Annotated[str | None, typer.Option("--nats-user", envvar="EDGEPLANE_NATS__USER")] = None,
    nats_password: Annotated[
        str | None, typer.Option("--nats-password", envvar="EDGEPLANE_NATS__PASSWORD", show_default=False)
    ] = None,
    url: Url = DEFAULT_URL,
    json: Json = False,
) -> None:
    """Print each event as it is published on the bus (one line, or one JSON document per line)."""
    import nats

    from edgeplane.secure import busauth
    from edgeplane_common.bus.nats import connect_options
    from edgeplane_common.bus.topics import Topics
    from edgeplane_common.edgex.events import decode_event_payload
    from edgeplane_common.settings import NatsSettings, TlsSettings

    ca_file = os.environ.get(CA_FILE_ENV) or None
    if secure_dir is not None:
        try:
            nats_user, nats_password = busauth.viewer_credentials(secure_dir)
        except (OSError, KeyError):
            err.print(f"error: {secure_dir} has no NATS viewer credentials (run `edgeplane secure init` again)")
            raise typer.Exit(EXIT_BAD_INPUT) from None
        if (secure_dir / busauth.CA_CERT).is_file():
            ca_file = str(secure_dir / busauth.CA_CERT)
    host = urlsplit(url if "://" in url else "http://" + url).hostname
    server = nats_url or f"{'tls' if ca_file else 'nats'}://{host}:4222"
    settings = NatsSettings(url=server, user=nats_user, password=nats_password)
    options = connect_options(settings, name="edgeplane-cli", tls=TlsSettings(ca_file=ca_file), service=busauth.VIEWER)
    subject = Topics.EVENTS_ALL if device is None else f"edgex.events.device.*.*.{_escape(device)}.*"

    async def main() -> int:
        try:
            nc = await nats.connect(**options, connect_timeout=5, max_reconnect_attempts=0, allow_reconnect=False)
        except Exception as error:  # nats-py raises several unrelated types for "cannot connect"
            if "authorization" in str(error).lower():
                hint = "" if secure_dir else " (secure mode: --secure-dir, or --nats-user and --nats-password)"
                err.print(f"error: NATS at {server} refused the login: {error}{hint}")
                return EXIT_FAILED
            err.print(f"error: NATS at {server} cannot be reached: {error or type(error).__name__}")
            return EXIT_UNAVAILABLE
        seen = 0
        deadline = time.monotonic() + timeout if timeout else None
        try:
            sub = await nc.subscribe(subject)
            while not count or seen < count:
                wait = None if deadline is None else deadline - time.monotonic()
                if wait is not None and wait <= 0:
                    return EXIT_FAILED if count else EXIT_OK
                try:
                    msg = await sub.next_msg(timeout=wait if wait is not None else 3600)
                except TimeoutError:
                    continue
                try:
                    envelope = orjson.loads(msg.data)
                    event = decode_event_payload(envelope.get("payload"), envelope.get("contentType"))
                except (orjson.JSONDecodeError, EdgeError, AttributeError):
                    continue
                seen += 1
                if json:
                    sys.stdout.write(orjson.dumps(event).decode() + "\n")
                else:
                    values = " ".join(f"{r.get('resourceName')}={r.get('value')}" for r in event.get("readings") or [])
                    out.print(
                        f"{_time(event.get('origin'))} {event.get('deviceName')} {event.get('sourceName')}: {values}"
                    )
                sys.stdout.flush()
            return EXIT_OK
        finally:
            await nc.close()

    try:
        code = asyncio.run(main())
    except KeyboardInterrupt:
        code = EXIT_OK
    raise typer.Exit(code)


def _escape(name: str) -> str:
    from edgeplane_common.bus.topics import escape

    return escape(name)


# ------------------------------------------------------------------------------------------------- rules

rule_app = typer.Typer(help="Rules of the rules engine.", no_args_is_help=True)


@rule_app.command("list")
def rule_list(url: Url = DEFAULT_URL, port_offset: Offset = 0, token: Token = None, json: Json = False) -> None:
    """Every rule with its status."""
    rules = run(url, port_offset, token, lambda c: c.rules())
    if json:
        print_json(rules)
        return
    table(["id", "status", "sql"], [[r["id"], r.get("status"), r.get("sql")] for r in rules])


@rule_app.command("create")
def rule_create(
    file: Annotated[Path, typer.Argument(help="The rule as YAML/JSON ({id, sql, actions, options}); - for stdin.")],
    url: Url = DEFAULT_URL,
    port_offset: Offset = 0,
    token: Token = None,
    json: Json = False,
) -> None:
    """Create a rule (a bad rule is refused with the line and column of its SQL error)."""
    rule = read_document(file)
    if not isinstance(rule, dict):
        raise bad_input(f"{file} must hold one rule (a mapping: id, sql, actions, options)")
    run(url, port_offset, token, lambda c: c.create_rule(rule))
    if json:
        print_json({"created": rule.get("id")})
    else:
        out.print(f"rule {rule.get('id')} created")


@rule_app.command("start")
def rule_start(rule_id: str, url: Url = DEFAULT_URL, port_offset: Offset = 0, token: Token = None) -> None:
    run(url, port_offset, token, lambda c: c.start_rule(rule_id))
    out.print(f"rule {rule_id} started")


@rule_app.command("stop")
def rule_stop(rule_id: str, url: Url = DEFAULT_URL, port_offset: Offset = 0, token: Token = None) -> None:
    run(url, port_offset, token, lambda c: c.stop_rule(rule_id))
    out.print(f"rule {rule_id} stopped")


@rule_app.command("delete")
def rule_delete(rule_id: str, url: Url = DEFAULT_URL, port_offset: Offset = 0, token: Token = None) -> None:
    run(url, port_offset, token, lambda c: c.delete_rule(rule_id))
    out.print(f"rule {rule_id} deleted")


@rule_app.command("status")
def rule_status(
    rule_id: str, url: Url = DEFAULT_URL, port_offset: Offset = 0, token: Token = None, json: Json = False
) -> None:
    """A rule's counters: events in, matched, fired, action failures, last error, last firing."""
    status = run(url, port_offset, token, lambda c: c.rule_status(rule_id))
    if json:
        print_json(status)
        return
    for key, value in status.items():
        shown = _time(value) if key in ("lastFired", "lastErrorAt") else value
        out.print(f"{key:<24} {shown}")


# ---------------------------------------------------------------------------------------------- services

service_app = typer.Typer(help="The gateway's services.", no_args_is_help=True)


@service_app.command("list")
def service_list(url: Url = DEFAULT_URL, port_offset: Offset = 0, token: Token = None, json: Json = False) -> None:
    """Every service's health, version and URL; exit 4 if any is down."""

    async def call(client: GatewayClient) -> list[dict[str, Any]]:
        async def one(name: str, base: str) -> dict[str, Any]:
            row: dict[str, Any] = {"name": name, "url": base, "status": "down", "version": "", "message": ""}
            try:
                health = await client.health(name)
                row["status"] = str(health.get("status"))
                row["version"] = (await client.version(name)).get("serviceVersion", "")
            except EdgeError as error:
                row["message"] = error.message
            return row

        return list(await asyncio.gather(*(one(n, u) for n, u in client.endpoints.services.items())))

    rows = run(url, port_offset, token, call)
    if json:
        print_json(rows)
    else:
        table(["service", "status", "version", "URL"], [[r["name"], r["status"], r["version"], r["url"]] for r in rows])
    if any(r["status"] != "up" for r in rows):
        raise typer.Exit(EXIT_UNAVAILABLE)


# ------------------------------------------------------------------------------------------- login/logout


def login(
    url: Url = DEFAULT_URL,
    port_offset: Offset = 0,
    username: Annotated[
        str | None, typer.Option("--username", "-u", envvar="EDGEPLANE_USERNAME", help="Default: prompted.")
    ] = None,
    json: Json = False,
) -> None:
    """Log in to a gateway in secure mode (password from EDGEPLANE_PASSWORD or a prompt); the token is stored,
    readable by you only, and sent by the other commands to that gateway until it expires or `edgeplane logout`."""
    if not username:
        username = str(typer.prompt("user name"))
    password = os.environ.get("EDGEPLANE_PASSWORD") or getpass.getpass(f"password of {username}: ")
    user = username
    token = run(url, port_offset, None, lambda c: c.login(user, password), stored=False)
    metadata_url = Endpoints.on_host(url, offset=port_offset).url("core-metadata")
    try:
        stored = logins.save(metadata_url, url, port_offset, token)
    except (OSError, ValueError) as error:
        err.print(f"error: cannot store the token in {logins.token_path()}: {error}")
        raise typer.Exit(EXIT_FAILED) from None
    until = time.strftime("%H:%M:%S", time.localtime(stored.expires))
    if json:
        print_json({"username": stored.username, "role": stored.role, "expires": stored.expires, "url": url})
    else:
        out.print(f"logged in to {stored.describe()} as {stored.username} ({stored.role}) until {until}")


def logout(json: Json = False) -> None:
    """Forget the token `edgeplane login` stored."""
    removed = logins.remove()
    if json:
        print_json({"loggedOut": removed is not None})
    elif removed is None:
        out.print("not logged in")
    else:
        out.print(f"logged out of {removed.describe()} ({removed.username})")


def install(app: typer.Typer) -> None:
    """Add the API commands to the `edgeplane` command line."""
    app.command("login")(login)
    app.command("logout")(logout)
    app.add_typer(profile_app, name="profile")
    app.add_typer(device_app, name="device")
    app.add_typer(events_app, name="events")
    app.add_typer(rule_app, name="rule")
    app.add_typer(service_app, name="service")
    app.command("read")(read)
    app.command("write")(write)
    app.command("readings")(readings)


__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_NOT_FOUND", "EXIT_UNAVAILABLE", "install"]
