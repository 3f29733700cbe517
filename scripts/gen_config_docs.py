#!/usr/bin/env python3
"""Generate the variable tables of docs/configuration.md from the settings models, so they cannot drift.

    python scripts/gen_config_docs.py           # print the generated block
    python scripts/gen_config_docs.py --write   # rewrite it in docs/configuration.md (make docs)
    python scripts/gen_config_docs.py --check   # exit 1 if docs/configuration.md is out of date

What is documented: `DOCUMENTED` below, i.e. the shared `ServiceSettings` plus the settings class every
service in `edgeplane.services.SERVICES` names. Only the generated block between the BEGIN/END markers is
rewritten; the prose around it is edited by hand.
"""

from __future__ import annotations

import argparse
import enum
import importlib
import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from edgeplane.services import SERVICES, SHARED_ENV_PREFIX

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "configuration.md"
BEGIN = "<!-- BEGIN GENERATED: scripts/gen_config_docs.py (run `make docs` after changing a settings model) -->"
END = "<!-- END GENERATED -->"

SHARED = "edgeplane_common.settings.ServiceSettings"

# (service name, settings class import path). The shared base comes first; a service's own class adds its
# fields and defaults. New services are picked up from SERVICES; add other entries here.
DOCUMENTED: list[tuple[str, str]] = [
    ("every service", SHARED),
    *((s.name, s.settings) for s in SERVICES if s.settings),
]


class MissingSettingsError(Exception):
    """The settings class (or its module) does not exist (yet)."""


def load_class(path: str) -> type[BaseModel]:
    """Import `package.module.Class`. Only a missing module or class becomes MissingSettingsError; an
    error raised while importing an existing module propagates."""
    module_name, _, class_name = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and (module_name == err.name or module_name.startswith(err.name + ".")):
            raise MissingSettingsError(f"module {module_name} not found") from err
        raise
    cls = getattr(module, class_name, None)
    if cls is None:
        raise MissingSettingsError(f"{module_name} has no {class_name}")
    if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
        raise TypeError(f"{path} is not a pydantic model")
    return cls


# ---------------------------------------------------------------- rendering


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        inner = " or ".join(_type_name(a) for a in rest)
        return f"{inner}, optional" if len(rest) < len(args) else inner
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin in (list, dict, tuple, set) or annotation in (list, dict):
        return "JSON"
    if isinstance(annotation, type):
        if issubclass(annotation, SecretStr):
            return "string, secret"
        if issubclass(annotation, enum.Enum):
            return "one of " + ", ".join(f"`{m.value}`" for m in annotation)
        if annotation is bool:
            return "bool"
        if annotation is int:
            return "int"
        if annotation is float:
            return "number"
        if annotation is str:
            return "string"
        return annotation.__name__
    return str(annotation)


def _default(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, enum.Enum):
        value = value.value
    if value == "":
        return '`""`'
    return f"`{value}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _field_default(info: FieldInfo) -> Any:
    if info.default_factory is not None:
        return info.default_factory()  # type: ignore[call-arg]
    return info.default


Row = tuple[str, str, str, str]  # variable suffix, type, default, description


def rows(model: type[BaseModel], defaults: BaseModel | None = None, prefix: str = "") -> list[Row]:
    """One row per leaf setting: `HTTP__PORT`-style names, the type, the effective default (taken from the
    default instance of a nested model, so a service's `HttpSettings(port=59881)` shows 59881)."""
    out: list[Row] = []
    for name, info in model.model_fields.items():
        value = getattr(defaults, name) if defaults is not None else _field_default(info)
        var = f"{prefix}{name.upper()}"
        if _is_model(info.annotation) and isinstance(value, BaseModel):
            out += rows(type(value), value, f"{var}__")
        else:
            out.append((var, _type_name(info.annotation), _default(value), _cell(info.description or "")))
    return out


def _table(table_rows: list[Row], prefix: str) -> list[str]:
    lines = ["| Variable | Type | Default | Meaning |", "| --- | --- | --- | --- |"]
    lines += [f"| `{prefix}{var}` | {typ} | {default} | {desc} |" for var, typ, default, desc in table_rows]
    return lines


def generate(documented: list[tuple[str, str]] = DOCUMENTED) -> str:
    lines: list[str] = []
    shared_rows: dict[str, Row] = {}
    for service, path in documented:
        try:
            cls = load_class(path)
        except MissingSettingsError as err:
            print(f"gen_config_docs: WARNING: skipping {service} ({path}): {err}", file=sys.stderr)
            continue
        prefix: str = getattr(cls, "env_prefix", "") or ""
        table_rows = rows(cls)
        if path == SHARED:
            shared_rows = {r[0]: r for r in table_rows}
            lines += [
                "### Shared settings (every service)",
                "",
                f"Each variable below exists once per service prefix (`CORE_METADATA_LOG_LEVEL`, ...) and "
                f"once with the shared `{SHARED_ENV_PREFIX}` prefix, which applies to every service that "
                "does not set its own.",
                "",
                *_table(table_rows, "<PREFIX>"),
                "",
            ]
            continue
        own = [r for r in table_rows if shared_rows.get(r[0]) != r]
        lines += [
            f"### {service}",
            "",
            f"Prefix `{prefix}`; settings class `{path}`. Besides the shared settings above (as "
            f"`{prefix}...`), it reads or changes the default of:",
            "",
            *_table(own, prefix),
            "",
        ]
    return "\n".join([BEGIN, "", *lines, END])


def replace_block(text: str, block: str) -> str:
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{DOC}: generated-block markers not found:\n{BEGIN}\n{END}")
    return text[:start] + block + text[end + len(END) :]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help=f"rewrite the generated block in {DOC}")
    mode.add_argument("--check", action="store_true", help=f"exit 1 if {DOC} is out of date")
    args = parser.parse_args(argv)
    block = generate()
    if not (args.write or args.check):
        print(block)
        return 0
    current = DOC.read_text()
    wanted = replace_block(current, block)
    if args.check:
        if wanted != current:
            print(f"{DOC.relative_to(ROOT)} is out of date: run `make docs`", file=sys.stderr)
            return 1
        return 0
    if wanted != current:
        DOC.write_text(wanted)
        print(f"updated {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
