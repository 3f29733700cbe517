"""Part `tls` of the secure directory (issue 15 item 2; also `edgeplane certs init`): a local CA and one
certificate per service, for the REST APIs and the NATS and Redis servers.

    <dir>/ca.pem  ca.key (0600)                      the CA every client trusts (TLS__CA_FILE)
    <dir>/certs/<name>.pem  <name>.key (0600)         one per service in SERVICES, plus nats and redis

EC P-256 keys. The CA is valid 10 years; a service certificate about 2 years, for TLS server and client
authentication, with the names a client may use for it: localhost, 127.0.0.1, ::1, its compose service name,
and the `hosts` given. Re-running keeps what is there and still good; a certificate is issued again when it
is missing, not signed by the CA on disk, lacks a wanted name or expires within 30 days; `force` replaces
the CA and every certificate.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edgeplane.services import Service
from edgeplane_common.tls import CA_FILE_ENV

CA_CERT = "ca.pem"
CA_KEY = "ca.key"
CERTS_DIR = "certs"
SERVERS = ("nats", "redis")
"""Servers that get a certificate besides the services (the bus and Redis parts configure them)."""
CA_VALIDITY = dt.timedelta(days=3650)
LEAF_VALIDITY = dt.timedelta(days=730)
RENEW_BEFORE = dt.timedelta(days=30)
LOCAL_NAMES: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
_DNS = re.compile(r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?$")


@dataclass
class Report:
    """What a run did: files (paths) written anew and those kept."""

    created: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)


def init(
    secure_dir: Path, services: Sequence[Service], *, hosts: Sequence[str], force: bool = False
) -> dict[str, dict[str, str]]:
    """Write the CA and the certificates (see the module doc); the environment each service needs, paths
    absolute: `"*"` → `EDGEPLANE_TLS__CA_FILE`; each HTTP service → `<PREFIX>TLS__CERT_FILE`/`TLS__KEY_FILE`
    (the simulators, which serve no REST API, get their certificate files but no variables)."""
    secure_dir = Path(secure_dir).resolve()
    ensure(secure_dir, [s.name for s in services], hosts=hosts, force=force)
    return environment(secure_dir, services)


def environment(secure_dir: Path, services: Sequence[Service]) -> dict[str, dict[str, str]]:
    secure_dir = Path(secure_dir).resolve()
    env: dict[str, dict[str, str]] = {"*": {CA_FILE_ENV: str(secure_dir / CA_CERT)}}
    for service in services:
        if service.health != "http":
            continue
        cert, key = leaf_paths(secure_dir, service.name)
        env[service.name] = {
            f"{service.env_prefix}TLS__CERT_FILE": str(cert),
            f"{service.env_prefix}TLS__KEY_FILE": str(key),
        }
    return env


def leaf_paths(secure_dir: Path, name: str) -> tuple[Path, Path]:
    return secure_dir / CERTS_DIR / f"{name}.pem", secure_dir / CERTS_DIR / f"{name}.key"


def check_hosts(hosts: Sequence[str]) -> list[str]:
    """The extra names, stripped; ValueError naming the first that is neither an IP address nor a DNS name."""
    cleaned = []
    for host in hosts:
        host = host.strip()
        if not _is_ip(host) and not _DNS.match(host):
            raise ValueError(f"--host {host!r} is neither an IP address nor a DNS name")
        cleaned.append(host)
    return cleaned


def ensure(secure_dir: Path, names: Sequence[str], *, hosts: Sequence[str], force: bool = False) -> Report:
    """The CA and a certificate for each of `names` plus the NATS and Redis servers; what was written and kept."""
    extra = check_hosts(hosts)
    report = Report()
    secure_dir.mkdir(parents=True, exist_ok=True)
    (secure_dir / CERTS_DIR).mkdir(exist_ok=True)
    ca_key, ca_cert, new_ca = _ca(secure_dir, force, report)
    now = dt.datetime.now(dt.UTC)
    for name in dict.fromkeys([*names, *SERVERS]):
        cert_path, key_path = leaf_paths(secure_dir, name)
        wanted = list(dict.fromkeys([*LOCAL_NAMES, name, *extra]))
        if not (force or new_ca) and _still_good(cert_path, key_path, ca_cert, wanted, now):
            report.kept += [cert_path, key_path]
            continue
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue_leaf(name, wanted, key, ca_key, ca_cert, now)
        _write(key_path, _key_pem(key), 0o600)
        _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        report.created += [cert_path, key_path]
    return report


# ------------------------------------------------------------------------------------------------ the CA


def _ca(secure_dir: Path, force: bool, report: Report) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, bool]:
    cert_path, key_path = secure_dir / CA_CERT, secure_dir / CA_KEY
    if not force and cert_path.exists() and key_path.exists():
        try:
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        except ValueError as err:
            raise ValueError(f"the CA in {secure_dir} cannot be read ({err}); --force makes a new one") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
            raise ValueError(f"{key_path} is not the key of {cert_path}; --force makes a new CA")
        report.kept += [cert_path, key_path]
        return key, cert, False
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "edgeplane"),
            x509.NameAttribute(NameOID.COMMON_NAME, "edgeplane local CA"),
        ]
    )
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))  # tolerate a little clock skew between machines
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(key_path, _key_pem(key), 0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    report.created += [cert_path, key_path]
    return key, cert, True


# ------------------------------------------------------------------------------------------------ leaves


def _issue_leaf(
    name: str,
    hosts: Sequence[str],
    key: ec.EllipticCurvePrivateKey,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    now: dt.datetime,
) -> x509.Certificate:
    public = key.public_key()
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "edgeplane"),
                    x509.NameAttribute(NameOID.COMMON_NAME, name),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + LEAF_VALIDITY, ca_cert.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName([_general_name(h) for h in hosts]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _still_good(
    cert_path: Path, key_path: Path, ca_cert: x509.Certificate, wanted: Sequence[str], now: dt.datetime
) -> bool:
    """The certificate and key on disk belong together, were issued by this CA, name every wanted host and
    do not expire within RENEW_BEFORE."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert.verify_directly_issued_by(ca_cert)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    if key.public_key() != cert.public_key() or cert.not_valid_after_utc - now < RENEW_BEFORE:
        return False
    present = {str(n.value) for n in names if isinstance(n, x509.DNSName | x509.IPAddress)}
    return all(str(_general_name(h).value) in present for h in wanted)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _general_name(host: str) -> x509.GeneralName:
    return x509.IPAddress(ipaddress.ip_address(host)) if _is_ip(host) else x509.DNSName(host)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write through a temporary file created with `mode` (a private key is never readable by others, not even
    for a moment), then rename over `path`."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, mode)  # the umask may have taken bits from a public certificate's mode
    tmp.replace(path)
