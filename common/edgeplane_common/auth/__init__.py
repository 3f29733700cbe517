"""Secure mode's identity layer: signed tokens (EdDSA JWTs), the keys that verify them, and roles.

core-metadata issues tokens and publishes its public keys as a JWKS at `/api/v3/key`; every service verifies
tokens locally with those keys (fetched once, refreshed on an unknown key id), never with a call per request.

The token and key classes are imported on first use: they load PyJWT and cryptography (~9 MiB of RSS), which
a service in open mode never needs; roles (what the middleware consults on every request) and claims (the
principal, a verifier built on first use, the claims of a token just received from the issuer) load at once.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from edgeplane_common.auth.claims import LazyVerifier, Principal, Verifier, issued_principal
from edgeplane_common.auth.roles import Role, RoutePolicy

if TYPE_CHECKING:
    from edgeplane_common.auth.keys import JwksKeys, KeySource, LocalKeys
    from edgeplane_common.auth.tokens import (
        ALGORITHM,
        MAX_TOKEN_BYTES,
        TokenIssuer,
        TokenVerifier,
        load_or_create_signing_key,
    )

_LAZY = {
    "JwksKeys": "keys",
    "KeySource": "keys",
    "LocalKeys": "keys",
    "ALGORITHM": "tokens",
    "MAX_TOKEN_BYTES": "tokens",
    "TokenIssuer": "tokens",
    "TokenVerifier": "tokens",
    "load_or_create_signing_key": "tokens",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "ALGORITHM",
    "MAX_TOKEN_BYTES",
    "JwksKeys",
    "KeySource",
    "LazyVerifier",
    "LocalKeys",
    "Principal",
    "Role",
    "RoutePolicy",
    "TokenIssuer",
    "TokenVerifier",
    "Verifier",
    "issued_principal",
    "load_or_create_signing_key",
]
