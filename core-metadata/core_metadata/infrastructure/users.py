"""Adapters for the user use cases: argon2 hashes, users in Redis (and in memory for unit tests).

Redis layout: `auth:users` hash, user name -> JSON {name, role, passwordHash, created}.
"""

from __future__ import annotations

import argon2
import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from core_metadata.application.users import User
from edgeplane_common.errors import ServiceUnavailable

USERS_KEY = "auth:users"


class Argon2Hasher:
    """argon2id with the library's (RFC 9106 low-memory) defaults."""

    def __init__(self, hasher: argon2.PasswordHasher | None = None) -> None:
        self._h = hasher or argon2.PasswordHasher()

    def hash(self, password: str) -> str:
        return self._h.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._h.verify(password_hash, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False


def _dump(user: User) -> bytes:
    return orjson.dumps(
        {"name": user.name, "role": user.role, "passwordHash": user.password_hash, "created": user.created}
    )


def _load(raw: bytes | str) -> User:
    d = orjson.loads(raw)
    return User(d["name"], d["role"], d["passwordHash"], int(d["created"]))


class RedisUserStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self.r = client

    async def get(self, name: str) -> User | None:
        try:
            raw = await self.r.hget(USERS_KEY, name)
        except RedisError as err:
            raise ServiceUnavailable(f"user store unavailable: {err}") from err
        return _load(raw) if raw is not None else None

    async def add(self, user: User) -> bool:
        try:
            return bool(await self.r.hsetnx(USERS_KEY, user.name, _dump(user)))
        except RedisError as err:
            raise ServiceUnavailable(f"user store unavailable: {err}") from err

    async def remove(self, name: str) -> bool:
        try:
            return bool(await self.r.hdel(USERS_KEY, name))
        except RedisError as err:
            raise ServiceUnavailable(f"user store unavailable: {err}") from err

    async def all(self) -> list[User]:
        try:
            raw = await self.r.hvals(USERS_KEY)
        except RedisError as err:
            raise ServiceUnavailable(f"user store unavailable: {err}") from err
        return [_load(r) for r in raw]


class MemoryUserStore:
    def __init__(self) -> None:
        self.users: dict[str, User] = {}

    async def get(self, name: str) -> User | None:
        return self.users.get(name)

    async def add(self, user: User) -> bool:
        if user.name in self.users:
            return False
        self.users[user.name] = user
        return True

    async def remove(self, name: str) -> bool:
        return self.users.pop(name, None) is not None

    async def all(self) -> list[User]:
        return list(self.users.values())
