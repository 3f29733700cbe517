"""scripts/check_imports.py: no service imports (or depends on) another; the SDK is for device services."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "check_imports.py"


def member(root: Path, folder: str, dist: str, package: str, deps: list[str], files: dict[str, str]) -> None:
    (root / folder / package).mkdir(parents=True)
    deps_toml = ", ".join(f'"{d}"' for d in deps)
    (root / folder / "pyproject.toml").write_text(
        f'[project]\nname = "{dist}"\ndependencies = [{deps_toml}]\n\n'
        f'[tool.hatch.build.targets.wheel]\npackages = ["{package}"]\n'
    )
    for name, text in {"__init__.py": "", **files}.items():
        (root / folder / package / name).write_text(text)


def workspace(tmp_path: Path, **extra_files: dict[str, str]) -> Path:
    """common, sdk, two core services and a device service, importing what they may unless `extra_files`
    (per package) add more."""
    (tmp_path / "pyproject.toml").write_text(
        '[tool.uv.workspace]\nmembers = ["common", "core-a", "core-b", "sdk", "device-x"]\n'
    )
    member(tmp_path, "common", "edgeplane-common", "edgeplane_common", ["pydantic==2.0"],
           {"x.py": "import json\n", **extra_files.get("edgeplane_common", {})})  # fmt: skip
    member(tmp_path, "core-a", "core-a", "core_a", ["edgeplane-common"],
           {"m.py": "from edgeplane_common import x\nfrom . import m\n", **extra_files.get("core_a", {})})  # fmt: skip
    member(tmp_path, "core-b", "core-b", "core_b", ["edgeplane-common"], extra_files.get("core_b", {}))
    member(tmp_path, "sdk", "edgeplane-sdk", "edgeplane_sdk", ["edgeplane-common"],
           {"v.py": "import edgeplane_common.x\n", **extra_files.get("edgeplane_sdk", {})})  # fmt: skip
    member(tmp_path, "device-x", "device-x", "device_x", ["edgeplane-sdk"],
           {"d.py": "from edgeplane_sdk.v import y\nimport edgeplane_common\n"})  # fmt: skip
    return tmp_path


def check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), str(root)], capture_output=True, text=True, timeout=30)


def test_a_workspace_that_keeps_the_rule_passes(tmp_path: Path) -> None:
    result = check(workspace(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_a_service_importing_another_service_fails_naming_file_and_line(tmp_path: Path) -> None:
    root = workspace(tmp_path, core_b={"uses_a.py": "import os\n\ndef f():\n    from core_a.m import thing\n"})
    result = check(root)
    assert result.returncode == 1
    assert "core-b/core_b/uses_a.py:4: core_b imports core_a.m: no service imports another" in result.stdout


def test_a_core_service_importing_the_device_sdk_fails(tmp_path: Path) -> None:
    root = workspace(tmp_path, core_a={"values.py": "from edgeplane_sdk.values import parse_value\n"})
    result = check(root)
    assert result.returncode == 1
    assert "core-a/core_a/values.py:1: core_a imports edgeplane_sdk.values: only device services" in result.stdout


def test_the_shared_library_imports_no_workspace_package(tmp_path: Path) -> None:
    root = workspace(tmp_path, edgeplane_common={"bad.py": "import edgeplane_sdk\n"})
    result = check(root)
    assert result.returncode == 1
    assert "common/edgeplane_common/bad.py:1: edgeplane_common imports edgeplane_sdk" in result.stdout


def test_a_declared_dependency_on_another_service_fails_too(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    pyproject = root / "core-b" / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('["edgeplane-common"]', '["edgeplane-common", "core-a"]'))
    result = check(root)
    assert result.returncode == 1
    assert "core-b/pyproject.toml:1: core-b depends on core-a: no service imports another" in result.stdout
