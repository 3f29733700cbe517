"""Secure mode's identity layer: signed tokens (EdDSA JWTs), the keys that verify them, and roles.

core-metadata issues tokens and publishes its public keys as a JWKS at `/api/v3/key`; every service verifies
tokens locally with those keys (fetched once, refreshed on an unknown key id), never with a call per request.
"""

from edgeplane_common.auth.keys import JwksKeys, KeySource, LocalKeys
from edgeplane_common.auth.roles import Role, RoutePolicy
from edgeplane_common.auth.tokens import (
    ALGORITHM,
    MAX_TOKEN_BYTES,
    Principal,
    TokenIssuer,
    TokenVerifier,
    load_or_create_signing_key,
)

__all__ = [
    "ALGORITHM",
    "MAX_TOKEN_BYTES",
    "JwksKeys",
    "KeySource",
    "LocalKeys",
    "Principal",
    "Role",
    "RoutePolicy",
    "TokenIssuer",
    "TokenVerifier",
    "load_or_create_signing_key",
]
