"""The secrets a service was given over `POST /api/v3/secret`, kept in process memory only.

EdgeX services store such secrets (credentials of a device, a cloud endpoint...) in their secret store and
read them by name. Ours never reach Redis, logs or `repr`; it is bounded, so a client cannot grow a
service's memory without limit: past the caps a write is refused with 413 and nothing is changed.
"""

from __future__ import annotations

from collections.abc import Mapping

from edgeplane_common.errors import LimitExceeded, NotFound

MAX_SECRETS = 256
"""Distinct secret names kept at once."""
MAX_SECRET_BYTES = 64 * 1024
"""UTF-8 size of one secret's keys and values together."""


class SecretStore:
    def __init__(self, *, max_secrets: int = MAX_SECRETS, max_secret_bytes: int = MAX_SECRET_BYTES) -> None:
        self.max_secrets = max_secrets
        self.max_secret_bytes = max_secret_bytes
        self._secrets: dict[str, dict[str, str]] = {}

    def put(self, name: str, data: Mapping[str, str]) -> None:
        """Store (or replace) the secret `name`; LimitExceeded when it is too large or one too many."""
        size = sum(len(k.encode()) + len(v.encode()) for k, v in data.items())
        if size > self.max_secret_bytes:
            raise LimitExceeded(
                f"secret {name!r} is {size} bytes; the maximum is {self.max_secret_bytes} bytes (keys and values)"
            )
        if name not in self._secrets and len(self._secrets) >= self.max_secrets:
            raise LimitExceeded(
                f"this service already holds the maximum of {self.max_secrets} secrets; "
                f"replace one of them instead of adding {name!r}"
            )
        self._secrets[name] = dict(data)

    def get(self, name: str) -> dict[str, str]:
        """A copy of the secret's key/values; NotFound if there is none by that name."""
        secret = self._secrets.get(name)
        if secret is None:
            raise NotFound(f"no secret named {name!r}")
        return dict(secret)

    def names(self) -> list[str]:
        return sorted(self._secrets)

    def __len__(self) -> int:
        return len(self._secrets)

    def __repr__(self) -> str:
        # Names only: values must never end up in a log line or a traceback.
        return f"SecretStore(names={self.names()!r})"


__all__ = ["MAX_SECRETS", "MAX_SECRET_BYTES", "SecretStore"]
