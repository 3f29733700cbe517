"""The web console in a real browser and the `edgeplane` API commands, against the real stack (`edgeplane up`
on free ports, the console included).

Browser: Debian's Chromium (`/usr/bin/chromium`, installed by .ci/run) driven by Playwright with
`executable_path` (no browser download); skipped with the reason when it is absent. Screenshots of the main
pages are written to `$EDGEPLANE_ARTIFACTS/console/` (default `.artifacts/console/` in the repository).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

import core_metadata
from tests.support.browser import ROOT, WAIT_S, by_id, field, shot
from tests.support.native import DEVICE, NativeStack, edgeplane_up, launcher_env, wait_for_device_up

DEMO_PROFILE = ROOT / "device-services/modbus/device_modbus/res/profiles/edgeplane-demo-plc.profile.yaml"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NativeStack]:
    with edgeplane_up(tmp_path_factory.mktemp("console-stack")) as stack:
        stack.wait_ready()
        wait_for_device_up(stack)
        yield stack


# ------------------------------------------------------------------------------------------------ the CLI


def cli(stack: NativeStack, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "edgeplane", *args]
    env = {**launcher_env(), "EDGEPLANE_PORT_OFFSET": str(stack.offset), "COLUMNS": "200"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, input=stdin, check=False)


def cli_json(stack: NativeStack, *args: str) -> Any:
    result = cli(stack, *args, "--json")
    assert result.returncode == 0, f"{args}: {result.returncode}\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout)


def test_cli_service_list(stack: NativeStack) -> None:
    rows = cli_json(stack, "service", "list")
    status = {r["name"]: r["status"] for r in rows}
    assert status["core-metadata"] == "up"
    assert status["console"] == "up"
    assert all(s == "up" for s in status.values()), rows


def test_cli_devices(stack: NativeStack, tmp_path: Path) -> None:
    devices = cli_json(stack, "device", "list")
    assert DEVICE in [d["name"] for d in devices]
    assert cli_json(stack, "device", "show", DEVICE)["profileName"] == "Edgeplane-Demo-PLC"
    missing = cli(stack, "device", "show", "no-such-device")
    assert missing.returncode == 3
    assert "no-such-device" in missing.stderr

    sim_port = 5020 + stack.offset
    add = [
        "device", "add", "--name", "cli-plc", "--service", "device-modbus", "--profile", "Edgeplane-Demo-PLC",
        "--protocol", "modbus-tcp.Address=127.0.0.1", "--protocol", f"modbus-tcp.Port={sim_port}",
        "--protocol", "modbus-tcp.UnitID=2",
    ]  # fmt: skip
    added = cli(stack, *add)
    assert added.returncode == 0, added.stderr
    duplicate = cli(stack, *add)
    assert duplicate.returncode == 1  # 409
    assert "cli-plc" in duplicate.stderr
    assert cli(stack, "device", "lock", "cli-plc").returncode == 0
    assert cli_json(stack, "device", "show", "cli-plc")["adminState"] == "LOCKED"
    locked = cli(stack, "write", "cli-plc", "SpeedSetpoint", "SpeedSetpoint=10")
    assert locked.returncode == 1  # 423 from core-command
    assert "lock" in locked.stderr.lower()
    assert cli(stack, "device", "unlock", "cli-plc").returncode == 0
    assert cli_json(stack, "device", "show", "cli-plc")["adminState"] == "UNLOCKED"
    assert cli(stack, "device", "delete", "cli-plc").returncode == 0
    assert cli(stack, "device", "show", "cli-plc").returncode == 3


def test_cli_read_and_write(stack: NativeStack) -> None:
    commands = cli_json(stack, "read", DEVICE)
    assert "SpeedSetpoint" in [c["name"] for c in commands]
    written = cli_json(stack, "write", DEVICE, "SpeedSetpoint", "SpeedSetpoint=1234")
    assert written["written"] == {"SpeedSetpoint": "1234"}
    event = cli_json(stack, "read", DEVICE, "SpeedSetpoint")
    assert event["readings"][0]["value"] == "1234"
    too_big = cli(stack, "write", DEVICE, "SpeedSetpoint", "SpeedSetpoint=5000")
    assert too_big.returncode == 2
    assert "above the maximum 3000" in too_big.stderr
    assert cli(stack, "write", DEVICE, "TankTemperature", "TankTemperature=1").returncode == 2  # read-only
    assert cli(stack, "read", "no-such-device", "SpeedSetpoint").returncode == 3
    assert cli(stack, "read", DEVICE, "NoSuchCommand").returncode == 3


def test_cli_readings_and_events(stack: NativeStack) -> None:
    deadline = time.monotonic() + WAIT_S
    while not (found := cli_json(stack, "readings", DEVICE, "--since", "5m", "--resource", "TankTemperature")):
        assert time.monotonic() < deadline, "no readings in core-data"
        time.sleep(1)
    assert {r["resourceName"] for r in found} == {"TankTemperature"}
    assert cli(stack, "readings", DEVICE, "--since", "yesterday").returncode == 2

    tail = cli(stack, "events", "tail", "--device", DEVICE, "--count", "2", "--timeout", "30", "--json",
               "--nats-url", stack.nats_url())  # fmt: skip
    assert tail.returncode == 0, tail.stderr
    events = [json.loads(line) for line in tail.stdout.splitlines()]
    assert len(events) == 2
    assert all(e["deviceName"] == DEVICE for e in events)


def test_cli_profiles(stack: NativeStack, tmp_path: Path) -> None:
    assert "Edgeplane-Demo-PLC" in [p["name"] for p in cli_json(stack, "profile", "list")]
    downloaded = tmp_path / "demo.yaml"
    assert cli(stack, "profile", "download", "Edgeplane-Demo-PLC", "-o", str(downloaded)).returncode == 0
    copy = yaml.safe_load(downloaded.read_text())
    copy["name"] = "Cli-Copy"
    upload = tmp_path / "copy.yaml"
    upload.write_text(yaml.safe_dump(copy, sort_keys=False))
    assert cli(stack, "profile", "upload", str(upload)).returncode == 0
    assert cli_json(stack, "profile", "show", "Cli-Copy")["name"] == "Cli-Copy"
    assert cli(stack, "profile", "upload", str(upload)).returncode == 1  # 409: exists
    assert cli(stack, "profile", "upload", "--replace", str(upload)).returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: Bad\ndeviceResources:\n  - name: [unclosed\n")
    refused = cli(stack, "profile", "upload", str(bad))
    assert refused.returncode == 2
    assert "line" in refused.stderr
    assert cli(stack, "profile", "delete", "Cli-Copy").returncode == 0
    assert cli(stack, "profile", "show", "Cli-Copy").returncode == 3


def test_cli_rules(stack: NativeStack, tmp_path: Path) -> None:
    rule = {
        "id": "cli-rule",
        "sql": f"SELECT TankTemperature AS t FROM events WHERE deviceName = '{DEVICE}'",
        "actions": [{"log": {}}],
    }
    path = tmp_path / "rule.yaml"
    path.write_text(yaml.safe_dump(rule))
    assert cli(stack, "rule", "create", str(path)).returncode == 0
    rules = {r["id"]: r for r in cli_json(stack, "rule", "list")}
    assert rules["cli-rule"]["status"] == "running"
    assert cli(stack, "rule", "stop", "cli-rule").returncode == 0
    assert cli_json(stack, "rule", "status", "cli-rule")["status"] == "stopped"
    assert cli(stack, "rule", "start", "cli-rule").returncode == 0
    assert cli_json(stack, "rule", "status", "cli-rule")["status"] == "running"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**rule, "id": "cli-bad", "sql": "SELECT avgg(x) FROM events"}))
    refused = cli(stack, "rule", "create", str(bad))
    assert refused.returncode == 2
    assert "line 1" in refused.stderr
    assert cli(stack, "rule", "delete", "cli-rule").returncode == 0
    assert cli(stack, "rule", "status", "cli-rule").returncode == 3


# -------------------------------------------------------------------------------------------- the browser


def test_overview_shows_the_services_and_the_demo_devices_up(page: Any, stack: NativeStack) -> None:
    page.goto("/")
    services = by_id(page, "services")
    names = ("core-metadata", "core-data", "core-command", "device-modbus", "device-opcua", "device-virtual")
    for name in (*names, "rules-engine", "app-http-export"):
        row = services.locator("tr", has_text=name)
        row.get_by_text("up", exact=True).wait_for()
        row.get_by_text(core_metadata.__version__, exact=True).wait_for()  # every service says its version
    # Every demo device (the PLC, and the OPC UA line where device-opcua runs) comes UP; none stays DOWN.
    expected = len(
        httpx.get(f"{stack.url('core-metadata')}/api/v3/device/all", timeout=5, trust_env=False).json()["devices"]
    )
    by_id(page, "devices-up").get_by_text(f"devices UP: {expected}").wait_for()
    assert by_id(page, "devices-down").inner_text() == "devices DOWN: 0"
    problems = by_id(page, "problems")
    try:
        problems.get_by_text("none").wait_for()
    except Exception as err:  # playwright's TimeoutError: say which problem the overview still shows
        raise AssertionError(f"the overview lists problems: {problems.inner_text()}") from err
    shot(page, "overview")


def test_device_page_live_chart_receives_new_points(page: Any) -> None:
    page.goto(f"/devices/{DEVICE}?charts=TankTemperature,Voltage,Current,ActivePower,LinePressure")
    by_id(page, "operating-state").get_by_text("state: UP").wait_for()
    chart = by_id(page, "chart-TankTemperature")
    chart.wait_for()
    page.wait_for_function(
        "() => Number(document.querySelector('[data-testid=\"chart-TankTemperature\"]')?.dataset.points || 0) > 0"
    )
    first = int(chart.get_attribute("data-points") or 0)
    # The device publishes TankTemperature every second: the chart must grow without a reload.
    page.wait_for_function(
        f"() => Number(document.querySelector('[data-testid=\"chart-TankTemperature\"]').dataset.points) > {first}"
    )
    assert by_id(page, "live-values").get_by_text("TankTemperature").count() >= 1
    shot(page, "device")


def test_device_page_writes_a_setpoint_and_reads_it_back(page: Any, stack: NativeStack) -> None:
    page.goto(f"/devices/{DEVICE}")
    result = by_id(page, "command-result")
    field(page, "input-SpeedSetpoint-SpeedSetpoint").fill("4000")
    by_id(page, "write-SpeedSetpoint").click()
    page.get_by_text("above the maximum 3000").first.wait_for()  # checked before sending
    field(page, "input-SpeedSetpoint-SpeedSetpoint").fill("2222")
    by_id(page, "write-SpeedSetpoint").click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=\"command-result\"]').innerText.includes('written')"
    )
    by_id(page, "read-SpeedSetpoint").click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=\"command-result\"]').innerText.includes('SpeedSetpoint = 2222')"
    )
    assert "2222" in result.inner_text()
    read = httpx.get(
        f"{stack.url('core-command')}/api/v3/device/name/{DEVICE}/SpeedSetpoint", timeout=10, trust_env=False
    )
    assert read.json()["event"]["readings"][0]["value"] == "2222"


def test_profile_upload_with_a_yaml_error_shows_it_at_its_line(page: Any, tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: Broken\nmanufacturer: x\ndeviceResources:\n  - name: [unclosed\n    properties: {}\n")
    page.goto("/profiles")
    by_id(page, "upload").locator("input[type=file]").set_input_files(str(bad))
    error = by_id(page, "profile-error")
    error.get_by_text("line 5", exact=False).wait_for()
    assert "not valid YAML" in error.inner_text()
    by_id(page, "editor").locator(".ep-error-line").first.wait_for()
    shot(page, "profiles")

    good = tmp_path / "good.yaml"
    profile = yaml.safe_load(DEMO_PROFILE.read_text())
    profile["name"] = "Console-Copy"
    good.write_text(yaml.safe_dump(profile, sort_keys=False))
    by_id(page, "upload").locator("input[type=file]").set_input_files(str(good))
    page.get_by_text("Console-Copy").first.wait_for()


def test_rule_created_with_a_sql_error_then_created_and_started(page: Any) -> None:
    page.goto("/rules")
    by_id(page, "new-rule").click()
    field(page, "rule-id").fill("console-rule")
    sql = by_id(page, "rule-sql").locator(".cm-content")
    sql.fill("SELECT avgg(TankTemperature) FROM events")
    by_id(page, "save-rule").click()
    by_id(page, "rule-error").get_by_text("line 1", exact=False).wait_for()
    sql.fill(f"SELECT TankTemperature AS t FROM events WHERE deviceName = '{DEVICE}'")
    by_id(page, "save-rule").click()
    status = by_id(page, "rule-status-console-rule")
    status.get_by_text("running", exact=True).wait_for()
    by_id(page, "stop-console-rule").click()
    status.get_by_text("stopped", exact=True).wait_for()
    by_id(page, "start-console-rule").click()
    status.get_by_text("running", exact=True).wait_for()
    shot(page, "rules")


def test_exports_list_the_app_services(page: Any) -> None:
    # `edgeplane up` runs the three app-service instances (disabled here: no targets set); the page finds them
    # on their ports and shows each one's counters.
    page.goto("/exports")
    for name in ("app-influx-export", "app-mqtt-export", "app-http-export"):
        by_id(page, f"export-{name}").wait_for()
    shot(page, "exports")


def test_devices_page_links_each_device(page: Any) -> None:
    page.goto("/devices")
    by_id(page, "devices").get_by_role("link", name=DEVICE).wait_for()
    shot(page, "devices")
    by_id(page, "devices").get_by_role("link", name=DEVICE).click()
    page.wait_for_url(f"**/devices/{DEVICE}")
