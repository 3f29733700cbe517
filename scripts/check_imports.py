#!/usr/bin/env python3
"""The import rule of the workspace, checked by `make lint`: no service imports (or depends on) another.

    edgeplane_common   the shared library: imports no other workspace package
    edgeplane_sdk      the device-service SDK: imports edgeplane_common only; imported by device services only
    every other member a service (core_*, device_*, the launcher): imports itself, edgeplane_common and,
                       for a device service (device_*), edgeplane_sdk; nothing else of ours

Both the `import` statements of each member's package (all of them, also those under TYPE_CHECKING or
inside functions: they couple the packages all the same) and the workspace projects each pyproject.toml
declares as dependencies (what an image installs) are checked. Standard library only.

python scripts/check_imports.py [ROOT]   prints each violation as path:line: message; exit 1 if any
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

from workspace import ROOT, members, requirement_name

COMMON = "edgeplane_common"
SDK = "edgeplane_sdk"
DEVICE_SERVICE_PREFIX = "device_"


def allowed(importer: str, imported: str) -> bool:
    """May workspace package `importer` import workspace package `imported`?"""
    if imported == importer:
        return True
    if importer == COMMON:
        return False
    if imported == COMMON:
        return True
    if imported == SDK:
        return importer.startswith(DEVICE_SERVICE_PREFIX)
    return False


def why(importer: str, imported: str) -> str:
    if importer == COMMON:
        return f"{COMMON} is the shared library and imports no other workspace package"
    if imported == SDK:
        return f"only device services (device_*) use {SDK}; what other services need of it belongs in {COMMON}"
    return f"no service imports another; logic two services need belongs in {COMMON}"


@dataclass(frozen=True)
class Member:
    folder: Path
    dist: str
    packages: tuple[str, ...]
    dependencies: tuple[str, ...]


def workspace(root: Path) -> list[Member]:
    found = []
    for folder, project in members(root):
        wheel = project.get("tool", {}).get("hatch", {}).get("build", {}).get("targets", {}).get("wheel", {})
        packages = tuple(Path(p).name for p in wheel.get("packages", []) if (folder / p).is_dir())
        deps = tuple(requirement_name(r) for r in project["project"].get("dependencies", []))
        found.append(Member(folder, requirement_name(project["project"]["name"]), packages, deps))
    return found


def imported_modules(source: str) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in `source`."""
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
    return out


def violations(root: Path) -> list[str]:
    found = workspace(root)
    ours = {package for m in found for package in m.packages}
    package_of_dist = {m.dist: m.packages for m in found}
    problems: list[str] = []
    for member in found:
        pyproject = (member.folder / "pyproject.toml").relative_to(root)
        for package in member.packages:
            for dep in member.dependencies:
                for dep_package in package_of_dist.get(dep, ()):
                    if not allowed(package, dep_package):
                        problems.append(f"{pyproject}:1: {member.dist} depends on {dep}: {why(package, dep_package)}")
            for path in sorted((member.folder / package).rglob("*.py")):
                rel = path.relative_to(root)
                for line, module in imported_modules(path.read_text()):
                    top = module.split(".")[0]
                    if top in ours and not allowed(package, top):
                        problems.append(f"{rel}:{line}: {package} imports {module}: {why(package, top)}")
    return problems


def main(argv: list[str]) -> int:
    root = Path(argv[0]).resolve() if argv else ROOT
    problems = violations(root)
    for problem in problems:
        print(problem)
    if problems:
        print(f"check_imports: {len(problems)} violation(s) of the import rule (see scripts/check_imports.py)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
