"""What a token says, without PyJWT or cryptography: the `Principal`, the `Verifier` contract, the claims of a
token received straight from its issuer, and a verifier built on the first token it is asked to check.

A process that never verifies a signature (the console, until its own API is called with a token) then never
loads the ~9 MiB that PyJWT and cryptography cost."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from edgeplane_common.errors import CommunicationError

if TYPE_CHECKING:
    from edgeplane_common.auth.tokens import TokenVerifier

ISSUER = "edgeplane"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified token speaks for: a user (`kind="user"`) or a service (`kind="service"`)."""

    subject: str
    role: str
    kind: str
    expires: int


class Verifier(Protocol):
    async def verify(self, token: str) -> Principal:
        """The principal of a valid token; `Unauthorized` otherwise."""
        ...


def issued_principal(token: str, *, issuer: str = ISSUER) -> Principal:
    """The principal a token names, read WITHOUT checking its signature: only for a token this process has
    just received from the issuer itself, over its own connection to it (the login answer), as OpenID Connect
    Core 3.1.3.7 allows for an ID token received directly from the token endpoint over TLS. Verifying it
    would prove nothing more: the keys come from the same issuer over the same kind of connection. Each
    service the token is then sent to verifies it. The claims are still checked (issuer, unexpired, types),
    so a broken answer is refused (CommunicationError, 502: the issuer answered wrongly) rather than believed."""
    parts = token.split(".")
    if len(parts) != 3:
        raise CommunicationError("the login answered with a token that is not a JWT")
    try:
        payload = parts[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, UnicodeDecodeError, ValueError) as err:
        raise CommunicationError("the login answered with a token whose claims cannot be read") from err
    if not isinstance(claims, dict) or claims.get("iss") != issuer:
        raise CommunicationError("the login answered with a token of another issuer")
    subject, role, kind, exp = claims.get("sub"), claims.get("role"), claims.get("kind", "user"), claims.get("exp")
    if not (isinstance(subject, str) and isinstance(role, str) and isinstance(kind, str) and type(exp) is int):
        raise CommunicationError("the login answered with a token without its subject, role or expiry")
    if exp <= time.time():
        raise CommunicationError("the login answered with an expired token")
    return Principal(subject=subject, role=role, kind=kind, expires=exp)


class LazyVerifier:
    """A `Verifier` whose real one (`factory()`, which loads PyJWT and cryptography) is built on the first token
    it checks, in a worker thread so the import does not stall the event loop; every check goes to it."""

    def __init__(self, factory: Callable[[], TokenVerifier]) -> None:
        self._factory = factory
        self._verifier: TokenVerifier | None = None
        self._lock = asyncio.Lock()

    @property
    def loaded(self) -> bool:
        return self._verifier is not None

    async def verify(self, token: str) -> Principal:
        if self._verifier is None:
            async with self._lock:
                if self._verifier is None:
                    self._verifier = await asyncio.to_thread(self._factory)
        return await self._verifier.verify(token)


__all__ = ["ISSUER", "LazyVerifier", "Principal", "Verifier", "issued_principal"]
