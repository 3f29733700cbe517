"""Adapters for the user use cases: argon2 hashes, users in Redis (and in memory for unit tests).

Redis layout: `auth:users` hash, user name -> JSON {name, role, passwordHash, created}.
"""

from __future__ import annotations

import threading

import argon2
import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from core_metadata.application.users import User
from edgeplane_common.errors import ServiceUnavailable

USERS_KEY = "auth:users"


ARGON2_MEMORY_KIB = 19 * 1024
"""OWASP's argon2id profile (19 MiB, 2 passes, 1 lane), not the library's 64 MiB default: core-metadata runs in
112 MiB on a gateway, and a 64 MiB hash at start got it killed. Hashes keep their own parameters, so hashes
made with other ones still verify."""


class Argon2Hasher:
    """argon2id, one hash at a time: concurrent logins wait for each other instead of each taking its
    19 MiB (the login delay already makes them slow on purpose)."""

    def __init__(self, hasher: argon2.PasswordHasher | None = None) -> None:
        self._h = hasher or argon2.PasswordHasher(time_cost=2, memory_cost=ARGON2_MEMORY_KIB, parallelism=1)
        self._one_at_a_time = threading.Lock()

    def hash(self, password: str) -> str:
        with self._one_at_a_time:
            return self._h.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            with self._one_at_a_time:
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
