"""The one bounded YAML loader (edgeplane_common.safe_yaml) for profile uploads and res/ files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from edgeplane_common.errors import ContractInvalid, LimitExceeded
from edgeplane_common.safe_yaml import YamlLimits, check_profile_counts, load_yaml
from tests.integration.test_metadata_hardening import alias_bomb, merge_bomb

RES = Path(__file__).resolve().parents[2] / "device-services" / "modbus" / "device_modbus" / "res"


@pytest.mark.parametrize("doc", [alias_bomb(7), alias_bomb(9), merge_bomb(9)], ids=["alias7", "alias9", "merge9"])
def test_bombs_are_refused(doc: bytes) -> None:
    with pytest.raises(ContractInvalid, match="expands to more than 250000 YAML nodes"):
        load_yaml(doc)


def test_recursive_and_deep_documents_are_refused() -> None:
    with pytest.raises(ContractInvalid, match="deeper than 64"):
        load_yaml("a: &a [*a]")
    with pytest.raises(ContractInvalid, match="deeper than 64"):
        load_yaml("[" * 1000 + "]" * 1000)


def test_size_is_413_and_syntax_errors_name_the_line() -> None:
    with pytest.raises(LimitExceeded):
        load_yaml(b"#" * 101, limits=YamlLimits(max_bytes=100))
    with pytest.raises(ContractInvalid, match="at line 3, column 1"):
        load_yaml("a: 1\nb: [\n")


def test_small_aliases_and_merge_keys_still_work() -> None:
    doc = "base: &b {x: 1}\nuse: {<<: *b, y: 2}\nlist: [*b, *b]\n"
    assert load_yaml(doc) == yaml.safe_load(doc)


def test_every_shipped_res_file_loads_as_safe_load_does() -> None:
    files = sorted(RES.rglob("*.y*ml"))
    assert files
    for path in files:
        assert load_yaml(path.read_bytes(), what=path.name) == yaml.safe_load(path.read_bytes())


def test_profile_counts_are_capped_in_any_key_casing() -> None:
    limits = YamlLimits(max_resources=2)
    check_profile_counts({"deviceResources": [1, 2]}, limits)
    with pytest.raises(ContractInvalid, match="at most 2"):
        check_profile_counts({"DeviceResources": [1, 2, 3]}, limits)
    with pytest.raises(ContractInvalid, match="at most 2"):
        check_profile_counts({"devicecommands": [1, 2, 3]}, limits)
