"""`python -m edgeplane_common.healthcheck URL`: the images' healthcheck (no curl in the slim image)."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from edgeplane.secure import tls
from edgeplane.services import by_name
from edgeplane_common.embedded import free_port
from edgeplane_common.healthcheck import check, expand, main


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/api/v3/ping" else 503)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def http_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_expand_takes_the_environment_then_the_default() -> None:
    url = "http://127.0.0.1:${PORT:-59881}/api/v3/ping"
    assert expand(url, {}) == "http://127.0.0.1:59881/api/v3/ping"
    assert expand(url, {"PORT": ""}) == "http://127.0.0.1:59881/api/v3/ping"  # empty counts as unset
    assert expand(url, {"PORT": "60000"}) == "http://127.0.0.1:60000/api/v3/ping"
    assert expand("${A}-${B:-b}", {"A": "a"}) == "a-b"
    assert expand("no variables", {}) == "no variables"


def test_http_200_is_healthy_anything_else_is_not(http_port: int) -> None:
    assert check(f"http://127.0.0.1:{http_port}/api/v3/ping") is None
    problem = check(f"http://127.0.0.1:{http_port}/elsewhere")
    assert problem is not None
    assert "HTTP 503" in problem
    refused = check(f"http://127.0.0.1:{free_port()}/api/v3/ping", timeout=1)
    assert refused is not None


def test_proxy_variables_are_ignored(http_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    assert check(f"http://127.0.0.1:{http_port}/api/v3/ping") is None


def test_tcp_is_healthy_when_the_port_accepts_connections() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert check(f"tcp://127.0.0.1:{sock.getsockname()[1]}") is None
    assert check(f"tcp://127.0.0.1:{free_port()}", timeout=1) is not None
    assert check("tcp://127.0.0.1") is not None  # no port


def test_main_exit_codes(http_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HC_PORT", str(http_port))
    assert main(["http://127.0.0.1:${HC_PORT:-1}/api/v3/ping"]) == 0
    assert main([f"http://127.0.0.1:{free_port()}/api/v3/ping"]) == 1
    assert main(["ftp://example/"]) == 1
    assert main([]) == 2
    assert main(["--help"]) == 0


def test_runs_as_a_module(http_port: int) -> None:
    url = f"http://127.0.0.1:{http_port}/api/v3/ping"
    ok = subprocess.run([sys.executable, "-m", "edgeplane_common.healthcheck", url], capture_output=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    down = subprocess.run(
        [sys.executable, "-m", "edgeplane_common.healthcheck", f"tcp://127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert down.returncode == 1
    assert down.stderr.startswith("unhealthy: ")


def test_https_is_verified_with_the_ca_file_given_or_from_the_environment(tmp_path: Path) -> None:
    tls.init(tmp_path, [by_name("core-data")], hosts=[])
    cert, key = tls.leaf_paths(tmp_path, "core-data")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}/api/v3/ping"
        ca = str(tmp_path / "ca.pem")
        assert "CERTIFICATE_VERIFY_FAILED" in (check(url) or "")
        assert check(url, ca_file=ca) is None
        assert main([url], env={}) == 1
        assert main([url], env={"EDGEPLANE_TLS__CA_FILE": ca}) == 0
        assert main(["--ca-file", ca, url], env={}) == 0
        assert main(["--ca-file", str(tmp_path / "none.pem"), url], env={}) == 1
    finally:
        server.shutdown()
        server.server_close()
