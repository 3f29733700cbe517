"""`edgeplane certs init` / the secure directory's `tls` part: the CA and per-service certificates (files, modes,
names, usages, chain), what a re-run keeps, and the TLS file checks a service runs before it serves."""

from __future__ import annotations

import ssl
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from typer.testing import CliRunner

from core_command.settings import CoreCommandSettings
from edgeplane.cli import app
from edgeplane.secure import tls
from edgeplane.services import SERVICES
from edgeplane.supervisor import Stack, StackConfig
from edgeplane_common.errors import CommunicationError
from edgeplane_common.settings import TlsSettings
from edgeplane_common.tls import TlsConfigError, check_server_files, client_verify, own_scheme
from edgeplane_console.settings import ConsoleSettings
from rules_engine.infrastructure.http_sender import HttpxSender

EVERY = [s.name for s in SERVICES] + ["nats", "redis"]


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _names(cert: x509.Certificate) -> set[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(n) for n in san.get_values_for_type(x509.DNSName)} | {
        str(ip) for ip in san.get_values_for_type(x509.IPAddress)
    }


def test_init_writes_a_ca_and_a_certificate_per_service_nats_and_redis(tmp_path: Path) -> None:
    env = tls.init(tmp_path, SERVICES, hosts=["gw.plant.local", "10.1.2.3"])
    ca = _cert(tmp_path / "ca.pem")
    assert _mode(tmp_path / "ca.key") == 0o600
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert (ca.not_valid_after_utc - ca.not_valid_before_utc).days >= 3649
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    for name in EVERY:
        cert_path, key_path = tls.leaf_paths(tmp_path, name)
        assert _mode(key_path) == 0o600, name
        cert = _cert(cert_path)
        cert.verify_directly_issued_by(ca)  # raises unless signed by the CA
        key = cert.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey)
        assert key.curve.name == "secp256r1"
        assert _names(cert) == {"localhost", "127.0.0.1", "::1", name, "gw.plant.local", "10.1.2.3"}
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
        assert 700 <= (cert.not_valid_after_utc - cert.not_valid_before_utc).days <= 800
        # The key file is the certificate's key, and OpenSSL takes the pair as a server identity.
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert_path, key_path)
    ca_file = str((tmp_path / "ca.pem").resolve())
    assert env["*"] == {"EDGEPLANE_TLS__CA_FILE": ca_file}
    cert, key = tls.leaf_paths(tmp_path.resolve(), "core-data")
    assert env["core-data"] == {"CORE_DATA_TLS__CERT_FILE": str(cert), "CORE_DATA_TLS__KEY_FILE": str(key)}
    assert "modbus-sim" not in env  # serves no REST API
    assert {s.name for s in SERVICES if s.health == "http"} <= env.keys()


def test_a_rerun_keeps_good_files_adds_missing_names_and_force_replaces_everything(tmp_path: Path) -> None:
    tls.init(tmp_path, SERVICES, hosts=[])
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    report = tls.ensure(tmp_path, [s.name for s in SERVICES], hosts=[])
    assert report.created == []
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before

    # A certificate deleted, or a new name asked for: only those certificates are issued again.
    cert, _ = tls.leaf_paths(tmp_path, "core-data")
    cert.unlink()
    report = tls.ensure(tmp_path, ["core-data"], hosts=[])
    assert {p.name for p in report.created} == {"core-data.pem", "core-data.key"}
    report = tls.ensure(tmp_path, ["core-data"], hosts=["gw"])
    assert "gw" in _names(_cert(cert))
    assert (tmp_path / "ca.pem").read_bytes() == before[tmp_path / "ca.pem"]
    assert {p.name for p in report.created} == {
        f"{n}.{e}" for n in ("core-data", "nats", "redis") for e in ("pem", "key")
    }

    tls.ensure(tmp_path, ["core-data"], hosts=[], force=True)
    assert (tmp_path / "ca.pem").read_bytes() != before[tmp_path / "ca.pem"]
    ca = _cert(tmp_path / "ca.pem")
    _cert(cert).verify_directly_issued_by(ca)


def test_a_new_ca_reissues_every_certificate(tmp_path: Path) -> None:
    tls.init(tmp_path, SERVICES, hosts=[])
    (tmp_path / "ca.pem").unlink()
    tls.init(tmp_path, SERVICES, hosts=[])
    ca = _cert(tmp_path / "ca.pem")
    for name in EVERY:
        _cert(tls.leaf_paths(tmp_path, name)[0]).verify_directly_issued_by(ca)


