"""Validate JSON against an EdgeX OpenAPI document's schemas, read in place from the reference files.

The EdgeX files are OpenAPI 3.1 but not strictly valid (see /work/shared/design.md), so they are not loaded
with a spec validator: instances are validated against the schema the document declares at a JSON pointer
(e.g. paths -> /event/all -> get -> responses -> 200 -> content -> application/json -> schema) with a
Draft 2020-12 validator whose `referencing` registry holds the whole (patched) document, so every
`#/components/schemas/...` reference resolves inside it. Each test module patches the defects of its
document explicitly, with the reason, before handing it to `OpenApiSpec`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

METHODS = ("get", "post", "put", "patch", "delete")
FORMATS = Draft202012Validator.FORMAT_CHECKER  # `format: uuid` is asserted (ids, requestIds)


def load_spec(path: Path) -> dict[str, Any]:
    # A JSON round trip turns YAML's integer status keys (207:) into the strings JSON pointers address.
    raw: dict[str, Any] = json.loads(json.dumps(yaml.safe_load(path.read_text())))
    return raw


def _properties(schema: dict[str, Any], schemas: dict[str, Any]) -> set[str]:
    names = set(schema.get("properties", {}))
    for sub in schema.get("allOf", []):
        if "$ref" in sub:
            sub = schemas[sub["$ref"].rsplit("/", 1)[-1]]
        names |= _properties(sub, schemas)
    return names


def undefined_required(spec: dict[str, Any]) -> dict[str, set[str]]:
    """Component schemas whose `required` names a property they do not define."""
    schemas = spec["components"]["schemas"]
    out = {}
    for name, schema in schemas.items():
        missing = set(schema.get("required", [])) - _properties(schema, schemas)
        if missing:
            out[name] = missing
    return out


def pointer(*parts: str) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


class OpenApiSpec:
    """A (patched) OpenAPI document: its operations and validators for any of its schemas."""

    def __init__(self, spec: dict[str, Any], uri: str) -> None:
        self.spec = spec
        self.uri = uri
        self.registry: Registry = Registry().with_resource(uri, DRAFT202012.create_resource(spec))
        self.operations: dict[tuple[str, str], re.Pattern[str]] = {
            (method.upper(), template): re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")
            for template, ops in spec["paths"].items()
            for method in ops
            if method in METHODS
        }

    def validator_for(self, *parts: str) -> Draft202012Validator:
        return Draft202012Validator(
            {"$ref": f"{self.uri}#{pointer(*parts)}"}, registry=self.registry, format_checker=FORMATS
        )

    def assert_valid(self, instance: Any, *parts: str) -> None:
        errors = sorted(self.validator_for(*parts).iter_errors(instance), key=lambda e: list(e.absolute_path))
        assert not errors, f"{'/'.join(parts)}:\n" + "\n".join(
            f"  at {list(e.absolute_path)}: {e.message}" for e in errors[:10]
        )

    def template_of(self, method: str, path: str) -> str:
        found = [t for (m, t), rx in self.operations.items() if m == method and rx.match(path)]
        assert len(found) == 1, f"{method} {path} matches spec operations {found}"
        return found[0]

    def response_schema(
        self, method: str, template: str, status: int, undeclared: dict[tuple[str, str], set[int]]
    ) -> tuple[str, ...]:
        """Pointer parts of the schema declared for this response; ErrorResponse for the statuses listed
        in `undeclared` (EdgeX answers them but the document forgets them). Anything else fails."""
        responses = self.spec["paths"][template][method.lower()]["responses"]
        if str(status) in responses:
            content = responses[str(status)]["content"]
            assert "application/json" in content, f"{method} {template} {status} declares no application/json"
            return (
                "paths",
                template,
                method.lower(),
                "responses",
                str(status),
                "content",
                "application/json",
                "schema",
            )
        assert status in undeclared.get((method, template), set()), (
            f"{method} {template} answered {status}, which the document does not declare "
            f"(declared: {sorted(responses)})"
        )
        return ("components", "schemas", "ErrorResponse")

    def request_schema(self, method: str, template: str) -> tuple[str, ...]:
        return ("paths", template, method.lower(), "requestBody", "content", "application/json", "schema")
