"""TLS for the REST APIs: a service's own certificate, checked before it serves, and the trust its HTTP clients
verify the other services with.

`TlsSettings.ca_file` set: a client trusts that CA only (the local one `edgeplane certs init` makes); unset: the
system's trust store. `cert_file` + `key_file` set: the service serves HTTPS only, and the URL it
advertises for itself (a device service's base address, core-command's command URLs) is `https://`.
"""

from __future__ import annotations

import re
import ssl
from pathlib import Path

from edgeplane_common.settings import TlsSettings

CA_FILE_ENV = "EDGEPLANE_TLS__CA_FILE"
"""The shared CA setting, which the command-line tools read too (`edgeplane` API and user commands)."""


class TlsConfigError(ValueError):
    """A TLS file is missing or unusable; the message names the file and the setting."""


def client_verify(ca_file: str | None) -> ssl.SSLContext:
    """What an httpx client passes as `verify`: a context trusting only `ca_file`, else the system's trust store
    (as TLS__CA_FILE documents; httpx's own default would be certifi's bundle, which ignores a local root)."""
    if not ca_file:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=ca_file)
    except FileNotFoundError:
        raise TlsConfigError(f"TLS CA file {ca_file} (TLS__CA_FILE) does not exist") from None
    except (OSError, ssl.SSLError) as err:
        raise TlsConfigError(f"TLS CA file {ca_file} (TLS__CA_FILE) is not a usable PEM certificate: {err}") from None


def serves_https(tls: TlsSettings) -> bool:
    return bool(tls.cert_file and tls.key_file)


def own_scheme(tls: TlsSettings) -> str:
    """The scheme of this service's own URL: `https` when it has a certificate."""
    return "https" if serves_https(tls) else "http"


def check_server_files(tls: TlsSettings) -> None:
    """Raise TlsConfigError, naming the file, unless the certificate and key load and belong together. Half a
    configuration is an error too: a service meant to be HTTPS must not quietly serve plain HTTP."""
    if not tls.cert_file and not tls.key_file:
        return
    if not tls.cert_file or not tls.key_file:
        given, missing = ("TLS__CERT_FILE", "TLS__KEY_FILE") if tls.cert_file else ("TLS__KEY_FILE", "TLS__CERT_FILE")
        raise TlsConfigError(f"{given} is set but {missing} is not: HTTPS needs both")
    # The standard library's OpenSSL only: cryptography (~9 MiB RSS) would stay loaded in every HTTPS service
    # for this one check, and the console would otherwise never need it.
    cert = _read(tls.cert_file, "certificate", "TLS__CERT_FILE")
    if not _pem_certificates(cert):
        raise TlsConfigError(f"TLS certificate {tls.cert_file} (TLS__CERT_FILE) is not a PEM certificate")
    _read(tls.key_file, "private key", "TLS__KEY_FILE")
    try:
        # A key that asks for a password is refused here, never prompted for on the terminal.
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(tls.cert_file, tls.key_file, password=_no_password)
    except ssl.SSLError as err:
        if err.reason == "KEY_VALUES_MISMATCH":
            raise TlsConfigError(
                f"TLS private key {tls.key_file} does not belong to the certificate {tls.cert_file}: {err.reason}"
            ) from None
        raise TlsConfigError(
            f"TLS private key {tls.key_file} (TLS__KEY_FILE) is not an unencrypted PEM private key"
        ) from None
    except _Encrypted:
        raise TlsConfigError(
            f"TLS private key {tls.key_file} (TLS__KEY_FILE) is not an unencrypted PEM private key"
        ) from None


_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


def _pem_certificates(data: bytes) -> bool:
    """Whether `data` holds PEM certificates and OpenSSL parses each one (as X.509, into a scratch store)."""
    blocks = _CERTIFICATE.findall(data)
    if not blocks:
        return False
    try:
        der = b"".join(ssl.PEM_cert_to_DER_cert(block.decode("ascii")) for block in blocks)
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=der)
    except (ValueError, ssl.SSLError):  # bad base64 (binascii.Error), non-ASCII, not X.509
        return False
    return True


class _Encrypted(Exception):
    """The private key asked for a password."""


def _no_password() -> str:
    raise _Encrypted


def _read(path: str, what: str, setting: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise TlsConfigError(f"TLS {what} {path} ({setting}) does not exist") from None
    except OSError as err:
        raise TlsConfigError(f"cannot read the TLS {what} {path} ({setting}): {err.strerror or err}") from None
