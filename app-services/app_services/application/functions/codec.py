"""Byte functions after the batch: `Compress` (gzip, zlib) and `Encrypt` (AES-256-GCM), as EdgeX's, whose
outputs are base64 text unless `Encoding: raw`.

Encrypt's key is read from the secret store at each run (EdgeX: SecretName / SecretValueKey), so a key posted
to /api/v3/secret after start, or rotated, is used at once; a missing key fails the run, and store-and-forward
keeps the data until it is there. The key is 32 bytes, given as 64 hex digits or base64. Output:
nonce (12 bytes) || ciphertext || tag (16 bytes); the nonce is random per message."""

from __future__ import annotations

import base64
import binascii
import gzip
import os
import zlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from app_services.application.data import Context
from app_services.application.params import Params

ByteFunction = Callable[[Context, bytes], Awaitable[bytes]]
NONCE_BYTES = 12


class SecretSource(Protocol):
    def get(self, name: str) -> Mapping[str, str]:
        """The secret's key/values; raises (NotFound) when there is none by that name."""
        ...


class MissingKey(Exception):
    pass


def _encoded(raw: bool, data: bytes) -> bytes:
    return data if raw else base64.b64encode(data)


def compress(p: Params) -> ByteFunction:
    algorithm = p.choice("Algorithm", ("gzip", "zlib"))
    raw = p.choice("Encoding", ("base64", "raw"), "base64") == "raw"

    async def run(ctx: Context, data: bytes) -> bytes:
        packed = gzip.compress(data, mtime=0) if algorithm == "gzip" else zlib.compress(data)
        ctx.kind = "bytes"
        ctx.content_type = "text/plain" if not raw else "application/octet-stream"
        return _encoded(raw, packed)

    return run


def decompress(algorithm: str, data: bytes, *, raw: bool = False) -> bytes:
    packed = data if raw else base64.b64decode(data)
    return gzip.decompress(packed) if algorithm == "gzip" else zlib.decompress(packed)


def parse_key(text: str) -> bytes:
    text = text.strip()
    key: bytes | None = None
    if len(text) == 64:
        try:
            key = bytes.fromhex(text)
        except ValueError:
            key = None
    if key is None:
        try:
            key = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise MissingKey("the key is neither 64 hex digits nor base64") from None
    if len(key) != 32:
        raise MissingKey(f"AES-256 needs a 32-byte key, got {len(key)} bytes")
    return key


def encrypt(p: Params, secrets: SecretSource) -> ByteFunction:
    algorithm = p.text("Algorithm", "aes256-gcm") or "aes256-gcm"
    if algorithm.lower() not in ("aes256-gcm", "aes-256-gcm"):
        raise p.fail(
            "Algorithm",
            f"{algorithm!r} is not supported: only aes256-gcm (AES-256-GCM; EdgeX's aes256 is CBC+HMAC)",
        )
    secret_name = p.need("SecretName")
    value_key = p.text("SecretValueKey", "key") or "key"
    raw = p.choice("Encoding", ("base64", "raw"), "base64") == "raw"

    async def run(ctx: Context, data: bytes) -> bytes:
        try:
            secret = secrets.get(secret_name)
        except Exception as err:
            raise MissingKey(f"Encrypt: no secret {secret_name!r} in the secret store yet ({err})") from None
        text = secret.get(value_key)
        if text is None:
            raise MissingKey(f"Encrypt: secret {secret_name!r} has no key {value_key!r}")
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # only where Encrypt is used

        nonce = os.urandom(NONCE_BYTES)
        sealed = nonce + AESGCM(parse_key(text)).encrypt(nonce, data, None)
        ctx.kind = "bytes"
        ctx.content_type = "text/plain" if not raw else "application/octet-stream"
        return _encoded(raw, sealed)

    return run


def decrypt(key: bytes, data: bytes, *, raw: bool = False) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    sealed = data if raw else base64.b64decode(data)
    return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], None)


__all__ = ["ByteFunction", "MissingKey", "SecretSource", "compress", "decompress", "decrypt", "encrypt", "parse_key"]
