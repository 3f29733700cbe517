"""docs/configuration.md carries tables generated from the settings models; they must not drift."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_config_docs", ROOT / "scripts" / "gen_config_docs.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


gen = _load_script()


def test_configuration_md_is_up_to_date() -> None:
    current = gen.DOC.read_text()
    assert gen.replace_block(current, gen.generate()) == current, (
        "docs/configuration.md is out of date with the settings models: run `make docs`"
    )


def test_shared_settings_are_documented_with_nesting() -> None:
    block = gen.generate([("every service", gen.SHARED)])
    assert "`<PREFIX>NATS__URL`" in block
    assert "`<PREFIX>HTTP__AUTH_TOKEN` | string, secret, optional | unset" in block
    assert "`<PREFIX>REDIS__URL` | string, secret | `redis://127.0.0.1:6379/0`" in block


def test_service_section_shows_its_prefix_and_own_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "fake_settings_mod.py").write_text(
        "from typing import ClassVar\n"
        "from pydantic import Field\n"
        "from edgeplane_common.settings import HttpSettings, ServiceSettings\n"
        "class FakeSettings(ServiceSettings):\n"
        "    env_prefix: ClassVar[str] = 'FAKE_SVC_'\n"
        "    http: HttpSettings = Field(default_factory=lambda: HttpSettings(port=59999))\n"
        "    batch_size: int = Field(10, description='Items per | batch.')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("FAKE_SVC_BATCH_SIZE", "77")  # the environment must not leak into the docs
    block = gen.generate([("every service", gen.SHARED), ("fake-svc", "fake_settings_mod.FakeSettings")])
    section = block.split("### fake-svc", 1)[1]
    assert "Prefix `FAKE_SVC_`" in section
    assert "| `FAKE_SVC_HTTP__PORT` | int | `59999` |" in section
    assert "| `FAKE_SVC_BATCH_SIZE` | int | `10` | Items per \\| batch. |" in section
    assert "FAKE_SVC_NATS__URL" not in section  # unchanged shared settings are listed once, above


def test_missing_settings_class_is_skipped_loudly(capsys: pytest.CaptureFixture[str]) -> None:
    block = gen.generate(
        [("ghost", "no_such_package_xyz.settings.GhostSettings"), ("shared", "edgeplane_common.settings.NoSuchClass")]
    )
    assert "ghost" not in block
    err = capsys.readouterr().err
    assert "WARNING: skipping ghost" in err
    assert "WARNING: skipping shared" in err


def test_broken_settings_module_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "broken_settings_mod.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_xyz"):
        gen.generate([("broken", "broken_settings_mod.Settings")])
