"""Errors another service answered with (core-metadata, a device service), passed through as they came."""

from __future__ import annotations

from edgeplane_common.errors import HTTP_STATUS, EdgeError, ErrorKind

# The first kind listed for a status wins (503: ServiceUnavailable, not Timeout).
_KIND_BY_STATUS: dict[int, ErrorKind] = {}
for _kind, _status in HTTP_STATUS.items():
    _KIND_BY_STATUS.setdefault(_status, _kind)


class RemoteError(EdgeError):
    """An error with exactly the status and message another service answered with."""

    def __init__(self, message: str, status: int) -> None:
        if not 400 <= status <= 599:
            status = 500
        super().__init__(message, kind=_KIND_BY_STATUS.get(status, ErrorKind.SERVER_ERROR))
        self._status = status

    @property
    def status_code(self) -> int:
        return self._status