def test_bad_hosts_and_a_broken_ca_are_refused_in_words(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'bad host' is neither"):
        tls.init(tmp_path, SERVICES, hosts=["bad host"])
    tls.init(tmp_path, SERVICES, hosts=["::ffff:10.0.0.1", "*.plant.local"])
    (tmp_path / "ca.key").write_text("garbage")
    with pytest.raises(ValueError, match="--force"):
        tls.init(tmp_path, SERVICES, hosts=[])


def test_certs_init_command(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["certs", "init", "--dir", str(tmp_path), "--host", "gw"])
    assert result.exit_code == 0, result.output
    assert f"{len(EVERY)} created" in result.output
    assert "EDGEPLANE_TLS__CA_FILE=" in result.output
    assert "gw" in _names(_cert(tls.leaf_paths(tmp_path, "console")[0]))
    again = runner.invoke(app, ["certs", "init", "--dir", str(tmp_path)])
    assert again.exit_code == 0, again.output
    assert f"0 created, {len(EVERY)} kept" in again.output
    bad = runner.invoke(app, ["certs", "init", "--dir", str(tmp_path), "--host", "a b"])
    assert bad.exit_code == 2
    assert "neither an IP address nor a DNS name" in bad.output


def test_check_server_files_names_the_file_at_fault(tmp_path: Path) -> None:
    tls.init(tmp_path, SERVICES, hosts=[])
    cert, key = tls.leaf_paths(tmp_path, "core-data")
    _, other_key = tls.leaf_paths(tmp_path, "core-command")
    check_server_files(TlsSettings())  # plain HTTP
    check_server_files(TlsSettings(cert_file=str(cert), key_file=str(key)))
    cases = {
        "TLS__KEY_FILE is not": TlsSettings(cert_file=str(cert)),
        "TLS__CERT_FILE is not": TlsSettings(key_file=str(key)),
        f"{tmp_path}/nope.pem .* does not exist": TlsSettings(cert_file=str(tmp_path / "nope.pem"), key_file=str(key)),
        f"{key} .*is not a PEM certificate": TlsSettings(cert_file=str(key), key_file=str(key)),
        f"{cert} .*is not an unencrypted PEM private key": TlsSettings(cert_file=str(cert), key_file=str(cert)),
        f"{other_key} does not belong to the certificate {cert}": TlsSettings(
            cert_file=str(cert), key_file=str(other_key)
        ),
    }
    for message, settings in cases.items():
        with pytest.raises(TlsConfigError, match=message):
            check_server_files(settings)
    # A key that wants a password is refused without a prompt; a PEM block that is no X.509 certificate too.
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        serialization.load_pem_private_key(key.read_bytes(), password=None).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(TlsConfigError, match=f"{encrypted} .*is not an unencrypted PEM private key"):
        check_server_files(TlsSettings(cert_file=str(cert), key_file=str(encrypted)))
    garbled = tmp_path / "garbled.pem"
    garbled.write_text("-----BEGIN CERTIFICATE-----\nAAAAAAAAAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(TlsConfigError, match=f"{garbled} .*is not a PEM certificate"):
        check_server_files(TlsSettings(cert_file=str(garbled), key_file=str(key)))
    with pytest.raises(TlsConfigError, match="does not exist"):
        client_verify(str(tmp_path / "none.pem"))
    with pytest.raises(TlsConfigError, match="not a usable PEM"):
        client_verify(str(key))
    assert isinstance(client_verify(None), ssl.SSLContext)  # the system's store
    assert isinstance(client_verify(str(tmp_path / "ca.pem")), ssl.SSLContext)
    assert own_scheme(TlsSettings(cert_file=str(cert), key_file=str(key))) == "https"
    assert own_scheme(TlsSettings(cert_file=str(cert))) == "http"


def test_the_launcher_reaches_services_over_https_with_a_ca(tmp_path: Path) -> None:
    services = [s for s in SERVICES if s.name in ("core-metadata", "modbus-sim")]
    plain = Stack(StackConfig(services=services, data_dir=tmp_path, base_env={}))
    assert plain.service_env(services[0])["EDGEPLANE_METADATA_URL"] == "http://127.0.0.1:59881"
    secure = Stack(StackConfig(services=services, data_dir=tmp_path, base_env={}, ca_file=str(tmp_path / "ca.pem")))
    assert secure.service_env(services[0])["EDGEPLANE_METADATA_URL"] == "https://127.0.0.1:59881"
    assert secure.service_env(services[0])["EDGEPLANE_TLS__CA_FILE"] == str(tmp_path / "ca.pem")
    assert "EDGEPLANE_TLS__CA_FILE" not in plain.service_env(services[0])
    assert services[0].ping_url(0, scheme="https") == "https://127.0.0.1:59881/api/v3/ping"
    assert services[1].ping_url(0, scheme="https") == "tcp://127.0.0.1:5020"


def test_a_service_with_a_certificate_advertises_https(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGEPLANE_CORE_DATA_PORT", raising=False)
    monkeypatch.delenv("EDGEPLANE_CORE_METADATA_PORT", raising=False)
    certified = {"cert_file": "c.pem", "key_file": "c.key"}
    assert CoreCommandSettings().service_url() == "http://127.0.0.1:59882"
    assert CoreCommandSettings(tls=certified).service_url() == "https://127.0.0.1:59882"
    assert ConsoleSettings().service_url_map()["core-data"] == "http://127.0.0.1:59880"
    console = ConsoleSettings(tls=certified)
    assert console.service_url_map()["core-data"] == "https://127.0.0.1:59880"
    assert console.app_service_url_list()[0] == "https://127.0.0.1:59700"
    explicit = ConsoleSettings(gateway_host="https://gw/")
    assert explicit.service_url_map()["core-metadata"] == "https://gw:59881"


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


async def test_the_rules_engine_rest_action_trusts_the_local_ca_too(tmp_path: Path) -> None:
    tls.init(tmp_path, SERVICES, hosts=[])
    cert, key = tls.leaf_paths(tmp_path, "core-command")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"https://127.0.0.1:{server.server_address[1]}/"
    trusting, default = HttpxSender(ca_file=str(tmp_path / "ca.pem")), HttpxSender()
    try:
        assert await trusting.send("GET", url, {}, None, 10) == 200
        with pytest.raises(CommunicationError, match="CERTIFICATE_VERIFY_FAILED"):
            await default.send("GET", url, {}, None, 10)
    finally:
        await trusting.close()
        await default.close()
        server.shutdown()
        server.server_close()
