"""`edgeplane secure init`: everything secure mode needs, generated into one directory.

Each part (`tokens`, and the TLS, bus-credential and secret-store parts) writes its files under that directory
and returns the environment every service needs: `{service name: {variable: value}}`, `"*"` for all. This
module merges them and writes, per service, one dotenv file (`env/<service>.env`, 0600) that the service reads
through `EDGEPLANE_ENV_FILE`; `bundle()` copies one service's file and everything it names into a folder of
its own, so a container can be given its own credentials and nothing else.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from edgeplane.secure import busauth, secretstore, tls, tokens
from edgeplane.services import SERVICES, Service

Env = dict[str, dict[str, str]]
Part = Callable[..., Env]
"""`part(secure_dir, services, *, hosts, force) -> Env`."""

SHARED = "*"
ENV_DIR = "env"
BUNDLE_ENV = "service.env"


def default_parts() -> tuple[Part, ...]:
    """Every part after `tokens`, in the order their files depend on each other."""
    return (tls.init, busauth.init, secretstore.init)


@dataclass(frozen=True)
class SecureConfig:
    root: Path
    env: dict[str, dict[str, str]]
    """Each service's variables, the shared ones included."""
    admin_password: str | None
    """The first admin's password when this run generated it (to be shown once), else None."""

    def env_file(self, service: str) -> Path:
        return self.root / ENV_DIR / f"{service}.env"

    @property
    def ca_file(self) -> Path:
        return self.root / tls.CA_CERT


def merge(envs: Sequence[Env], services: Sequence[Service]) -> dict[str, dict[str, str]]:
    """One mapping per service: every part's shared variables, then its own (a service's own value wins)."""
    merged: dict[str, dict[str, str]] = {s.name: {} for s in services}
    for env in envs:
        for name, variables in merged.items():
            variables.update(env.get(SHARED, {}))
            variables.update(env.get(name, {}))
    return merged


def init(
    root: Path,
    services: Sequence[Service] = SERVICES,
    *,
    hosts: Sequence[str] = (),
    force: bool = False,
    admin_password: str | None = None,
    parts: Sequence[Part] | None = None,
) -> SecureConfig:
    """Generate (or, without `force`, keep and complete) the secure configuration under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    token_env, generated = tokens.init(root, services, hosts=hosts, force=force, admin_password=admin_password)
    envs = [token_env]
    for part in default_parts() if parts is None else parts:
        envs.append(part(root, services, hosts=hosts, force=force))
    config = SecureConfig(root=root, env=merge(envs, services), admin_password=generated)
    for name, variables in config.env.items():
        write_env_file(config.env_file(name), variables)
    return config


def write_env_file(path: Path, variables: Mapping[str, str]) -> None:
    """A dotenv file readable by its owner only; values single-quoted (taken literally by dotenv)."""
    lines = []
    for key, value in sorted(variables.items()):
        if "'" in value or "\n" in value:
            raise ValueError(f"{key}: a generated value may not hold a quote or a line break")
        lines.append(f"{key}='{value}'\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.writelines(lines)
    os.chmod(path, 0o600)  # an existing file keeps its mode through O_CREAT


def bundle(config: SecureConfig, service: str, dest: Path, mount: str, *, owner: int | None = None) -> Path:
    """Copy `service`'s variables, and every file under the secure directory they name, into `dest`, with
    those paths rewritten to `mount` (where `dest` will be seen by the service, e.g. a container's volume),
    owned by `owner` (a uid) when given. Returns the bundle's env file."""
    root = config.root.resolve()
    variables: dict[str, str] = {}
    for key, value in config.env[service].items():
        path = Path(value)
        if path.is_absolute() and path.is_file() and path.resolve().is_relative_to(root):
            relative = path.resolve().relative_to(root)  # kept: certs/x.key and secrets/x.key both exist
            _copy(root / relative, dest / relative, 0o600, owner)
            value = f"{mount.rstrip('/')}/{relative.as_posix()}"
        variables[key] = value
    env_file = dest / BUNDLE_ENV
    write_env_file(env_file, variables)
    if owner is not None:
        os.chown(env_file, owner, -1)
    return env_file


SERVER_FILES: dict[str, tuple[Path, ...]] = {
    "nats": (busauth.NATS_CONF, busauth.NATS_CERT, busauth.NATS_KEY, busauth.CA_CERT),
    "redis": (busauth.REDIS_ACL, busauth.REDIS_CERT, busauth.REDIS_KEY, busauth.CA_CERT),
}
"""What the NATS and Redis containers are given: their configuration, certificate and the CA."""


def server_bundle(config: SecureConfig, server: str, dest: Path, mount: str) -> None:
    """Copy `server`'s files into `dest`, with paths under the secure directory inside them rewritten to
    `mount`. Readable by every user of that container (0644): the server runs as its image's own user, and
    only that container mounts the bundle."""
    root = config.root.resolve()
    for relative in SERVER_FILES[server]:
        source = root / relative
        if source.is_file():
            text = source.read_text().replace(f"{root}/", f"{mount.rstrip('/')}/")
            target = dest / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            os.chmod(target, 0o644)


def _copy(source: Path, target: Path, mode: int, owner: int | None) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    os.chmod(target, mode)
    if owner is not None:
        os.chown(target, owner, -1)
        os.chown(target.parent, owner, -1)
