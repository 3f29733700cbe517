"""Resource attributes and the device's `opcua` protocol properties, validated without I/O.

Attributes follow EdgeX's device-opc-ua: `nodeId` for a variable, or `objectId` + `methodId` (+ `inputMap`, the
method's inputs as text) for a method called by a read. edgeplane adds `deadband` (absolute, for
subscriptions). Protocol properties: `Endpoint` as EdgeX, and per device the security and login settings
(EdgeX sets them per service). Passwords are never a protocol property: core-metadata returns properties to
anyone who reads the device, so they come from a secret (`SecretName`) or an environment variable
(`PasswordEnv`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlparse

from device_opcua.nodeids import NodeIdError, NodeIdText, parse_node_id
from edgeplane_common.durations import parse_duration
from edgeplane_common.errors import ContractInvalid
from edgeplane_common.models import Device, DeviceProfile

PROTOCOL = "opcua"


class SecurityPolicy(StrEnum):
    NONE = "None"
    BASIC256SHA256 = "Basic256Sha256"
    AES128_SHA256_RSAOAEP = "Aes128Sha256RsaOaep"
    AES256_SHA256_RSAPSS = "Aes256Sha256RsaPss"


class SecurityMode(StrEnum):
    NONE = "None"
    SIGN = "Sign"
    SIGN_AND_ENCRYPT = "SignAndEncrypt"


@dataclass(frozen=True, slots=True)
class ResourceAttributes:
    node: NodeIdText | None = None
    object_id: NodeIdText | None = None
    method_id: NodeIdText | None = None
    inputs: tuple[str, ...] = ()
    deadband: float | None = None

    @property
    def is_method(self) -> bool:
        return self.method_id is not None


def _get(attrs: dict[str, Any], name: str) -> Any:
    """EdgeX spells attributes in camelCase; accept any casing as for every other key."""
    if name in attrs:
        return attrs[name]
    lower = name.lower()
    return next((v for k, v in attrs.items() if k.lower() == lower), None)


def _node(attrs: dict[str, Any], name: str, resource: str) -> NodeIdText | None:
    value = _get(attrs, name)
    if value is None:
        return None
    try:
        return parse_node_id(value)
    except NodeIdError as err:
        raise ContractInvalid(f"resource {resource!r}: attribute {name} {err}") from None


def parse_attributes(attrs: dict[str, Any] | None, *, resource: str) -> ResourceAttributes:
    """A resource's attributes; ContractInvalid naming the resource and the problem."""
    attrs = attrs or {}
    node = _node(attrs, "nodeId", resource)
    method = _node(attrs, "methodId", resource)
    obj = _node(attrs, "objectId", resource)
    if method is not None and obj is None:
        raise ContractInvalid(f"resource {resource!r}: a method call needs objectId (the object owning methodId)")
    if node is None and method is None:
        raise ContractInvalid(f"resource {resource!r} needs attribute nodeId (or objectId and methodId)")
    raw_inputs = _get(attrs, "inputMap")
    if raw_inputs is None:
        inputs: tuple[str, ...] = ()
    elif isinstance(raw_inputs, list):
        inputs = tuple(str(v) for v in raw_inputs)
    else:
        raise ContractInvalid(f"resource {resource!r}: inputMap must be a list of the method's input values")
    deadband: float | None = None
    raw_deadband = _get(attrs, "deadband")
    if raw_deadband is not None:
        try:
            deadband = float(raw_deadband)
        except (TypeError, ValueError):
            deadband = -1.0
        if not math.isfinite(deadband) or deadband < 0:
            raise ContractInvalid(f"resource {resource!r}: deadband must be a number >= 0, got {raw_deadband!r}")
    return ResourceAttributes(node if method is None else None, obj, method, inputs, deadband)


def check_profile(profile: DeviceProfile) -> None:
    """Every resource of the profile has valid OPC UA attributes (ContractInvalid names the first that has not)."""
    for res in profile.device_resources:
        try:
            parse_attributes(res.attributes, resource=res.name)
        except ContractInvalid as err:
            raise ContractInvalid(f"device profile {profile.name!r}: {err.message}") from None


