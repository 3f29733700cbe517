"""EdgeX's device-profile rules beyond field types."""

from __future__ import annotations

from typing import Any

import pytest

from core_metadata.application.validation import validate_profile
from edgeplane_common.errors import ContractInvalid
from edgeplane_common.models import DeviceProfile


def res(name: str, rw: str = "RW", vt: str = "Int16") -> dict[str, Any]:
    return {"name": name, "properties": {"valueType": vt, "readWrite": rw}}


def cmd(name: str, rw: str, *resources: str) -> dict[str, Any]:
    return {"name": name, "readWrite": rw, "resourceOperations": [{"deviceResource": r} for r in resources]}


def profile(resources: list[dict[str, Any]], commands: list[dict[str, Any]] | None = None) -> DeviceProfile:
    return DeviceProfile.model_validate({"name": "p", "deviceResources": resources, "deviceCommands": commands or []})


def test_valid_profile_passes() -> None:
    validate_profile(profile([res("a"), res("b", "R")], [cmd("both", "R", "a", "b"), cmd("setA", "W", "a")]))


@pytest.mark.parametrize(
    ("resources", "commands", "expected"),
    [
        ([res("a"), res("a")], [], "device resource name 'a' is duplicated"),
        ([res("a")], [cmd("c", "R", "a"), cmd("c", "R", "a")], "device command name 'c' is duplicated"),
        ([res("a")], [cmd("a", "R", "a")], "has the name of a device resource"),
        ([res("a")], [cmd("c", "R", "missing")], "'missing', which the profile does not define"),
        ([res("a", "R")], [cmd("c", "RW", "a")], "is RW but device resource 'a' is R"),
        ([res("a", "W")], [cmd("c", "R", "a")], "is R but device resource 'a' is W"),
        ([res("img", "RW", "Binary")], [], "is Binary and cannot be written"),
        ([res("a")], [cmd("c", "R")], "has no resourceOperations"),
    ],
)
def test_broken_rules_are_named(resources: list[dict[str, Any]], commands: list[dict[str, Any]], expected: str) -> None:
    with pytest.raises(ContractInvalid, match=expected):
        validate_profile(profile(resources, commands))


def test_minimum_above_maximum_is_rejected() -> None:
    bad = res("a")
    bad["properties"].update(minimum=10, maximum=1)
    with pytest.raises(ContractInvalid, match=r"minimum 10\.0 above maximum 1\.0"):
        validate_profile(profile([bad]))
