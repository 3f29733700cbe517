"""Issue and verify edgeplane's tokens: JWTs signed with Ed25519 (`alg: EdDSA`), with `kid`, `exp` and a role.

Verification accepts EdDSA only, so `alg: none` and the HS256-with-the-public-key confusion fail before any
key is used; every failure is Unauthorized (401), never an exception that would turn into a 500.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edgeplane_common.auth.claims import ISSUER, Principal
from edgeplane_common.auth.keys import KeySource
from edgeplane_common.errors import Unauthorized

ALGORITHM = "EdDSA"
MAX_TOKEN_BYTES = 4096
"""Longer Authorization headers are refused unparsed: ours are ~400 bytes."""


def key_id(public: Ed25519PublicKey) -> str:
    """A stable id for a key: the start of its raw bytes' SHA-256 (so a rotated key gets a new id)."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest()[:12]).decode().rstrip("=")


def public_jwk(public: Ed25519PublicKey) -> dict[str, str]:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": key_id(public), "alg": ALGORITHM, "use": "sig"}


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """The private key in `path` (PEM, PKCS#8); created there, readable by the owner only, when missing."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 private key")
        return key
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: two services starting together must not overwrite each other's fresh key.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return key


class TokenIssuer:
    def __init__(self, private_key: Ed25519PrivateKey, *, issuer: str = ISSUER) -> None:
        self._key = private_key
        self.public_key = private_key.public_key()
        self.kid = key_id(self.public_key)
        self.issuer = issuer

    def issue(self, subject: str, role: str, *, ttl: float, kind: str = "user") -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "role": role,
            "kind": kind,
            "iat": now,
            "exp": now + int(ttl),
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.kid})

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [public_jwk(self.public_key)]}


VERIFIED_CACHE_MAX = 1024
"""Tokens remembered as verified (see `TokenVerifier`); past that the memory is cleared and starts over."""


class TokenVerifier:
    """Verifies a token against the keys of `keys`; `Unauthorized` with a reason a client can act on.

    A client sends the same token with every request, and checking its Ed25519 signature costs ~150 us, so a
    token found valid is remembered (bounded) with the key that signed it: it is accepted again without the
    signature check while that key is still the one `keys` gives for its kid and it has not expired."""

    def __init__(self, keys: KeySource, *, issuer: str = ISSUER, leeway: float = 5.0) -> None:
        self.keys = keys
        self.issuer = issuer
        self.leeway = leeway
        self._verified: dict[str, tuple[Principal, str, Ed25519PublicKey]] = {}

    async def verify(self, token: str) -> Principal:
        if len(token) > MAX_TOKEN_BYTES:
            raise Unauthorized("bearer token is too long")
        remembered = await self._remembered(token)
        if remembered is not None:
            return remembered
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as err:
            raise Unauthorized("bearer token is not a well-formed JWT") from err
        if header.get("alg") != ALGORITHM:
            raise Unauthorized(f"bearer token must be signed with {ALGORITHM}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("bearer token has no key id (kid)")
        key = await self.keys.key(kid)
        if key is None:
            raise Unauthorized("bearer token is signed with an unknown key")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "sub", "iss"]},
            )
        except jwt.ExpiredSignatureError as err:
            raise Unauthorized("bearer token has expired: log in again") from err
        except (jwt.PyJWTError, ValueError, TypeError) as err:
            raise Unauthorized("bearer token is invalid (bad signature or claims)") from err
        subject, role, kind, exp = claims.get("sub"), claims.get("role"), claims.get("kind", "user"), claims["exp"]
        if not (isinstance(subject, str) and isinstance(role, str) and isinstance(kind, str) and isinstance(exp, int)):
            raise Unauthorized("bearer token is invalid (bad claims)")
        principal = Principal(subject=subject, role=role, kind=kind, expires=exp)
        if len(self._verified) >= VERIFIED_CACHE_MAX:
            self._verified.clear()
        self._verified[token] = (principal, kid, key)
        return principal

    async def _remembered(self, token: str) -> Principal | None:
        """The principal of `token` if it was verified before, is unexpired and its key is still current."""
        known = self._verified.get(token)
        if known is None:
            return None
        principal, kid, key = known
        if time.time() < principal.expires + self.leeway and await self.keys.key(kid) is key:
            return principal
        self._verified.pop(token, None)  # another request may have dropped it meanwhile
        return None
