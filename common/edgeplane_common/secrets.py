"""The secrets a service was given over `POST /api/v3/secret` (EdgeX's API), read back by name.

Two stores, chosen by `SECURITY__SECRET_KEY_FILE` (see `open_secret_store`):

- **encrypted** (a key file is configured; `edgeplane secure init` writes one per service): each secret is
  sealed with AES-256-GCM under the service's own 32-byte key (a random 96-bit nonce per write; the service
  and secret names are the associated data, so a ciphertext moved to another name or service does not open)
  and written through to the Redis hash `secrets:<service>:store`, the only key the service's Redis ACL
  needs. The service loads and decrypts its secrets at start, so reads (`get`) stay synchronous.
- **in process memory** (no key file: open mode, development): as EdgeX's insecure mode, lost at restart.

A stored secret that does not decrypt (the key file was replaced, or the value altered) is left out, named
in one error line at start and in the health check, and replaced by the next `POST` of that name; the
service runs on. Values never reach logs or `repr`. Both stores are bounded: past the caps a write is
refused with 413 and nothing changes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import orjson

from edgeplane_common.errors import LimitExceeded, NotFound, ServiceUnavailable
from edgeplane_common.settings import ServiceSettings

if TYPE_CHECKING:  # redis is imported when a service uses the encrypted store, not in open mode (RSS)
    import redis.asyncio as aioredis

log = logging.getLogger(__name__)

MAX_SECRETS = 256
"""Distinct secret names kept at once."""
MAX_SECRET_BYTES = 64 * 1024
"""UTF-8 size of one secret's keys and values together."""
KEY_BYTES = 32
"""AES-256."""
NONCE_BYTES = 12
FORMAT = b"\x01"
"""First byte of every stored value (then nonce, then ciphertext and tag): room for a later format."""
KEY_FILE_SETTING = "SECURITY__SECRET_KEY_FILE"
_SERVICE_NAME = re.compile(r"[A-Za-z0-9._-]+")
"""Service names the key prefix can carry: no ':' or glob characters, so `secrets:<name>:*` in a Redis ACL
matches this service's keys and no other service's."""


def redis_key(service: str) -> str:
    """The Redis hash holding `service`'s sealed secrets (field: secret name, value: sealed data)."""
    return f"secrets:{service}:store"


class SecretKeyError(ValueError):
    """The configured key file cannot be used (missing, unreadable, not a 32-byte key)."""


class SecretUnreadable(Exception):
    """A stored value that does not decrypt under this service's key for this name."""


class SecretUndecryptable(NotFound):
    """`get` of a secret that is stored but could not be decrypted at start (a NotFound to its readers)."""


