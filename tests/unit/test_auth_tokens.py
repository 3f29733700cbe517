"""Secure mode's tokens, keys and roles: what is accepted and, above all, what is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgeplane_common.auth import (
    JwksKeys,
    LazyVerifier,
    LocalKeys,
    RoutePolicy,
    TokenIssuer,
    TokenVerifier,
    issued_principal,
    load_or_create_signing_key,
)
from edgeplane_common.auth.roles import requires
from edgeplane_common.errors import CommunicationError, ServiceUnavailable, Unauthorized


@pytest.fixture
def issuer() -> TokenIssuer:
    return TokenIssuer(Ed25519PrivateKey.generate())


@pytest.fixture
def verifier(issuer: TokenIssuer) -> TokenVerifier:
    return TokenVerifier(LocalKeys({issuer.kid: issuer.public_key}))


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


async def test_a_token_carries_kid_expiry_and_role(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    token = issuer.issue("ann", "operator", ttl=60)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA"
    assert header["kid"] == issuer.kid
    principal = await verifier.verify(token)
    assert (principal.subject, principal.role, principal.kind) == ("ann", "operator", "user")
    assert time.time() < principal.expires <= time.time() + 61


async def test_expired_token_is_refused(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    token = issuer.issue("ann", "admin", ttl=-60)
    with pytest.raises(Unauthorized, match="expired"):
        await verifier.verify(token)


async def test_token_signed_by_another_key_with_our_kid_is_refused(
    issuer: TokenIssuer, verifier: TokenVerifier
) -> None:
    forger = Ed25519PrivateKey.generate()
    claims = {"iss": "edgeplane", "sub": "eve", "role": "admin", "iat": int(time.time()), "exp": int(time.time()) + 60}
    forged = jwt.encode(claims, forger, algorithm="EdDSA", headers={"kid": issuer.kid})
    with pytest.raises(Unauthorized, match="invalid"):
        await verifier.verify(forged)


async def test_unknown_kid_is_refused(verifier: TokenVerifier) -> None:
    other = TokenIssuer(Ed25519PrivateKey.generate())
    with pytest.raises(Unauthorized, match="unknown key"):
        await verifier.verify(other.issue("eve", "admin", ttl=60))


async def test_alg_none_is_refused(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    now = int(time.time())
    claims = {"iss": "edgeplane", "sub": "eve", "role": "admin", "iat": now, "exp": now + 60}
    token = f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': issuer.kid})}.{_b64(claims)}."
    with pytest.raises(Unauthorized, match="EdDSA"):
        await verifier.verify(token)


async def test_hs256_with_the_public_key_as_secret_is_refused(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    # The classic confusion: sign with HMAC using the (public) verification key as the shared secret.
    public_pem = issuer.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = int(time.time())
    claims = {"iss": "edgeplane", "sub": "eve", "role": "admin", "iat": now, "exp": now + 60}
    header = {"alg": "HS256", "typ": "JWT", "kid": issuer.kid}
    signing_input = f"{_b64(header)}.{_b64(claims)}"
    sig = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{base64.urlsafe_b64encode(sig).decode().rstrip('=')}"
    with pytest.raises(Unauthorized):
        await verifier.verify(token)


@pytest.mark.parametrize("token", ["", "x", "a.b", "a.b.c", "....", "\u00ff\u00fe.e.e", "e" * 5000, "eyJ9.e30.x"])
async def test_malformed_tokens_are_unauthorized_not_errors(verifier: TokenVerifier, token: str) -> None:
    with pytest.raises(Unauthorized):
        await verifier.verify(token)


async def test_token_without_role_or_wrong_issuer_is_refused(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    now = int(time.time())
    key = Ed25519PrivateKey.generate()
    alien = TokenIssuer(key, issuer="someone-else")
    with pytest.raises(Unauthorized):
        await TokenVerifier(LocalKeys({alien.kid: alien.public_key})).verify(alien.issue("x", "admin", ttl=60))
    no_role = jwt.encode(
        {"iss": "edgeplane", "sub": "x", "iat": now, "exp": now + 60}, key, algorithm="EdDSA", headers={"kid": "k"}
    )
    with pytest.raises(Unauthorized):
        await TokenVerifier(LocalKeys({"k": key.public_key()})).verify(no_role)


def test_signing_key_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "signing.pem"
    first = load_or_create_signing_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    again = load_or_create_signing_key(path)
    assert TokenIssuer(first).kid == TokenIssuer(again).kid


async def test_jwks_is_fetched_once_and_refetched_only_for_an_unknown_kid(issuer: TokenIssuer) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(200, json=issuer.jwks())

    keys = JwksKeys("http://md/api/v3/key", min_refresh=3600, transport=httpx.MockTransport(handler))
    verifier = TokenVerifier(keys)
    for _ in range(3):
        await verifier.verify(issuer.issue("ann", "viewer", ttl=60))
    assert calls == ["/api/v3/key"]
    # Forged key ids do not make every request call core-metadata: one refetch per min_refresh at most.
    other = TokenIssuer(Ed25519PrivateKey.generate())
    for _ in range(3):
        with pytest.raises(Unauthorized):
            await verifier.verify(other.issue("eve", "admin", ttl=60))
    assert len(calls) == 1


async def test_a_rotated_key_is_picked_up_on_its_first_token(issuer: TokenIssuer) -> None:
    current = [issuer]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=current[0].jwks())

    verifier = TokenVerifier(JwksKeys("http://md/api/v3/key", min_refresh=0, transport=httpx.MockTransport(handler)))
    await verifier.verify(issuer.issue("ann", "viewer", ttl=60))
    current[0] = TokenIssuer(Ed25519PrivateKey.generate())
    assert (await verifier.verify(current[0].issue("ann", "viewer", ttl=60))).subject == "ann"


async def test_a_verified_token_is_accepted_again_without_a_signature_check(
    issuer: TokenIssuer, verifier: TokenVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = issuer.issue("ann", "operator", ttl=60)
    first = await verifier.verify(token)
    decodes = []
    real_decode = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: decodes.append(1) or real_decode(*a, **k))
    assert await verifier.verify(token) == first
    assert decodes == []
    # Another token (even of the same user) is checked in full.
    await verifier.verify(issuer.issue("ann", "operator", ttl=60))
    assert decodes == [1]


async def test_a_remembered_token_still_expires(
    issuer: TokenIssuer, verifier: TokenVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = issuer.issue("ann", "admin", ttl=60)
    await verifier.verify(token)
    # Past its expiry the memory does not answer: the token goes through the full check again, whose
    # refusal of an expired token is tested above (PyJWT reads the clock its own way, so it is stubbed here).
    later = time.time() + 120
    monkeypatch.setattr(time, "time", lambda: later)

    def decode(*args: object, **kwargs: object) -> None:
        raise jwt.ExpiredSignatureError("expired")

    monkeypatch.setattr(jwt, "decode", decode)
    with pytest.raises(Unauthorized, match="expired"):
        await verifier.verify(token)


async def test_a_remembered_token_of_a_key_rotated_away_is_refused(issuer: TokenIssuer) -> None:
    current = [issuer]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=current[0].jwks())

    keys = JwksKeys("http://md/api/v3/key", min_refresh=0, transport=httpx.MockTransport(handler))
    verifier = TokenVerifier(keys)
    old = issuer.issue("ann", "viewer", ttl=60)
    await verifier.verify(old)
    current[0] = TokenIssuer(Ed25519PrivateKey.generate())
    await verifier.verify(current[0].issue("bob", "viewer", ttl=60))  # the new key replaces the old one
    with pytest.raises(Unauthorized, match="unknown key"):
        await verifier.verify(old)


async def test_keys_unreachable_before_the_first_fetch_is_unavailable_not_unauthorized() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    keys = JwksKeys("http://md/api/v3/key", transport=httpx.MockTransport(handler))
    with pytest.raises(ServiceUnavailable):
        await keys.key("any")


def test_the_claims_of_a_token_from_the_login_are_read_and_checked(issuer: TokenIssuer) -> None:
    principal = issued_principal(issuer.issue("olga", "operator", ttl=60))
    assert (principal.subject, principal.role, principal.kind) == ("olga", "operator", "user")
    assert principal.expires > time.time()
    header = _b64({"alg": "EdDSA", "typ": "JWT"})
    now = int(time.time())
    refused = {
        "not a JWT": "not-a-jwt",
        "cannot be read": f"{header}.%%%.sig",
        "another issuer": f"{header}.{_b64({'iss': 'elsewhere', 'sub': 'a', 'role': 'admin', 'exp': now + 60})}.s",
        "without its subject": f"{header}.{_b64({'iss': 'edgeplane', 'sub': 'a', 'exp': now + 60})}.s",
        "expired": issuer.issue("olga", "operator", ttl=-60),
    }
    for reason, token in refused.items():
        with pytest.raises(CommunicationError, match=reason):
            issued_principal(token)


async def test_a_lazy_verifier_builds_its_verifier_on_the_first_token_and_verifies_every_one(
    issuer: TokenIssuer,
) -> None:
    built: list[TokenVerifier] = []

    def build() -> TokenVerifier:
        built.append(TokenVerifier(LocalKeys({issuer.kid: issuer.public_key})))
        return built[-1]

    lazy = LazyVerifier(build)
    assert not lazy.loaded
    assert built == []
    with pytest.raises(Unauthorized):
        await lazy.verify(TokenIssuer(Ed25519PrivateKey.generate()).issue("x", "admin", ttl=60))
    assert lazy.loaded
    with pytest.raises(Unauthorized, match="expired"):
        await lazy.verify(issuer.issue("x", "admin", ttl=-60))
    assert (await lazy.verify(issuer.issue("x", "viewer", ttl=60))).role == "viewer"
    assert len(built) == 1


def test_route_policy_defaults_and_declared_roles() -> None:
    policy = RoutePolicy()
    policy.declare("PUT", "/api/v3/device/name/{name}/{command}", "operator")
    assert policy.needed("GET", "/api/v3/device/all") == "viewer"
    assert policy.needed("POST", "/api/v3/device") == "admin"
    assert policy.needed("PUT", "/api/v3/device/name/pump/Mode") == "operator"
    assert policy.needed("PUT", "/api/v3/device/name/pump") == "admin"
    assert policy.allows("operator", "PUT", "/api/v3/device/name/pump/Mode")
    assert not policy.allows("viewer", "PUT", "/api/v3/device/name/pump/Mode")
    assert policy.allows("viewer", "GET", "/api/v3/device/all")
    assert not policy.allows("nobody", "GET", "/api/v3/device/all")
    assert policy.allows("service", "DELETE", "/api/v3/device/name/pump")
    assert requires("operator") == {"x-edgeplane-role": "operator"}


def test_services_send_their_service_token_in_secure_mode_and_the_shared_token_otherwise() -> None:
    from edgeplane_common.settings import ServiceSettings

    shared = {"http": {"auth_token": "s3cret"}}
    assert ServiceSettings.model_validate(shared).client_token() == "s3cret"
    secure = {**shared, "security": {"enabled": True, "service_token": "svc.jwt.token"}}
    assert ServiceSettings.model_validate(secure).client_token() == "svc.jwt.token"
    assert ServiceSettings().client_token() is None
