"""The launcher's service list is the one source for `edgeplane up`, the config docs and (later) compose:
it must be internally consistent and match the packages in the repository."""

from __future__ import annotations

import importlib
import importlib.util
import re
import tomllib
from pathlib import Path

import pytest

from edgeplane.services import INFRA, PING_PATH, SERVICES, Service, UnknownServiceError, by_name, select

ROOT = Path(__file__).resolve().parents[2]


def _unique(values: list[object]) -> bool:
    return len(values) == len(set(values))


def test_names_ports_prefixes_and_modules_are_unique() -> None:
    assert SERVICES, "at least one service is declared"
    assert _unique([s.name for s in SERVICES])
    # One module may run several instances (the app services), each with its own arguments.
    assert _unique([(s.module, s.args) for s in SERVICES])
    assert _unique([s.env_prefix for s in SERVICES])
    assert _unique([s.port for s in SERVICES] + [i.default_port for i in INFRA])


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_service_fields_follow_the_conventions(service: Service) -> None:
    assert re.fullmatch(r"[a-z][a-z0-9-]*", service.name)
    assert service.env_prefix == service.name.upper().replace("-", "_") + "_"
    assert service.port_env == f"{service.env_prefix}HTTP__PORT"
    assert 1024 < service.port < 65536
    if service.health == "http":
        assert service.ping_url(10) == f"http://127.0.0.1:{service.port + 10}{PING_PATH}"
    else:
        assert service.ping_url(10) == f"tcp://127.0.0.1:{service.port + 10}"
    assert service.description


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_module_is_importable_and_runnable(service: Service) -> None:
    assert importlib.util.find_spec(service.module) is not None, f"{service.module} is not installed"
    assert importlib.util.find_spec(f"{service.module}.__main__") is not None, (
        f"`python -m {service.module}` needs {service.module}/__main__.py"
    )


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_project_folder_is_a_workspace_member(service: Service) -> None:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert service.project in root["tool"]["uv"]["workspace"]["members"]
    project = tomllib.loads((ROOT / service.project / "pyproject.toml").read_text())
    packages = project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    assert service.module.split(".")[0] in [p.split("/")[-1] for p in packages]


@pytest.mark.parametrize("service", [s for s in SERVICES if s.settings], ids=lambda s: s.name)
def test_settings_class_matches_prefix_and_port(service: Service) -> None:
    assert service.settings is not None
    module_name, _, class_name = service.settings.rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    assert cls.env_prefix == service.env_prefix
    defaults = cls.model_construct()  # field defaults only, no environment
    assert defaults.http.port == service.port


def test_select() -> None:
    first = SERVICES[0]
    assert select(None) == list(SERVICES)
    assert select([]) == list(SERVICES)
    assert select([first.name, first.name]) == [first]
    assert by_name(first.name) is first
    with pytest.raises(UnknownServiceError, match="known services"):
        select(["no-such-service"])
