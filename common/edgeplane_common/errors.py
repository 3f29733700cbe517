"""One error hierarchy for every service; each kind maps to the HTTP status EdgeX answers with."""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    CONTRACT_INVALID = "ContractInvalid"
    UNAUTHORIZED = "Unauthorized"
    FORBIDDEN = "Forbidden"
    RATE_LIMITED = "RateLimited"
    ENTITY_NOT_FOUND = "EntityNotFound"
    NOT_ALLOWED = "NotAllowed"
    DUPLICATE_NAME = "DuplicateName"
    STATUS_CONFLICT = "StatusConflict"
    LIMIT_EXCEEDED = "LimitExceeded"
    UNSUPPORTED_MEDIA_TYPE = "UnsupportedMediaType"
    RANGE_NOT_SATISFIABLE = "RangeNotSatisfiable"
    SERVICE_LOCKED = "ServiceLocked"
    COMMUNICATION_ERROR = "CommunicationError"
    SERVICE_UNAVAILABLE = "ServiceUnavailable"
    TIMEOUT = "Timeout"
    SERVER_ERROR = "ServerError"


HTTP_STATUS: dict[ErrorKind, int] = {
    ErrorKind.CONTRACT_INVALID: 400,
    ErrorKind.UNAUTHORIZED: 401,
    ErrorKind.FORBIDDEN: 403,
    ErrorKind.RATE_LIMITED: 429,
    ErrorKind.ENTITY_NOT_FOUND: 404,
    ErrorKind.NOT_ALLOWED: 405,
    ErrorKind.DUPLICATE_NAME: 409,
    ErrorKind.STATUS_CONFLICT: 409,
    ErrorKind.LIMIT_EXCEEDED: 413,
    ErrorKind.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorKind.RANGE_NOT_SATISFIABLE: 416,
    ErrorKind.SERVICE_LOCKED: 423,
    ErrorKind.COMMUNICATION_ERROR: 502,
    ErrorKind.SERVICE_UNAVAILABLE: 503,
    ErrorKind.TIMEOUT: 503,
    ErrorKind.SERVER_ERROR: 500,
}


class EdgeError(Exception):
    """An error with a kind (→ HTTP status) and a message a user can act on."""

    kind: ErrorKind = ErrorKind.SERVER_ERROR

    def __init__(self, message: str, *, kind: ErrorKind | None = None) -> None:
        super().__init__(message)
        self.message = message
        if kind is not None:
            self.kind = kind

    @property
    def status_code(self) -> int:
        return HTTP_STATUS[self.kind]

    def __str__(self) -> str:
        return self.message


class ContractInvalid(EdgeError):
    kind = ErrorKind.CONTRACT_INVALID


class Unauthorized(EdgeError):
    kind = ErrorKind.UNAUTHORIZED


class Forbidden(EdgeError):
    """Authenticated, but the role does not allow this request."""

    kind = ErrorKind.FORBIDDEN


class RateLimited(EdgeError):
    kind = ErrorKind.RATE_LIMITED


class NotFound(EdgeError):
    kind = ErrorKind.ENTITY_NOT_FOUND


class NotAllowed(EdgeError):
    kind = ErrorKind.NOT_ALLOWED


class DuplicateName(EdgeError):
    kind = ErrorKind.DUPLICATE_NAME


class StatusConflict(EdgeError):
    kind = ErrorKind.STATUS_CONFLICT


class LimitExceeded(EdgeError):
    kind = ErrorKind.LIMIT_EXCEEDED


class UnsupportedMediaType(EdgeError):
    kind = ErrorKind.UNSUPPORTED_MEDIA_TYPE


class RangeNotSatisfiable(EdgeError):
    kind = ErrorKind.RANGE_NOT_SATISFIABLE


class Locked(EdgeError):
    kind = ErrorKind.SERVICE_LOCKED


class CommunicationError(EdgeError):
    kind = ErrorKind.COMMUNICATION_ERROR


class ServiceUnavailable(EdgeError):
    kind = ErrorKind.SERVICE_UNAVAILABLE


class ServerError(EdgeError):
    kind = ErrorKind.SERVER_ERROR


# The first kind listed for a status wins (503: ServiceUnavailable, not Timeout).
_KIND_BY_STATUS: dict[int, ErrorKind] = {}
for _kind, _status in HTTP_STATUS.items():
    _KIND_BY_STATUS.setdefault(_status, _kind)


class RemoteError(EdgeError):
    """An error with exactly the status and message another service answered with (core-metadata, a device
    service), passed through as it came."""

    def __init__(self, message: str, status: int) -> None:
        if not 400 <= status <= 599:
            status = 500
        super().__init__(message, kind=_KIND_BY_STATUS.get(status, ErrorKind.SERVER_ERROR))
        self._status = status

    @property
    def status_code(self) -> int:
        return self._status
