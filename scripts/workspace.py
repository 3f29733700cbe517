#!/usr/bin/env python3
"""Facts about the uv workspace, for the Makefile. Standard library only: it runs before .venv exists.

python scripts/workspace.py dists      distribution name of every workspace member
python scripts/workspace.py packages   import-package folder of every member (what mypy checks)
python scripts/workspace.py requirements FOLDER...
                                       the third-party requirements of those projects (each folder holds a
                                       pyproject.toml), one a line, without the projects themselves: the
                                       Dockerfile installs these first, in a layer of their own
python scripts/workspace.py closure FOLDER
                                       that project's folder and the folders of the workspace projects it
                                       depends on, transitively, in workspace order: what the Dockerfile
                                       installs for the service of FOLDER
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def members(root_dir: Path = ROOT) -> list[tuple[Path, dict[str, Any]]]:
    """(folder, parsed pyproject.toml) of each member, in the order the root pyproject lists them."""
    root = tomllib.loads((root_dir / "pyproject.toml").read_text())
    out: list[tuple[Path, dict[str, Any]]] = []
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        for folder in sorted(root_dir.glob(pattern)):
            if (folder / "pyproject.toml").is_file():
                out.append((folder, tomllib.loads((folder / "pyproject.toml").read_text())))
    return out


def dists() -> list[str]:
    return [str(project["project"]["name"]) for _, project in members()]


def packages() -> list[str]:
    found: list[str] = []
    for folder, project in members():
        wheel = project.get("tool", {}).get("hatch", {}).get("build", {}).get("targets", {}).get("wheel", {})
        for package in wheel.get("packages", []):
            if (folder / package).is_dir():
                found.append((folder / package).relative_to(ROOT).as_posix())
    return found


def requirement_name(requirement: str) -> str:
    """`pymodbus[serial]==3.16.1` -> `pymodbus` (PEP 508, as far as our pyproject files go)."""
    return re.split(r"[\s\[<>=!~;@]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def requirements(folders: list[str]) -> list[str]:
    """Third-party requirements of the projects in `folders`. A dependency on one of our own projects that
    is not among them is an error: pip would look for it on an index (where anyone may have published
    that name)."""
    projects = [tomllib.loads((Path(f) / "pyproject.toml").read_text())["project"] for f in folders]
    own = {requirement_name(p["name"]) for p in projects}
    found = {r for p in projects for r in p.get("dependencies", []) if requirement_name(r) not in own}
    ours = sorted(r for r in found if requirement_name(r).startswith("edgeplane"))
    if ours:
        raise SystemExit(f"workspace.py: {', '.join(ours)} is one of our projects: pass its folder too")
    return sorted(found)


def closure(folder: str, root_dir: Path = ROOT) -> list[str]:
    """`folder` (relative to the root) and the folders of the workspace projects it depends on, transitively."""
    found = members(root_dir)
    by_name = {requirement_name(project["project"]["name"]): f for f, project in found}
    deps = {f: [requirement_name(r) for r in project["project"].get("dependencies", [])] for f, project in found}
    start = root_dir / folder
    if start not in deps:
        raise SystemExit(f"workspace.py: {folder} is not a workspace member")
    todo, seen = [start], set()
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(by_name[d] for d in deps[current] if d in by_name)
    return [f.relative_to(root_dir).as_posix() for f, _ in found if f in seen]


def main(argv: list[str]) -> int:
    commands = {"dists": dists, "packages": packages}
    if len(argv) >= 2 and argv[0] == "requirements":
        print("\n".join(requirements(argv[1:])))
        return 0
    if len(argv) == 2 and argv[0] == "closure":
        print("\n".join(closure(argv[1])))
        return 0
    if len(argv) != 1 or argv[0] not in commands:
        usage = (
            f"workspace.py {{{'|'.join(commands)}}} | workspace.py requirements FOLDER... | workspace.py closure FOLDER"
        )
        print(f"usage: {usage}", file=sys.stderr)
        return 2
    print("\n".join(commands[argv[0]]()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
