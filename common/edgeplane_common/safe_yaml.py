"""The one YAML loader for files users hand us (profile uploads, res/ profiles and device files).

`yaml.safe_load` is safe against code execution, not against size: a 700-byte document with nine levels of
aliases (or of merge keys, `<<: [*a, *b, ...]`) expands to hundreds of millions of nodes once anything walks
it, which took core-metadata from 116 MB to 5.4 GB. Here every document is bounded before any model sees it:
its size in bytes, the number of nodes it expands to (aliases and merges counted every time they are used),
its nesting depth, and (for profiles) the number of device resources and commands. Each bound is a clear
error, never a hang. libyaml parses when it is installed (several times faster than the pure-Python parser).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from edgeplane_common.errors import ContractInvalid, LimitExceeded

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class YamlLimits:
    max_bytes: int = 2 * 1024 * 1024
    """Largest document, in bytes."""
    max_nodes: int = 250_000
    """Most nodes the document may expand to, counting every use of an alias or merge key."""
    max_depth: int = 64
    """Deepest nesting of mappings and sequences."""
    max_resources: int = 5_000
    """Most deviceResources, and most deviceCommands, in one profile."""


class _TooBig(Exception):
    pass


class _BoundedLoader(_Base):  # type: ignore[misc]
    """Safe loader that stops merge-key expansion (which copies node lists while composing) at a budget."""

    budget = YamlLimits.max_nodes

    def flatten_mapping(self, node: Any) -> None:
        super().flatten_mapping(node)
        # Called again for every merge that uses this mapping, so repeated use is charged every time.
        self.budget -= len(node.value)
        if self.budget < 0:
            raise _TooBig


def _check_tree(data: Any, limits: YamlLimits, what: str) -> None:
    """Walk `data` as the tree it expands to (shared objects from aliases count at every use); stop at the
    first bound crossed, so the walk costs at most `max_nodes` steps."""
    nodes = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > limits.max_nodes:
            raise ContractInvalid(
                f"{what} expands to more than {limits.max_nodes} YAML nodes (are aliases or merge keys "
                "repeating a large part of it?)"
            )
        if isinstance(value, dict):
            if depth > limits.max_depth:
                raise ContractInvalid(f"{what} nests deeper than {limits.max_depth} levels")
            for item in value.values():
                stack.append((item, depth + 1))
            nodes += len(value)  # the keys
        elif isinstance(value, list):
            if depth > limits.max_depth:
                raise ContractInvalid(f"{what} nests deeper than {limits.max_depth} levels")
            stack.extend((item, depth + 1) for item in value)


def load_yaml(content: bytes | str, *, what: str = "the YAML document", limits: YamlLimits | None = None) -> Any:
    """Parse one YAML (or JSON) document within `limits`; LimitExceeded (413) when it is too large,
    ContractInvalid (400) naming the line and column when it is not YAML or expands beyond the limits."""
    limits = limits or YamlLimits()
    size = len(content.encode() if isinstance(content, str) else content)
    if size > limits.max_bytes:
        raise LimitExceeded(f"{what} is {size} bytes; the maximum is {limits.max_bytes}")
    loader = _BoundedLoader(content)
    loader.budget = limits.max_nodes
    try:
        data = loader.get_single_data()
    except _TooBig:
        raise ContractInvalid(
            f"{what} expands to more than {limits.max_nodes} YAML nodes through merge keys (<<)"
        ) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ContractInvalid(f"{what} is not valid YAML{where}: {err.problem or err}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ContractInvalid(f"{what} is not valid YAML: {err}") from None
    except RecursionError:
        raise ContractInvalid(f"{what} nests deeper than {limits.max_depth} levels") from None
    finally:
        loader.dispose()
    _check_tree(data, limits, what)
    return data


def check_profile_counts(data: Any, limits: YamlLimits, what: str = "the profile") -> None:
    """At most `max_resources` deviceResources and deviceCommands (keys in any casing, as EdgeX reads them)."""
    if not isinstance(data, dict):
        return
    for key, value in data.items():
        counted = isinstance(key, str) and key.lower() in ("deviceresources", "devicecommands")
        if counted and isinstance(value, list) and len(value) > limits.max_resources:
            raise ContractInvalid(f"{what} has {len(value)} {key}; at most {limits.max_resources} are accepted")


__all__ = ["YamlLimits", "check_profile_counts", "load_yaml"]