def load_key(path: Path) -> bytes:
    """The 32-byte key in `path`: raw bytes (as `edgeplane secure init` writes it) or 64 hex digits."""
    try:
        data = path.read_bytes()
        mode = path.stat().st_mode
    except OSError as err:
        raise SecretKeyError(f"{KEY_FILE_SETTING} {path}: cannot read it ({err.strerror or err})") from None
    if len(data) != KEY_BYTES:
        try:
            data = bytes.fromhex(data.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            data = b""
    if len(data) != KEY_BYTES:
        raise SecretKeyError(
            f"{KEY_FILE_SETTING} {path}: not a {KEY_BYTES}-byte key (raw, or {2 * KEY_BYTES} hex digits); "
            "`edgeplane secure init` creates one"
        )
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("secret key file %s can be read by other users than its owner: chmod 600 it", path)
    return data


class SecretCipher:
    """AES-256-GCM sealing of one service's secrets."""

    def __init__(self, key: bytes, service: str) -> None:
        if len(key) != KEY_BYTES:
            raise SecretKeyError(f"the secret key must be {KEY_BYTES} bytes")
        # Imported here: a service with no key file (open mode) never loads cryptography (~RSS).
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(key)
        self.service = service

    def _aad(self, name: str) -> bytes:
        # JSON of the pair: unambiguous whatever characters the names hold.
        return b"edgeplane-secret\x00" + orjson.dumps([self.service, name])

    def seal(self, name: str, data: Mapping[str, str]) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return FORMAT + nonce + self._aead.encrypt(nonce, orjson.dumps(dict(data)), self._aad(name))

    def open(self, name: str, blob: bytes) -> dict[str, str]:
        if len(blob) < 1 + NONCE_BYTES + 16 or blob[:1] != FORMAT:
            raise SecretUnreadable(name)
        from cryptography.exceptions import InvalidTag

        nonce, sealed = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
        try:
            data = orjson.loads(self._aead.decrypt(nonce, sealed, self._aad(name)))
        except (InvalidTag, orjson.JSONDecodeError):
            raise SecretUnreadable(name) from None
        if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise SecretUnreadable(name)
        return data

    def __repr__(self) -> str:
        return f"SecretCipher(service={self.service!r})"


class SecretBackend(Protocol):
    """Where one service's sealed secrets are kept (values are opaque bytes to it)."""

    where: str
    """For log lines: the place, never a credential."""

    async def load(self) -> dict[str, bytes]:
        """Every stored secret of the service: name -> sealed value. Raises on a connection problem (retried
        by the caller at start)."""
        ...

    async def write(self, name: str, blob: bytes) -> None:
        """Store (or replace) one sealed value; ServiceUnavailable when the backend cannot."""
        ...

    async def close(self) -> None: ...


class RedisSecretBackend:
    """One Redis hash per service (`secrets:<service>:store`): HGETALL at start, HSET per write."""

    def __init__(self, client: aioredis.Redis, service: str) -> None:
        from edgeplane_common.redis import redis_address

        self._client = client
        self.key = redis_key(service)
        self.where = f"Redis at {redis_address(client)}, key {self.key}"

    async def load(self) -> dict[str, bytes]:
        raw = await self._client.hgetall(self.key)  # type: ignore[misc]
        # The client does not decode responses: names and values are bytes.
        return {_text(name): _bytes(blob) for name, blob in raw.items()}

    async def write(self, name: str, blob: bytes) -> None:
        from redis.exceptions import RedisError

        try:
            await self._client.hset(self.key, name, blob)  # type: ignore[misc]
        except RedisError as err:
            # redis-py's messages carry no command arguments (so no value); a refusal by the ACL says so.
            raise ServiceUnavailable(
                f"cannot store secret {name!r} in {self.where}: {type(err).__name__}: {err}"
            ) from err

    async def ping(self) -> None:
        await self._client.ping()

    async def close(self) -> None:
        await self._client.aclose()


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


class MemorySecretBackend:
    """The backend for unit tests: `tables` (service -> name -> sealed value) plays the Redis server, so
    several services' backends can share one."""

    def __init__(self, service: str, tables: dict[str, dict[str, bytes]] | None = None) -> None:
        self.tables = tables if tables is not None else {}
        self.service = service
        self.where = f"memory, table {service}"

    async def load(self) -> dict[str, bytes]:
        return dict(self.tables.get(self.service, {}))

    async def write(self, name: str, blob: bytes) -> None:
        self.tables.setdefault(self.service, {})[name] = blob

    async def close(self) -> None:
        return None


class SecretStore:
    """One service's secrets: a bounded cache read synchronously; with a `backend` (and its `cipher`), each
    write is sealed and stored there first, and `load` fills the cache at start."""

    def __init__(
        self,
        *,
        backend: SecretBackend | None = None,
        cipher: SecretCipher | None = None,
        max_secrets: int = MAX_SECRETS,
        max_secret_bytes: int = MAX_SECRET_BYTES,
    ) -> None:
        if (backend is None) != (cipher is None):
            raise ValueError("an encrypted secret store needs both a backend and a cipher")
        self.backend = backend
        self._cipher = cipher
        self.max_secrets = max_secrets
        self.max_secret_bytes = max_secret_bytes
        self._secrets: dict[str, dict[str, str]] = {}
        self._unreadable: set[str] = set()
        self._lock = asyncio.Lock()

    @property
    def encrypted(self) -> bool:
        return self.backend is not None

    def describe(self) -> str:
        """Which store this is, for the one log line at start."""
        if self.backend is None:
            return f"in process memory only, lost at restart (no {KEY_FILE_SETTING}: open mode)"
        return f"encrypted (AES-256-GCM) in {self.backend.where}"

    async def load(self) -> None:
        """Read and decrypt every stored secret (at start). Secrets that do not decrypt are left out and
        logged by name once; a connection problem raises (the start step retries it)."""
        if self.backend is None or self._cipher is None:
            return
        stored = await self.backend.load()
        secrets: dict[str, dict[str, str]] = {}
        unreadable: set[str] = set()
        for name, blob in stored.items():
            try:
                secrets[name] = self._cipher.open(name, blob)
            except SecretUnreadable:
                unreadable.add(name)
        self._secrets, self._unreadable = secrets, unreadable
        log.info("secrets: %s; %d loaded", self.describe(), len(secrets))
        if unreadable:
            log.error("secrets: %s", self._unreadable_message())

    def _unreadable_message(self) -> str:
        names = ", ".join(repr(n) for n in sorted(self._unreadable))
        return (
            f"cannot decrypt secret(s) {names} with this service's key ({KEY_FILE_SETTING} replaced, or the "
            "stored value altered or copied from another name or service): left out until posted again "
            "(POST /api/v3/secret) or the right key file is restored"
        )

    def problem(self) -> str | None:
        """For the health check: which stored secrets cannot be decrypted, if any."""
        return self._unreadable_message() if self._unreadable else None

    async def put(self, name: str, data: Mapping[str, str]) -> None:
        """Store (or replace) the secret `name`; LimitExceeded when it is too large or one too many,
        ServiceUnavailable when the backend cannot store it (then nothing changes)."""
        data = dict(data)
        size = sum(len(k.encode()) + len(v.encode()) for k, v in data.items())
        if size > self.max_secret_bytes:
            raise LimitExceeded(
                f"secret {name!r} is {size} bytes; the maximum is {self.max_secret_bytes} bytes (keys and values)"
            )
        async with self._lock:  # the count check and the write, together
            held = len(self._secrets) + len(self._unreadable)
            if name not in self._secrets and name not in self._unreadable and held >= self.max_secrets:
                raise LimitExceeded(
                    f"this service already holds the maximum of {self.max_secrets} secrets; "
                    f"replace one of them instead of adding {name!r}"
                )
            if self.backend is not None and self._cipher is not None:
                await self.backend.write(name, self._cipher.seal(name, data))
            self._secrets[name] = data
            self._unreadable.discard(name)

    def get(self, name: str) -> dict[str, str]:
        """A copy of the secret's key/values; NotFound if there is none by that name (or it cannot be
        decrypted)."""
        secret = self._secrets.get(name)
        if secret is None:
            if name in self._unreadable:
                raise SecretUndecryptable(
                    f"secret {name!r} is stored but cannot be decrypted with this service's key: post it again"
                )
            raise NotFound(f"no secret named {name!r}")
        return dict(secret)

    def names(self) -> list[str]:
        return sorted(self._secrets)

    def unreadable(self) -> list[str]:
        return sorted(self._unreadable)

    async def close(self) -> None:
        if self.backend is not None:
            await self.backend.close()

    def __len__(self) -> int:
        return len(self._secrets)

    def __repr__(self) -> str:
        # Names only: values must never end up in a log line or a traceback.
        return f"SecretStore(names={self.names()!r}, encrypted={self.encrypted})"


SECRET_REDIS_CONNECTIONS = 2
"""The store reads once at start and writes rarely: a small pool of its own beside the service's."""


def open_secret_store(settings: ServiceSettings) -> SecretStore:
    """The store `settings` asks for: encrypted in Redis with the key in `security.secret_key_file`, else in
    memory. SecretKeyError when the key file or the service name cannot be used. Not connected yet: call
    `load()` at start (`create_service_app` adds it as the first start step)."""
    key_file = settings.security.secret_key_file
    if not key_file:
        return SecretStore()
    service = settings.service_name
    if not _SERVICE_NAME.fullmatch(service):
        raise SecretKeyError(
            f"service name {service!r} cannot prefix its secret-store keys: use letters, digits, '.', '_', '-'"
        )
    from edgeplane_common.redis import create_redis

    cipher = SecretCipher(load_key(Path(key_file)), service)
    client = create_redis(settings.redis.model_copy(update={"max_connections": SECRET_REDIS_CONNECTIONS}), settings.tls)
    return SecretStore(backend=RedisSecretBackend(client, service), cipher=cipher)


__all__ = [
    "KEY_BYTES",
    "MAX_SECRETS",
    "MAX_SECRET_BYTES",
    "MemorySecretBackend",
    "RedisSecretBackend",
    "SecretBackend",
    "SecretCipher",
    "SecretKeyError",
    "SecretStore",
    "SecretUndecryptable",
    "SecretUnreadable",
    "load_key",
    "open_secret_store",
    "redis_key",
]
