"""asyncua's exceptions -> EdgeX errors, in one place; the message names the cause and never a password."""

from __future__ import annotations

import asyncio

from asyncua import ua

from edgeplane_common.errors import CommunicationError, ContractInvalid, EdgeError, ErrorKind, NotFound

_LOGIN = {"BadUserAccessDenied", "BadIdentityTokenRejected", "BadIdentityTokenInvalid", "BadUserSignatureInvalid"}
_CERT = {
    "BadCertificateUntrusted",
    "BadCertificateInvalid",
    "BadSecurityChecksFailed",
    "BadCertificateUriInvalid",
    "BadCertificateTimeInvalid",
    "BadCertificateHostNameInvalid",
    "BadSecurityPolicyRejected",
}


class DeviceAnswered(CommunicationError):
    """The server answered with a Bad status for one node or method: reachable, so the device stays UP."""

    device_alive = True


def status_name(code: int) -> str:
    try:
        return str(ua.StatusCode(code).name)
    except Exception:
        return f"0x{code:08X}"


def cause(err: BaseException, timeout: float | None = None) -> str:
    """A short, user-facing reason for a failed connect or request."""
    if isinstance(err, ua.UaStatusCodeError):
        name = status_name(err.code)
        if name in _LOGIN:
            return f"login refused ({name}): check the username and password"
        if name in _CERT:
            return f"certificate refused ({name}): check CertFile/KeyFile and that each side trusts the other"
        return f"the server answered {name}"
    if isinstance(err, TimeoutError | asyncio.TimeoutError):
        return f"no answer within {timeout:g} s" if timeout else "no answer in time"
    if isinstance(err, ConnectionRefusedError):
        return "connection refused (is the server running and the port right?)"
    if isinstance(err, OSError):
        return f"cannot connect: {err.strerror or err}"
    if isinstance(err, ua.UaError):
        return f"OPC UA error: {err}"
    if isinstance(err, EdgeError):
        return err.message
    return f"{type(err).__name__}: {err}"


def node_status(code: ua.StatusCode, what: str) -> EdgeError:
    """The error for a Bad status the server gave for one node (`what` names resource and node)."""
    name = code.name
    if name == "BadTypeMismatch" or name == "BadOutOfRange" or name == "BadInvalidArgument":
        return ContractInvalid(f"{what}: the server refused the value ({name})")
    if name in ("BadNodeIdUnknown", "BadNodeIdInvalid", "BadMethodInvalid"):
        err = DeviceAnswered(f"{what}: no such node on the server ({name})")
        return err
    if name in ("BadNotReadable", "BadNotWritable", "BadUserAccessDenied", "BadNotExecutable"):
        return DeviceAnswered(f"{what}: not allowed by the server ({name})")
    return DeviceAnswered(f"{what}: the server answered {name}")


def request_failed(err: BaseException, what: str, timeout: float) -> EdgeError:
    """A request that failed as a whole (transport, timeout, service fault)."""
    if isinstance(err, EdgeError):
        return err
    if isinstance(err, TimeoutError | asyncio.TimeoutError):
        return EdgeError(f"{what}: {cause(err, timeout)}", kind=ErrorKind.TIMEOUT)
    if isinstance(err, ua.UaStatusCodeError):
        return node_status(ua.StatusCode(err.code), what)
    return CommunicationError(f"{what}: {cause(err, timeout)}")


__all__ = ["DeviceAnswered", "NotFound", "cause", "node_status", "request_failed", "status_name"]
