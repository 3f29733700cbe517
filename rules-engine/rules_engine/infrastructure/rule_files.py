"""Rules from YAML files under res/rules/: each file holds `rules: [ {id, sql, actions, options}, ... ]`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)


def load_rule_files(folder: Path) -> list[tuple[str, list[Any]]]:
    """(file name, its rules) for every *.yaml / *.yml file in `folder`, in name order; an unreadable file is
    logged and skipped."""
    if not folder.is_dir():
        return []
    out: list[tuple[str, list[Any]]] = []
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as err:
            log.error("rule file %s cannot be read: %s", path, err)
            continue
        rules = data.get("rules") if isinstance(data, dict) else None
        if not isinstance(rules, list):
            log.error("rule file %s has no `rules:` list", path)
            continue
        out.append((path.name, rules))
    return out
