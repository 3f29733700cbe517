"""core-metadata's users and login (use cases on the in-memory store): hashes, delay, counting, rate limit."""

from __future__ import annotations

import argon2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core_metadata.application.users import LoginPolicy, UserManager
from core_metadata.infrastructure.users import Argon2Hasher, MemoryUserStore
from edgeplane_common.auth import LocalKeys, TokenIssuer, TokenVerifier
from edgeplane_common.errors import ContractInvalid, DuplicateName, NotFound, RateLimited, Unauthorized

FAST_ARGON2 = argon2.PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)


class Harness:
    def __init__(self, **policy: float) -> None:
        self.now = 1000.0
        self.delays: list[float] = []
        self.failures: list[str] = []
        self.store = MemoryUserStore()
        self.issuer = TokenIssuer(Ed25519PrivateKey.generate())

        async def sleep(seconds: float) -> None:
            self.delays.append(seconds)

        self.users = UserManager(
            self.store,
            Argon2Hasher(FAST_ARGON2),
            self.issuer,
            policy=LoginPolicy(**policy),  # type: ignore[arg-type]
            on_failure=self.failures.append,
            sleep=sleep,
            clock=lambda: self.now,
        )


async def test_passwords_are_kept_as_argon2id_hashes_only() -> None:
    h = Harness()
    await h.users.add("ann", "operator", "correct horse")
    stored = h.store.users["ann"]
    assert stored.password_hash.startswith("$argon2id$")
    assert "correct horse" not in stored.password_hash


async def test_login_returns_a_token_for_the_users_role() -> None:
    h = Harness(token_ttl=120)
    await h.users.add("ann", "operator", "correct horse")
    token = await h.users.login("ann", "correct horse", "10.0.0.5")
    principal = await TokenVerifier(LocalKeys({h.issuer.kid: h.issuer.public_key})).verify(token)
    assert (principal.subject, principal.role) == ("ann", "operator")
    assert h.delays == []


@pytest.mark.parametrize(("name", "password"), [("ann", "wrong password"), ("nobody", "correct horse")])
async def test_a_failed_login_waits_the_fixed_delay_and_is_counted(name: str, password: str) -> None:
    h = Harness(failure_delay=1.5)
    await h.users.add("ann", "operator", "correct horse")
    with pytest.raises(Unauthorized, match="wrong user name or password"):
        await h.users.login(name, password, "10.0.0.5")
    assert h.delays == [1.5]
    assert h.failures == ["bad_credentials"]


async def test_too_many_failures_for_a_user_block_it_until_the_window_passes() -> None:
    h = Harness(max_failures=3, window=60)
    await h.users.add("ann", "operator", "correct horse")
    for i in range(3):
        with pytest.raises(Unauthorized):
            await h.users.login("ann", "guess", f"10.0.0.{i}")
    # Even the right password is refused (and not checked) while blocked.
    with pytest.raises(RateLimited):
        await h.users.login("ann", "correct horse", "10.0.0.99")
    assert h.failures[-1] == "rate_limited"
    h.now += 61
    assert await h.users.login("ann", "correct horse", "10.0.0.99")


async def test_too_many_failures_from_one_address_block_that_address_for_every_user() -> None:
    h = Harness(max_failures=2, window=60)
    await h.users.add("ann", "operator", "correct horse")
    for name in ("bob", "carl"):
        with pytest.raises(Unauthorized):
            await h.users.login(name, "guess", "10.6.6.6")
    with pytest.raises(RateLimited):
        await h.users.login("ann", "correct horse", "10.6.6.6")
    assert await h.users.login("ann", "correct horse", "10.0.0.1")


async def test_failure_memory_is_bounded() -> None:
    h = Harness(tracked=10)
    for i in range(50):
        with pytest.raises(Unauthorized):
            await h.users.login(f"u{i}", "guess", f"10.0.{i}.1")
    assert len(h.users.failures._seen) <= 10


async def test_a_removed_users_token_is_revoked_and_cannot_be_renewed() -> None:
    h = Harness()
    await h.users.add("ann", "operator", "correct horse")
    token = await h.users.login("ann", "correct horse", "10.0.0.5")
    principal = await TokenVerifier(LocalKeys({h.issuer.kid: h.issuer.public_key})).verify(token)
    assert await h.users.revoked(principal) is None
    await h.users.remove("ann")
    assert "no longer exists" in (await h.users.revoked(principal) or "")
    with pytest.raises(Unauthorized):
        await h.users.login("ann", "correct horse", "10.0.0.5")


async def test_a_changed_role_revokes_the_old_token() -> None:
    h = Harness()
    await h.users.add("ann", "admin", "correct horse")
    principal = await TokenVerifier(LocalKeys({h.issuer.kid: h.issuer.public_key})).verify(
        await h.users.login("ann", "correct horse", "a")
    )
    await h.users.remove("ann")
    await h.users.add("ann", "viewer", "correct horse")
    assert "role" in (await h.users.revoked(principal) or "")


async def test_bad_user_input_is_refused_clearly() -> None:
    h = Harness()
    with pytest.raises(ContractInvalid, match="role"):
        await h.users.add("ann", "root", "correct horse")
    with pytest.raises(ContractInvalid, match="password"):
        await h.users.add("ann", "viewer", "short")
    with pytest.raises(ContractInvalid, match="user name"):
        await h.users.add("a b", "viewer", "correct horse")
    await h.users.add("ann", "viewer", "correct horse")
    with pytest.raises(DuplicateName):
        await h.users.add("ann", "admin", "correct horse")
    with pytest.raises(NotFound):
        await h.users.remove("nobody")


async def test_the_first_admin_is_created_only_when_there_is_no_user() -> None:
    h = Harness()
    assert await h.users.ensure_admin("admin", "first-admin-pw")
    assert not await h.users.ensure_admin("admin2", "first-admin-pw")
    assert [u.name for u in await h.users.all()] == ["admin"]


def test_argon2_uses_owasp_memory_and_still_verifies_hashes_made_with_other_parameters() -> None:
    import argon2

    from core_metadata.infrastructure.users import ARGON2_MEMORY_KIB, Argon2Hasher

    hasher = Argon2Hasher()
    made = hasher.hash("a-long-password")
    assert f"m={ARGON2_MEMORY_KIB},t=2,p=1" in made  # fits core-metadata's memory limit on a gateway
    assert hasher.verify(made, "a-long-password")
    assert not hasher.verify(made, "another-password")
    older = argon2.PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=2).hash("kept")
    assert hasher.verify(older, "kept")


def test_large_blocks_are_mapped_so_a_hash_gives_its_memory_back() -> None:
    import subprocess
    import sys

    # In a child: mallopt changes the whole process. The RSS after hashing stays near the RSS before it.
    script = """
import resource, sys
from edgeplane_common.memory import map_large_blocks
from core_metadata.infrastructure.users import Argon2Hasher
assert map_large_blocks()
h = Argon2Hasher()
h.hash("warm-up")
def rss():
    return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0])
before = rss()
for _ in range(3):
    h.hash("a-long-password")
print(rss() - before)
"""
    grown_kib = int(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout)
    assert grown_kib < 8 * 1024  # a kept arena would be 19 MiB
