"""scripts/workspace.py: the Makefile's and the Dockerfile's view of the workspace (standard library only)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "workspace.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT, timeout=30)


def test_requirements_are_the_third_party_ones_of_all_projects_given(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "pyproject.toml").write_text(
        '[project]\nname = "my-lib"\ndependencies = ["pydantic==2.0", "PyYAML==6.0.3"]\n'
    )
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "pyproject.toml").write_text(
        '[project]\nname = "my-svc"\ndependencies = ["my-lib", "pymodbus[serial]==3.16.1", "pydantic==2.0"]\n'
    )
    result = _run("requirements", str(tmp_path / "lib"), str(tmp_path / "svc"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["PyYAML==6.0.3", "pydantic==2.0", "pymodbus[serial]==3.16.1"]


def test_requirements_of_the_modbus_image_leave_out_the_workspace_projects() -> None:
    folders = ["common", "device-services/sdk", "device-services/modbus"]
    result = _run("requirements", *(str(ROOT / f) for f in folders))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split()
    assert any(line.startswith("pymodbus") for line in lines)
    assert any(line.startswith("pydantic==") for line in lines)
    assert not any(line.startswith("edgeplane") for line in lines)
    assert all("==" in line for line in lines), "every dependency is pinned"


def test_a_missing_workspace_project_is_an_error_not_an_index_lookup() -> None:
    result = _run("requirements", str(ROOT / "core-command"))  # depends on edgeplane-common
    assert result.returncode != 0
    assert "edgeplane-common" in result.stderr
    assert "pass its folder too" in result.stderr


def test_usage_errors() -> None:
    assert _run().returncode == 2
    assert _run("requirements").returncode == 2
    assert _run("nonsense").returncode == 2


def test_closure_is_the_project_and_the_workspace_projects_it_needs() -> None:
    result = _run("closure", "device-services/modbus")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["common", "device-services/sdk", "device-services/modbus"]
    assert _run("closure", "core-data").stdout.split() == ["common", "core-data"]
    missing = _run("closure", "no-such-project")
    assert missing.returncode != 0
    assert "not a workspace member" in missing.stderr
