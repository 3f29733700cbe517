"""Loads profiles and device definitions from a res/ folder (EdgeX YAML or JSON) into core-metadata."""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import orjson

from edgeplane_common.clients import MetadataClient
from edgeplane_common.errors import ContractInvalid, EdgeError
from edgeplane_common.safe_yaml import YamlLimits, check_profile_counts, load_yaml

log = logging.getLogger(__name__)
_SUFFIXES = {".yaml", ".yml", ".json"}


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(text: str) -> str:
    """`${VAR}` and `${VAR:-default}` in res/ files, so one device file serves native and compose runs
    (e.g. the simulator's host and port). An unset variable without a default is an error, not ''."""

    def repl(m: re.Match[str]) -> str:
        value = os.environ.get(m.group(1), m.group(2))
        if value is None:
            raise ContractInvalid(f"environment variable {m.group(1)} is not set and has no default")
        return value

    return _VAR.sub(repl, text)


def load_file(path: Path, limits: YamlLimits | None = None) -> Any:
    """A res/ file, bounded like a profile upload (size, alias and merge-key expansion, nesting)."""
    text = expand_env(path.read_text())
    if path.suffix == ".json":
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as err:
            raise ContractInvalid(f"{path}: not valid JSON: {err}") from None
    return load_yaml(text, what=str(path), limits=limits)


def device_definitions(data: Any) -> list[dict[str, Any]]:
    """A devices file is `deviceList: [...]` (EdgeX YAML), a bare list, or one device."""
    if isinstance(data, dict) and "deviceList" in data:
        return list(data["deviceList"] or [])
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        return [data]
    raise ContractInvalid("a devices file must hold deviceList, a list of devices or one device")


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*") if p.suffix in _SUFFIXES) if folder.is_dir() else []


async def provision(client: MetadataClient, res_dir: Path, service_name: str) -> None:
    """Add what is missing; existing profiles and devices (409) are left as the user changed them."""
    limits = YamlLimits()
    for path in _files(res_dir / "profiles"):
        profile = await asyncio.to_thread(load_file, path, limits)
        check_profile_counts(profile, limits, f"profile file {path.name}")
        if await _added(client.add_profile(profile), f"profile file {path.name} was refused by core-metadata"):
            log.info("provisioned profile from %s", path.name)
    for path in _files(res_dir / "devices"):
        for definition in device_definitions(await asyncio.to_thread(load_file, path, limits)):
            device = {"adminState": "UNLOCKED", "operatingState": "UP", **definition, "serviceName": service_name}
            if await _added(client.add_device(device), f"device {device.get('name')!r} in {path.name} was refused"):
                log.info("provisioned device %s from %s", device.get("name"), path.name)


async def _added(adding: Awaitable[str | None], refused: str) -> bool:
    """True if added, False if it existed; a definition core-metadata refuses is a ContractInvalid."""
    try:
        await adding
    except EdgeError as err:
        if err.status_code == 409:
            return False
        if 400 <= err.status_code < 500:
            raise ContractInvalid(f"{refused}: {err.message}") from None
        raise
    return True
