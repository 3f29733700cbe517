"""Where a verifier finds the public key of a `kid`: in process (core-metadata, the issuer) or from a JWKS
fetched over HTTP once and refreshed only when a token names a key it does not know."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from typing import Any, Protocol

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edgeplane_common.errors import ServiceUnavailable

log = logging.getLogger(__name__)


class KeySource(Protocol):
    async def key(self, kid: str) -> Ed25519PublicKey | None:
        """The public key with id `kid`, None when there is none."""
        ...


class LocalKeys:
    def __init__(self, keys: dict[str, Ed25519PublicKey]) -> None:
        self._keys = dict(keys)

    async def key(self, kid: str) -> Ed25519PublicKey | None:
        return self._keys.get(kid)


def parse_jwks(data: Any) -> dict[str, Ed25519PublicKey]:
    """The Ed25519 keys of a JWKS document; keys of other types are skipped."""
    found: dict[str, Ed25519PublicKey] = {}
    for entry in data.get("keys", []) if isinstance(data, dict) else []:
        if not isinstance(entry, dict) or entry.get("kty") != "OKP" or not isinstance(entry.get("kid"), str):
            continue
        try:
            key = jwt.PyJWK(entry).key
        except jwt.PyJWTError:
            continue
        if isinstance(key, Ed25519PublicKey):
            found[entry["kid"]] = key
    return found


class JwksKeys:
    """Keys from `url` (core-metadata's `/api/v3/key`). A token with an unknown `kid` triggers one refetch,
    at most once per `min_refresh` seconds, so forged key ids cannot make us call core-metadata per request."""

    def __init__(
        self,
        url: str,
        *,
        min_refresh: float = 30.0,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.url = url
        self._verify = verify
        self.min_refresh = min_refresh
        self._timeout = timeout
        self._transport = transport
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> Ed25519PublicKey | None:
        found = self._keys.get(kid)
        if found is not None:
            return found
        async with self._lock:
            found = self._keys.get(kid)
            if found is None and (self._fetched_at is None or time.monotonic() - self._fetched_at >= self.min_refresh):
                await self._fetch()
                found = self._keys.get(kid)
        return found

    async def _fetch(self) -> None:
        try:
            async with httpx.AsyncClient(
                timeout=self._timeout, transport=self._transport, verify=self._verify
            ) as client:
                response = await client.get(self.url)
                response.raise_for_status()
                keys = parse_jwks(response.json())
        except (httpx.HTTPError, ValueError) as err:
            if not self._keys:
                # Nothing to verify with yet: the caller answers 503 (try again), not 401 (your fault).
                raise ServiceUnavailable(f"cannot fetch the token keys from {self.url}: {err}") from err
            log.warning("cannot refresh the token keys from %s: %s", self.url, err)
            return
        self._fetched_at = time.monotonic()
        self._keys = keys
