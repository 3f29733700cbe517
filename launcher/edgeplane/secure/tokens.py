"""Part `tokens` of `edgeplane secure init`: the token signing key, every service's service token, and the
first admin's password (given, or generated and reported once)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from edgeplane.services import Service
from edgeplane_common.auth.roles import Role
from edgeplane_common.auth.tokens import TokenIssuer, load_or_create_signing_key

SIGNING_KEY = "token-signing.pem"
ADMIN_PASSWORD = "admin-password"
"""Kept (0600) so that running init again hands core-metadata the password already shown, not a new one."""
SERVICE_TOKEN_TTL_DAYS = 365.0


def callers(services: Sequence[Service]) -> list[Service]:
    """The services that call others over REST (every REST service; the simulators speak only Modbus/OPC UA)."""
    return [s for s in services if s.health == "http"]


def init(
    secure_dir: Path,
    services: Sequence[Service],
    *,
    hosts: Sequence[str] = (),
    force: bool = False,
    admin_password: str | None = None,
) -> tuple[dict[str, dict[str, str]], str | None]:
    """The environment of each service, and the admin password when this call generated it (else None).

    Service tokens are minted on every run (they are cheap, and a rotated key must be followed by new tokens);
    the signing key is kept unless `force`. The admin password goes to core-metadata only: it creates that
    user when it finds no user at all, so a later run cannot reset an existing admin."""
    del hosts  # tokens name services, not hosts
    key_path = secure_dir / SIGNING_KEY
    if force and key_path.exists():
        key_path.unlink()
    issuer = TokenIssuer(load_or_create_signing_key(key_path))
    env: dict[str, dict[str, str]] = {"*": {"EDGEPLANE_SECURITY__ENABLED": "true"}}
    for service in callers(services):
        token = issuer.issue(service.name, Role.SERVICE, ttl=SERVICE_TOKEN_TTL_DAYS * 86400, kind="service")
        env[service.name] = {f"{service.env_prefix}SECURITY__SERVICE_TOKEN": token}
    generated = None
    if any(s.name == "core-metadata" for s in services):
        password_path = secure_dir / ADMIN_PASSWORD
        if admin_password:
            _write_private(password_path, admin_password)
        elif password_path.exists() and not force:
            admin_password = password_path.read_text().strip()
        else:
            admin_password = generated = secrets.token_urlsafe(18)
            _write_private(password_path, admin_password)
        env["core-metadata"].update(
            {
                "CORE_METADATA_SECURITY__SIGNING_KEY_FILE": str(key_path),
                "CORE_METADATA_SECURITY__ADMIN_PASSWORD": admin_password,
            }
        )
    return env, generated


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
