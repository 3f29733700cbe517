"""Loads profiles and device definitions from a res/ folder (EdgeX YAML or JSON) into core-metadata."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import orjson
import yaml

from edgeplane_common.errors import ContractInvalid
from edgeplane_sdk.metadata_client import MetadataClient

log = logging.getLogger(__name__)
_SUFFIXES = {".yaml", ".yml", ".json"}


def load_file(path: Path) -> Any:
    try:
        if path.suffix == ".json":
            return orjson.loads(path.read_bytes())
        return yaml.safe_load(path.read_text())
    except (yaml.YAMLError, orjson.JSONDecodeError) as err:
        raise ContractInvalid(f"{path}: not valid YAML/JSON: {err}") from None


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
    for path in _files(res_dir / "profiles"):
        status, message = await client.add_profile(load_file(path))
        if status not in (201, 409):
            raise ContractInvalid(f"profile file {path.name} was refused by core-metadata: {message}")
        if status == 201:
            log.info("provisioned profile from %s", path.name)
    for path in _files(res_dir / "devices"):
        for definition in device_definitions(load_file(path)):
            device = {"adminState": "UNLOCKED", "operatingState": "UP", **definition, "serviceName": service_name}
            status, message = await client.add_device(device)
            if status not in (201, 409):
                raise ContractInvalid(f"device {device.get('name')!r} in {path.name} was refused: {message}")
            if status == 201:
                log.info("provisioned device %s from %s", device.get("name"), path.name)
