"""Part `secretstore` of `edgeplane secure init`: one AES-256-GCM key per service for its encrypted secret
store (`POST /api/v3/secret`), in `secrets/<service>.key` (32 random bytes, readable by the owner only)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from edgeplane.services import Service
from edgeplane_common.secrets import KEY_BYTES

SECRETS_DIR = "secrets"


def key_path(secure_dir: Path, service: Service) -> Path:
    return secure_dir / SECRETS_DIR / f"{service.name}.key"


NO_STORE = frozenset({"console"})
"""Services that read no secret, so get no store: the console talks to the REST APIs and NATS only (no
Redis client is even loaded in its process); a secret posted to it stays in its memory."""


def holders(services: Sequence[Service]) -> list[Service]:
    """The services that keep their `POST /api/v3/secret` secrets encrypted: every edgeplane service that
    reads secrets (not the simulators, not the console)."""
    return [s for s in services if s.settings is not None and s.name not in NO_STORE]


def _write_key(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    # Created 0600 from the start (never briefly readable by others), then moved into place.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(os.urandom(KEY_BYTES))
    os.replace(tmp, path)


def init(
    secure_dir: Path, services: Sequence[Service], *, hosts: Sequence[str] = (), force: bool = False
) -> dict[str, dict[str, str]]:
    """Write a key for each service that lacks one (every one with `force`: the secrets stored under the old
    keys can then no longer be read and must be posted again) and return each service's
    `<PREFIX>SECURITY__SECRET_KEY_FILE`: the key file's absolute path on this machine."""
    del hosts  # keys name services, not hosts
    env: dict[str, dict[str, str]] = {}
    for service in holders(services):
        path = key_path(secure_dir, service).absolute()
        if force or not path.exists():
            _write_key(path)
        env[service.name] = {f"{service.env_prefix}SECURITY__SECRET_KEY_FILE": str(path)}
    return env


__all__ = ["SECRETS_DIR", "holders", "init", "key_path"]
