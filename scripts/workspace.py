#!/usr/bin/env python3
"""Facts about the uv workspace, for the Makefile. Standard library only: it runs before .venv exists.

python scripts/workspace.py dists      distribution name of every workspace member
python scripts/workspace.py packages   import-package folder of every member (what mypy checks)
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def members() -> list[tuple[Path, dict[str, Any]]]:
    """(folder, parsed pyproject.toml) of each member, in the order the root pyproject lists them."""
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    out: list[tuple[Path, dict[str, Any]]] = []
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        for folder in sorted(ROOT.glob(pattern)):
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


def main(argv: list[str]) -> int:
    commands = {"dists": dists, "packages": packages}
    if len(argv) != 1 or argv[0] not in commands:
        print(f"usage: workspace.py {{{'|'.join(commands)}}}", file=sys.stderr)
        return 2
    print("\n".join(commands[argv[0]]()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
