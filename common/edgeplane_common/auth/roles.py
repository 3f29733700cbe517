"""Roles and what each may do. EdgeX has one level (a valid token may do anything); a gateway next to PLCs
wants more: `viewer` reads, `operator` also sends device commands and starts/stops rules, `admin` may do
everything. Services act with the `service` role, which ranks as admin.

A route needs `viewer` for GET/HEAD and `admin` otherwise, unless it declares its role in its OpenAPI
operation (`openapi_extra={ROLE_EXTENSION: "operator"}`), which also documents it."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

ROLE_EXTENSION = "x-edgeplane-role"


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"
    SERVICE = "service"


RANK: dict[str, int] = {Role.VIEWER: 1, Role.OPERATOR: 2, Role.ADMIN: 3, Role.SERVICE: 3}
USER_ROLES = (Role.VIEWER, Role.OPERATOR, Role.ADMIN)
"""The roles a user can be given (`service` is for service tokens only)."""
_READ = frozenset({"GET", "HEAD", "OPTIONS"})


def requires(role: str) -> dict[str, Any]:
    """`openapi_extra` for a route that needs `role` rather than the method's default."""
    return {ROLE_EXTENSION: str(role)}


def _pattern(template: str) -> re.Pattern[str]:
    out, pos = [], 0
    for m in re.finditer(r"\{([^}:]+)(:path)?\}", template):
        out.append(re.escape(template[pos : m.start()]))
        out.append(".+" if m.group(2) else "[^/]+")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile("".join(out) + "$")


class RoutePolicy:
    """The role each request needs. Filled from the app's OpenAPI document at the first request (when every
    router is included); matching is against the few routes that declare a role, so the common case is a
    method lookup."""

    def __init__(self) -> None:
        self._declared: list[tuple[str, re.Pattern[str], str]] = []
        self.loaded = False

    def declare(self, method: str, path_template: str, role: str) -> None:
        self._declared.append((method.upper(), _pattern(path_template), role))

    def load_openapi(self, document: dict[str, Any]) -> None:
        """Read the declarations from the app's OpenAPI document: what it documents is what is enforced."""
        for path, operations in document.get("paths", {}).items():
            for method, operation in operations.items():
                role = operation.get(ROLE_EXTENSION) if isinstance(operation, dict) else None
                if role:
                    self.declare(method, path, role)
        self.loaded = True

    def needed(self, method: str, path: str) -> str:
        for m, pattern, role in self._declared:
            if m == method and pattern.match(path):
                return role
        return Role.VIEWER if method in _READ else Role.ADMIN

    def allows(self, role: str, method: str, path: str) -> bool:
        return RANK.get(role, 0) >= RANK[self.needed(method, path)]
