"""Per-device security: the policy classes, the client certificate, the server trust list, and the password.

The password is looked up when a session connects (so a secret posted after the device was added is used at
the next attempt), from the service's secret store (`SecretName`: keys `username` and `password`, as EdgeX's
`SecretName` convention) or from an environment variable (`PasswordEnv`). It is held only in the asyncua
client and never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from asyncua import Client, ua
from asyncua.common.utils import ServiceError
from asyncua.crypto import security_policies as sp
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from device_opcua.attributes import OpcuaConnection, SecurityMode, SecurityPolicy
from edgeplane_common.errors import ContractInvalid, NotFound
from edgeplane_common.secrets import SecretStore, SecretUndecryptable

POLICIES: dict[SecurityPolicy, type[sp.SecurityPolicy]] = {
    SecurityPolicy.BASIC256SHA256: sp.SecurityPolicyBasic256Sha256,
    SecurityPolicy.AES128_SHA256_RSAOAEP: sp.SecurityPolicyAes128Sha256RsaOaep,
    SecurityPolicy.AES256_SHA256_RSAPSS: sp.SecurityPolicyAes256Sha256RsaPss,
}
MODES = {
    SecurityMode.NONE: ua.MessageSecurityMode.None_,
    SecurityMode.SIGN: ua.MessageSecurityMode.Sign,
    SecurityMode.SIGN_AND_ENCRYPT: ua.MessageSecurityMode.SignAndEncrypt,
}
CLIENT_APP_URI = "urn:edgeplane:device-opcua"


class _RedactCredentials(logging.Filter):
    """asyncua logs every request it sends at DEBUG, ActivateSession's user token (the password) included."""

    def filter(self, record: logging.LogRecord) -> bool:
        if any(isinstance(a, ua.ActivateSessionRequest | ua.ActivateSessionParameters) for a in record.args or ()):
            record.msg = "Sending: ActivateSessionRequest (not logged: it carries the user's credentials)"
            record.args = ()
        return True


def redact_asyncua_logs() -> None:
    """Install the filter once on the logger that sends requests (idempotent)."""
    logger = logging.getLogger("asyncua.client.ua_client.UASocketProtocol")
    if not any(isinstance(f, _RedactCredentials) for f in logger.filters):
        logger.addFilter(_RedactCredentials())


def credentials(conn: OpcuaConnection, secrets: SecretStore | None) -> tuple[str | None, str | None]:
    """(username, password) for a connection; ContractInvalid naming what is missing (never the value)."""
    username, password = conn.username, None
    if conn.secret_name:
        if secrets is None:
            raise ContractInvalid(f"SecretName {conn.secret_name!r} given but this service has no secret store")
        try:
            secret = secrets.get(conn.secret_name)
        except SecretUndecryptable as err:
            raise ContractInvalid(err.message) from None
        except NotFound:
            raise ContractInvalid(
                f"secret {conn.secret_name!r} not found: POST it to /api/v3/secret with keys username and password"
            ) from None
        username = secret.get("username", username)
        password = secret.get("password")
        if password is None:
            raise ContractInvalid(f"secret {conn.secret_name!r} has no key 'password'")
    elif conn.password_env:
        password = os.environ.get(conn.password_env)
        if password is None:
            raise ContractInvalid(f"environment variable {conn.password_env!r} (PasswordEnv) is not set")
    if password is not None and not username:
        raise ContractInvalid("a password is configured but no Username")
    return username, password


def _fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def _load_cert(path: Path) -> x509.Certificate:
    data = path.read_bytes()
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def trusted_fingerprints(location: str) -> set[str]:
    """SHA-256 fingerprints of the certificates in a file or a folder (PEM or DER)."""
    path = Path(location)
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    found: set[str] = set()
    for file in files:
        try:
            found.add(_fingerprint(_load_cert(file)))
        except (OSError, ValueError):
            continue
    if not found:
        raise ContractInvalid(f"TrustedCerts {location!r} holds no readable certificate")
    return found


def trust_validator(fingerprints: set[str]) -> Callable[[x509.Certificate, ua.ApplicationDescription], Awaitable[None]]:
    async def validate(cert: x509.Certificate, app: ua.ApplicationDescription) -> None:
        if _fingerprint(cert) not in fingerprints:
            raise ServiceError(ua.StatusCodes.BadCertificateUntrusted)

    return validate


def _app_uri(cert_file: str) -> str:
    """The client's application URI must be the one in its certificate (OPC UA Part 4, 6.1.3)."""
    try:
        cert = _load_cert(Path(cert_file))
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = names.get_values_for_type(x509.UniformResourceIdentifier)
        return uris[0] if uris else CLIENT_APP_URI
    except (x509.ExtensionNotFound, OSError, ValueError):
        return CLIENT_APP_URI


async def apply_security(client: Client, conn: OpcuaConnection, username: str | None, password: str | None) -> None:
    """Configure `client` for `conn` before connect (may ask the server for its endpoints)."""
    redact_asyncua_logs()
    if username:
        client.set_user(username)
    if password is not None:
        client.set_password(password)
    if conn.trusted_certs:
        client.certificate_validator = trust_validator(trusted_fingerprints(conn.trusted_certs))
    if conn.policy is SecurityPolicy.NONE:
        return
    for name, file in (("CertFile", conn.cert_file), ("KeyFile", conn.key_file)):
        if not file or not await asyncio.to_thread(Path(file).is_file):
            raise ContractInvalid(f"{name} {file!r} does not exist")
    assert conn.cert_file is not None
    client.application_uri = _app_uri(conn.cert_file)
    await client.set_security(POLICIES[conn.policy], conn.cert_file, conn.key_file, mode=MODES[conn.mode])
