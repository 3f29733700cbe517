"""Where in the user's text an API error points: the line (and column) to show the error at.

core-metadata names the line of a YAML syntax error ("... at line 3, column 7: ..."), and the rules engine
the line and column of a SQL error. A profile that parses but does not validate is answered with the field's
path instead ("deviceResources.1.properties.valueType: ..."): the path is looked up in the YAML text itself
to find its line.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from edgeplane_common.clients.gateway import error_position

_PATH = re.compile(r"(?:^|[:;]\s*)([A-Za-z_][\w]*(?:\.[\w\[\]]+)+)\s*:")


def _node_at(node: Any, path: list[str]) -> Any:
    for key in path:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if str(k.value).lower() == key.lower()), None)
            if match is None:
                return node
            node = match
        elif isinstance(node, yaml.SequenceNode) and key.isdigit() and int(key) < len(node.value):
            node = node.value[int(key)]
        else:
            return node
    return node


def locate(text: str, message: str) -> tuple[int, int] | None:
    """(line, column), both from 1, for `message` about `text`; None when it cannot be placed."""
    found = error_position(message)
    if found is not None:
        return found
    match = _PATH.search(message)
    if not match:
        return None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    if root is None:
        return None
    path = [p for p in re.split(r"[.\[\]]", match.group(1)) if p]
    node = _node_at(root, path)
    return node.start_mark.line + 1, node.start_mark.column + 1
