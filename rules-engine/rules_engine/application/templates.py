"""Templates of action values: `{{.column}}` (or `{{column}}`) filled from a rule's output row.

A value that is exactly one placeholder takes the column's value as it is (a number stays a number); inside a
longer text the value is written as text. Templates are checked when a rule is created: a placeholder that
names no column of the rule's output is refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import orjson

PLACEHOLDER = re.compile(r"\{\{\s*\.?([^{}\s]+)\s*\}\}")


def placeholders(template: Any) -> set[str]:
    """Every column a template (a string, or strings nested in lists and objects) names."""
    out: set[str] = set()
    for text in _strings(template):
        out.update(PLACEHOLDER.findall(text))
    return out


def _strings(template: Any) -> Iterable[str]:
    if isinstance(template, str):
        yield template
    elif isinstance(template, dict):
        for v in template.values():
            yield from _strings(v)
    elif isinstance(template, list):
        for v in template:
            yield from _strings(v)


def text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    return orjson.dumps(value).decode()


def render(template: Any, row: dict[str, Any]) -> Any:
    """`template` with its placeholders filled from `row`."""
    if isinstance(template, str):
        whole = PLACEHOLDER.fullmatch(template.strip())
        if whole:
            return row.get(whole.group(1))
        if "{{" not in template:
            return template
        return PLACEHOLDER.sub(lambda m: text(row.get(m.group(1))), template)
    if isinstance(template, dict):
        return {k: render(v, row) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, row) for v in template]
    return template