@dataclass(frozen=True, slots=True)
class OpcuaConnection:
    """What identifies one session: devices with equal connections share it."""

    endpoint: str
    policy: SecurityPolicy = SecurityPolicy.NONE
    mode: SecurityMode = SecurityMode.NONE
    username: str | None = None
    secret_name: str | None = None
    password_env: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    trusted_certs: str | None = None
    timeout: float = 5.0

    def describe(self) -> str:
        """For logs and errors: never a password, only where it comes from."""
        sec = "" if self.policy is SecurityPolicy.NONE else f" ({self.policy.value}, {self.mode.value})"
        user = f" as {self.username}" if self.username else ""
        return f"{self.endpoint}{sec}{user}"


_KEYS = {
    "endpoint": "endpoint",
    "securitypolicy": "policy",
    "securitymode": "mode",
    "username": "username",
    "secretname": "secret_name",
    "passwordenv": "password_env",
    "certfile": "cert_file",
    "keyfile": "key_file",
    "trustedcerts": "trusted_certs",
    "timeout": "timeout",
}


def _enum(enum: type[StrEnum], value: Any, name: str, device: str) -> Any:
    text = str(value).strip()
    for member in enum:
        if member.value.lower() == text.lower():
            return member
    allowed = ", ".join(m.value for m in enum)
    raise ContractInvalid(f"device {device!r}: {name} {value!r} is not one of {allowed}")


def parse_protocols(protocols: dict[str, dict[str, Any]], *, device: str) -> OpcuaConnection:
    """The device's `opcua` protocol properties; ContractInvalid naming the property and the problem."""
    props = next((p for name, p in protocols.items() if name.lower() == PROTOCOL), None)
    if props is None:
        raise ContractInvalid(f"device {device!r} has no {PROTOCOL!r} protocol (with Endpoint: opc.tcp://host:port)")
    values: dict[str, Any] = {}
    for key, value in props.items():
        low = key.lower()
        if low == "password":
            raise ContractInvalid(
                f"device {device!r}: a Password protocol property would be readable by every client of "
                "core-metadata; give SecretName (a secret with username and password) or PasswordEnv instead"
            )
        field = _KEYS.get(low)
        if field is not None and value not in (None, ""):
            values[field] = value
    endpoint = str(values.get("endpoint", "")).strip()
    url = urlparse(endpoint)
    if url.scheme != "opc.tcp" or not url.hostname:
        raise ContractInvalid(f"device {device!r}: Endpoint {endpoint!r} is not an opc.tcp://host:port URL")
    try:
        _ = url.port
    except ValueError:
        raise ContractInvalid(f"device {device!r}: Endpoint {endpoint!r} has a bad port") from None
    policy = _enum(SecurityPolicy, values.get("policy", "None"), "SecurityPolicy", device)
    mode = _enum(
        SecurityMode,
        values.get("mode", "None" if policy is SecurityPolicy.NONE else "SignAndEncrypt"),
        "SecurityMode",
        device,
    )
    if (policy is SecurityPolicy.NONE) != (mode is SecurityMode.NONE):
        raise ContractInvalid(
            f"device {device!r}: SecurityPolicy {policy.value} and SecurityMode {mode.value} do not go together "
            "(None goes only with None)"
        )
    if policy is not SecurityPolicy.NONE and not (values.get("cert_file") and values.get("key_file")):
        raise ContractInvalid(f"device {device!r}: SecurityPolicy {policy.value} needs CertFile and KeyFile")
    timeout = 5.0
    if "timeout" in values:
        raw = values["timeout"]
        try:
            timeout = float(raw)
        except (TypeError, ValueError):
            try:
                timeout = parse_duration(str(raw))
            except ValueError:
                raise ContractInvalid(f"device {device!r}: Timeout {raw!r} is not seconds or a duration") from None
        if timeout <= 0:
            raise ContractInvalid(f"device {device!r}: Timeout must be positive")
    return OpcuaConnection(
        endpoint=endpoint,
        policy=policy,
        mode=mode,
        username=_opt(values.get("username")),
        secret_name=_opt(values.get("secret_name")),
        password_env=_opt(values.get("password_env")),
        cert_file=_opt(values.get("cert_file")),
        key_file=_opt(values.get("key_file")),
        trusted_certs=_opt(values.get("trusted_certs")),
        timeout=timeout,
    )


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


def check_device(device: Device, profile: DeviceProfile | None) -> OpcuaConnection:
    conn = parse_protocols(device.protocols, device=device.name)
    if profile is not None:
        check_profile(profile)
    return conn
