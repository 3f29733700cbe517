"""Users, login and the tokens secure mode runs on (use cases; no fastapi/redis imports).

Passwords are kept only as argon2 hashes (through the `PasswordHasher` port). A failed login answers after a
fixed delay, is counted, and past `max_failures` within `window` seconds for one user or one address, further
attempts are refused (429) without checking the password until the window has passed.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from edgeplane_common.auth import Principal, TokenIssuer
from edgeplane_common.auth.roles import USER_ROLES, Role
from edgeplane_common.errors import ContractInvalid, DuplicateName, NotFound, RateLimited, Unauthorized

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
"""argon2 cost grows with the input: a megabyte password must not cost the gateway a CPU-second."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: str
    password_hash: str
    created: int


class UserStore(Protocol):
    async def get(self, name: str) -> User | None: ...
    async def add(self, user: User) -> bool:
        """False (and nothing written) when the name is taken."""
        ...

    async def remove(self, name: str) -> bool: ...
    async def all(self) -> list[User]: ...


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...
    def verify(self, password_hash: str, password: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    token_ttl: float = 900.0
    failure_delay: float = 1.0
    max_failures: int = 5
    window: float = 300.0
    tracked: int = 10_000
    """Users/addresses whose failures are remembered at once (oldest forgotten first): bounded memory."""


class FailureLog:
    """Recent failure times per key (`user:NAME`, `addr:IP`), in a bounded LRU."""

    def __init__(self, window: float, limit: int, tracked: int, clock: Callable[[], float]) -> None:
        self.window, self.limit, self.tracked, self.clock = window, limit, tracked, clock
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str) -> deque[float]:
        times = self._seen.get(key)
        if times is None:
            return deque()
        cutoff = self.clock() - self.window
        while times and times[0] <= cutoff:
            times.popleft()
        return times

    def blocked(self, *keys: str) -> bool:
        return any(len(self._recent(k)) >= self.limit for k in keys)

    def record(self, *keys: str) -> None:
        now = self.clock()
        for key in keys:
            times = self._recent(key)
            times.append(now)
            self._seen[key] = times
            self._seen.move_to_end(key)
        while len(self._seen) > self.tracked:
            self._seen.popitem(last=False)

    def clear(self, key: str) -> None:
        self._seen.pop(key, None)


class UserManager:
    def __init__(
        self,
        store: UserStore,
        hasher: PasswordHasher,
        issuer: TokenIssuer,
        *,
        policy: LoginPolicy | None = None,
        on_failure: Callable[[str], None] = lambda reason: None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.hasher = hasher
        self.issuer = issuer
        self.policy = policy or LoginPolicy()
        self.on_failure = on_failure
        self._sleep = sleep
        self.failures = FailureLog(self.policy.window, self.policy.max_failures, self.policy.tracked, clock)
        # Verified against when the user does not exist, so an unknown name costs what a wrong password does.
        self._dummy_hash = hasher.hash("edgeplane-no-such-user")

    # -- users ---------------------------------------------------------------------------------------------
    async def add(self, name: str, role: str, password: str) -> User:
        if not NAME.match(name):
            raise ContractInvalid(f"user name {name!r} must be 1-64 letters, digits or _.@- (starting alphanumeric)")
        if role not in USER_ROLES:
            raise ContractInvalid(f"role {role!r} is not one of {', '.join(USER_ROLES)}")
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise ContractInvalid(f"the password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long")
        user = User(name, role, await asyncio.to_thread(self.hasher.hash, password), int(time.time()))
        if not await self.store.add(user):
            raise DuplicateName(f"user {name!r} already exists")
        return user

    async def remove(self, name: str) -> None:
        if not await self.store.remove(name):
            raise NotFound(f"user {name!r} does not exist")

    async def all(self) -> list[User]:
        return sorted(await self.store.all(), key=lambda u: u.name)

    async def ensure_admin(self, name: str, password: str) -> bool:
        """Create the first admin when there is no user at all (start-up bootstrap); True if created."""
        if await self.store.all():
            return False
        try:
            await self.add(name, Role.ADMIN, password)
        except DuplicateName:
            return False  # another core-metadata instance created it first
        return True

    # -- login ---------------------------------------------------------------------------------------------
    async def login(self, name: str, password: str, address: str) -> str:
        """A signed token for the user; Unauthorized (after the fixed delay) for a wrong name or password,
        RateLimited while that user or address has too many recent failures."""
        keys = (f"user:{name}", f"addr:{address}")
        if self.failures.blocked(*keys):
            self.on_failure("rate_limited")
            await self._sleep(self.policy.failure_delay)
            raise RateLimited(
                f"too many failed logins for this user or address; try again in {self.policy.window:g}s at the latest"
            )
        user = await self.store.get(name) if len(password) <= MAX_PASSWORD else None
        hashed = user.password_hash if user is not None else self._dummy_hash
        good = await asyncio.to_thread(self.hasher.verify, hashed, password[:MAX_PASSWORD])
        if user is None or not good:
            self.failures.record(*keys)
            self.on_failure("bad_credentials")
            await self._sleep(self.policy.failure_delay)
            raise Unauthorized("wrong user name or password")
        self.failures.clear(keys[0])
        return self.issuer.issue(user.name, user.role, ttl=self.policy.token_ttl)

    async def revoked(self, principal: Principal) -> str | None:
        """Why a user's still-valid token no longer counts here: the user was removed or given another role."""
        if principal.kind != "user":
            return None
        user = await self.store.get(principal.subject)
        if user is None:
            return f"user {principal.subject!r} no longer exists"
        if user.role != principal.role:
            return f"the role of user {principal.subject!r} has changed: log in again"
        return None
