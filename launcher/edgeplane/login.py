"""The token `edgeplane login` stores for the other commands (secure mode).

One file, `$XDG_CONFIG_HOME/edgeplane/token` (default `~/.config/edgeplane/token`), readable by its owner
only, holding the token with the gateway it belongs to: a command sends it only to that gateway (its
core-metadata URL), so a token is never handed to another host by a mistyped `--url`.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import jwt
import orjson

TOKEN_FILE_ENV = "EDGEPLANE_TOKEN_FILE"


class LoginExpired(Exception):
    """The stored token has expired: the user must log in again."""


@dataclass(frozen=True)
class StoredLogin:
    metadata_url: str
    """core-metadata's base URL: the gateway the token belongs to."""
    url: str
    """`--url` as given to `edgeplane login` (with `port_offset`), to say which gateway in messages."""
    port_offset: int
    username: str
    role: str
    expires: int
    token: str

    def expired(self, now: float | None = None) -> bool:
        return (now if now is not None else time.time()) >= self.expires

    def describe(self) -> str:
        offset = f" --port-offset {self.port_offset}" if self.port_offset else ""
        return f"{self.url}{offset}"


def token_path() -> Path:
    explicit = os.environ.get(TOKEN_FILE_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "edgeplane" / "token"


def claims(token: str) -> dict[str, Any]:
    """The token's claims, read without verifying it: the services verify it; the CLI only needs to know
    whose it is and when it expires."""
    try:
        data: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as err:
        raise ValueError(f"core-metadata answered with a token that is not a JWT: {err}") from err
    return data


def save(metadata_url: str, url: str, port_offset: int, token: str) -> StoredLogin:
    data = claims(token)
    login = StoredLogin(
        metadata_url=metadata_url.rstrip("/"),
        url=url,
        port_offset=port_offset,
        username=str(data.get("sub", "")),
        role=str(data.get("role", "")),
        expires=int(data.get("exp", 0)),
        token=token,
    )
    path = token_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Written to a private temporary file, then renamed: the token is never readable by others, even briefly.
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(orjson.dumps(asdict(login), option=orjson.OPT_INDENT_2))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return login


def load() -> StoredLogin | None:
    """The stored login, or None when there is none (or the file is not one of ours)."""
    path = token_path()
    try:
        data = orjson.loads(path.read_bytes())
        return StoredLogin(**data)
    except (OSError, orjson.JSONDecodeError, TypeError):
        return None


def remove() -> StoredLogin | None:
    """Forget the stored login; the one removed, if any."""
    login = load()
    try:
        token_path().unlink()
    except FileNotFoundError:
        return None
    return login


def token_for(metadata_url: str) -> str | None:
    """The stored token when it belongs to the gateway whose core-metadata is `metadata_url`; LoginExpired
    when it does but has expired; None when there is none for that gateway."""
    login = load()
    if login is None or login.metadata_url != metadata_url.rstrip("/"):
        return None
    if login.expired():
        raise LoginExpired(
            f"your login as {login.username} to {login.describe()} expired at "
            f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(login.expires))}: log in again with "
            f"`edgeplane login --url {login.describe()}`"
        )
    return login.token
