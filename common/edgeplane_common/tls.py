"""TLS for the REST APIs: a service's own certificate, checked before it serves, and the trust its HTTP clients
verify the other services with.

`TlsSettings.ca_file` set: a client trusts that CA only (the local one `edgeplane certs init` makes); unset: the
system's trust store. `cert_file` + `key_file` set: the service serves HTTPS only, and the URL it
advertises for itself (a device service's base address, core-command's command URLs) is `https://`.
"""

from __future__ import annotations

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
    # Imported here: a service without a certificate never loads cryptography (~RSS).
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = _read(tls.cert_file, "certificate", "TLS__CERT_FILE")
    try:
        x509.load_pem_x509_certificates(cert)
    except ValueError:
        raise TlsConfigError(f"TLS certificate {tls.cert_file} (TLS__CERT_FILE) is not a PEM certificate") from None
    key = _read(tls.key_file, "private key", "TLS__KEY_FILE")
    try:
        serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError):
        raise TlsConfigError(
            f"TLS private key {tls.key_file} (TLS__KEY_FILE) is not an unencrypted PEM private key"
        ) from None
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(tls.cert_file, tls.key_file)
    except ssl.SSLError as err:
        raise TlsConfigError(
            f"TLS private key {tls.key_file} does not belong to the certificate {tls.cert_file}: {err.reason or err}"
        ) from None


def _read(path: str, what: str, setting: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise TlsConfigError(f"TLS {what} {path} ({setting}) does not exist") from None
    except OSError as err:
        raise TlsConfigError(f"cannot read the TLS {what} {path} ({setting}): {err.strerror or err}") from None
