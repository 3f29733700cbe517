"""edgeplane_common.clients.gateway: the REST client of the console and the CLI (errors in the services'
words, batches, paging), and the CLI's exit codes for what it can tell without a gateway."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from edgeplane.cli import app
from edgeplane.services import SERVICES
from edgeplane_common.clients.gateway import DEFAULT_PORTS, Endpoints, GatewayClient, check_write, error_position
from edgeplane_common.embedded import free_port
from edgeplane_common.errors import ContractInvalid, NotAllowed, NotFound, RemoteError, ServiceUnavailable

runner = CliRunner()
DEMO_PROFILE = (
    Path(__file__).parents[2] / "device-services/modbus/device_modbus/res/profiles/edgeplane-demo-plc.profile.yaml"
)


def demo_profile_json() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEMO_PROFILE.read_text())
    return data


def test_default_ports_are_the_launchers() -> None:
    launcher = {s.name: s.port for s in SERVICES if s.name in DEFAULT_PORTS}
    assert launcher == {name: port for name, port in DEFAULT_PORTS.items() if name in launcher}
    assert set(launcher) == set(DEFAULT_PORTS)


def test_endpoints_on_a_host_with_an_offset() -> None:
    e = Endpoints.on_host("gw.local", offset=10)
    assert e.url("core-data") == "http://gw.local:59890"
    assert e.app_services[0] == "http://gw.local:59710"
    assert Endpoints.on_host("https://gw:1").url("console") == "https://gw:4000"
    with pytest.raises(NotFound):
        e.url("nope")


def client_answering(handler: Any) -> GatewayClient:
    return GatewayClient(Endpoints.on_host(), transport=httpx.MockTransport(handler))


async def test_an_edgex_error_keeps_its_status_and_message() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/device/name/missing"):
            return httpx.Response(
                404, json={"apiVersion": "v3", "statusCode": 404, "message": "device 'missing' not found"}
            )
        return httpx.Response(423, json={"apiVersion": "v3", "statusCode": 423, "message": "device is locked"})

    async with client_answering(handler) as client:
        with pytest.raises(NotFound, match="device 'missing' not found"):
            await client.device("missing")
        with pytest.raises(RemoteError, match="device is locked") as info:
            await client.write("d", "c", {"c": "1"})
        assert info.value.status_code == 423


async def test_a_batch_items_error_is_raised() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            207, json=[{"apiVersion": "v3", "statusCode": 409, "message": "device 'a' already exists"}]
        )

    async with client_answering(handler) as client:
        with pytest.raises(RemoteError, match="already exists") as info:
            await client.add_device({"name": "a"})
        assert info.value.status_code == 409


async def test_lists_are_read_page_by_page() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        page = [{"name": f"d{i}"} for i in range(offset, min(offset + 2, 5))]
        return httpx.Response(200, json={"totalCount": 5, "devices": page})

    async with client_answering(handler) as client:
        assert [d["name"] for d in await client.devices()] == ["d0", "d1", "d2", "d3", "d4"]


async def test_a_service_that_does_not_answer_is_unavailable() -> None:
    port = free_port()
    async with GatewayClient(Endpoints({"core-data": f"http://127.0.0.1:{port}"}), timeout=2) as client:
        with pytest.raises(ServiceUnavailable, match=f"core-data at http://127.0.0.1:{port} is unreachable"):
            await client.event_count()


def test_error_position() -> None:
    assert error_position("bad rule: line 2, column 14: unknown function 'avgg'") == (2, 14)
    assert error_position("not valid YAML at line 5, column 1: ...") == (5, 1)
    assert error_position("no position here") is None


def test_check_write_uses_core_commands_checks() -> None:
    profile = demo_profile_json()
    check_write(profile, "plc", "SpeedSetpoint", {"SpeedSetpoint": "1500"})
    with pytest.raises(ContractInvalid, match="above the maximum 3000"):
        check_write(profile, "plc", "SpeedSetpoint", {"SpeedSetpoint": "5000"})
    with pytest.raises(ContractInvalid, match="has no resource"):
        check_write(profile, "plc", "SpeedSetpoint", {"Speed": "1"})
    with pytest.raises(NotAllowed, match="read-only"):
        check_write(profile, "plc", "TankTemperature", {"TankTemperature": "1"})
    with pytest.raises(NotFound):
        check_write(profile, "plc", "Nope", {"Nope": "1"})


def test_cli_unreachable_gateway_exits_4() -> None:
    result = runner.invoke(app, ["device", "list", "--port-offset", str(free_port() - 59881)])
    assert result.exit_code == 4, result.output
    assert "unreachable" in result.output


def test_cli_bad_input_exits_2_before_sending(tmp_path: Path) -> None:
    assert runner.invoke(app, ["write", "d", "c", "novalue"]).exit_code == 2
    assert runner.invoke(app, ["readings", "d", "--since", "ten minutes"]).exit_code == 2
    assert runner.invoke(app, ["device", "add", "--name", "x"]).exit_code == 2
    bad = tmp_path / "rule.yaml"
    bad.write_text("id: [unclosed\n")
    assert runner.invoke(app, ["rule", "create", str(bad)]).exit_code == 2
    assert runner.invoke(app, ["profile", "upload", str(tmp_path / "missing.yaml")]).exit_code == 2
