"""The OPC UA simulator's YAML: namespaces, objects with variables (any built-in type, arrays), value
behaviours as the Modbus simulator's (constant, sine, ramp, random, counter), methods, security and users.

    name: edgeplane OPC UA simulator
    path: /edgeplane/sim                    # endpoint path: opc.tcp://<host>:<port><path>
    tick_interval: 1.0                      # seconds between behaviour updates
    namespaces: [urn:edgeplane:sim]         # registered in order: the first is ns=2 (ns=1 is the server's)
    security:                               # optional; absent: policy None only
      policies: [None, Basic256Sha256_SignAndEncrypt]
      certificate: server-cert.der          # relative to the file; generated (self-signed) when missing
      private_key: server-key.pem
    users: [{username: operator, password: secret}]   # optional; with users, anonymous: false by default
    objects:
      - name: Line1                         # node id default: ns=<first namespace>;s=Line1
        variables:
          - {name: Temperature, type: Double, sine: {amplitude: 5, period_s: 60, offset: 20}}
          - {name: Setpoint, type: Float, value: 21.5, writable: true}
          - {name: Samples, type: Int32, array: true, value: [1, 2, 3]}
        methods:
          - {name: Add, action: sum, inputs: [{name: a, type: Double}, {name: b, type: Double}],
             outputs: [{name: sum, type: Double}]}
"""

from __future__ import annotations

import datetime as dt
import math
import random
import uuid
from pathlib import Path
from typing import Any, Literal

import yaml
from asyncua import ua
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from device_opcua.convert import INT_RANGES
from device_opcua.nodeids import NodeIdError, parse_node_id

TYPES = {
    vt.name: vt
    for vt in (
        ua.VariantType.Boolean,
        ua.VariantType.SByte,
        ua.VariantType.Byte,
        ua.VariantType.Int16,
        ua.VariantType.UInt16,
        ua.VariantType.Int32,
        ua.VariantType.UInt32,
        ua.VariantType.Int64,
        ua.VariantType.UInt64,
        ua.VariantType.Float,
        ua.VariantType.Double,
        ua.VariantType.String,
        ua.VariantType.DateTime,
        ua.VariantType.Guid,
        ua.VariantType.ByteString,
        ua.VariantType.LocalizedText,
        ua.VariantType.QualifiedName,
        ua.VariantType.NodeId,
        ua.VariantType.XmlElement,
    )
}
POLICIES = {p.name: p for p in ua.SecurityPolicyType} | {"None": ua.SecurityPolicyType.NoSecurity}


class SimConfigError(ValueError):
    """The simulator file is wrong; the message says where."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Sine(_Model):
    amplitude: float = 1.0
    period_s: float = Field(60.0, gt=0)
    offset: float = 0.0


class Ramp(_Model):
    min: float = 0.0
    max: float = 100.0
    step: float = 1.0


class RandomValue(_Model):
    min: float = 0.0
    max: float = 1.0
    seed: int | None = None


class Counter(_Model):
    start: int = 0
    step: int = 1


class Variable(_Model):
    name: str
    node_id: str | None = Field(None, alias="nodeId")
    type: str = "Double"
    array: bool = False
    value: Any = None
    writable: bool = False
    constant: Any = None
    sine: Sine | None = None
    ramp: Ramp | None = None
    random: RandomValue | None = None
    counter: Counter | None = None

    @field_validator("type")
    @classmethod
    def _type(cls, v: str) -> str:
        if v not in TYPES:
            raise ValueError(f"type {v!r} is not one of {', '.join(TYPES)}")
        return v

    @model_validator(mode="after")
    def _one_behaviour(self) -> Variable:
        given = [b for b in ("constant", "sine", "ramp", "random", "counter") if getattr(self, b) is not None]
        if len(given) > 1:
            raise ValueError(f"variable {self.name!r} has more than one behaviour: {given}")
        if given and given[0] != "constant" and self.array:
            raise ValueError(f"variable {self.name!r}: arrays take a value or constant, not {given[0]}")
        if given and given[0] != "constant" and TYPES[self.type] not in _NUMERIC:
            raise ValueError(f"variable {self.name!r}: {given[0]} needs a numeric type, not {self.type}")
        return self

    @property
    def variant_type(self) -> ua.VariantType:
        return TYPES[self.type]

    @property
    def behaviour(self) -> str | None:
        return next((b for b in ("sine", "ramp", "random", "counter") if getattr(self, b) is not None), None)


class Argument(_Model):
    name: str
    type: str = "Double"
    array: bool = False

    @field_validator("type")
    @classmethod
    def _type(cls, v: str) -> str:
        if v not in TYPES:
            raise ValueError(f"type {v!r} is not one of {', '.join(TYPES)}")
        return v


class Method(_Model):
    name: str
    node_id: str | None = Field(None, alias="nodeId")
    action: Literal["sum", "product", "echo", "concat", "constant", "set"] = "echo"
    value: Any = None  # constant: what it returns
    target: str | None = None  # set: the variable (name in the same object) the first input is written to
    inputs: list[Argument] = Field(default_factory=list)
    outputs: list[Argument] = Field(default_factory=list)


class SimObject(_Model):
    name: str
    node_id: str | None = Field(None, alias="nodeId")
    variables: list[Variable] = Field(default_factory=list)
    methods: list[Method] = Field(default_factory=list)


class User(_Model):
    username: str
    password: str


class Security(_Model):
    policies: list[str] = Field(default_factory=lambda: ["None"])
    certificate: str | None = None
    private_key: str | None = None

    @field_validator("policies")
    @classmethod
    def _policies(cls, v: list[str]) -> list[str]:
        for p in v:
            if p not in POLICIES:
                raise ValueError(f"policy {p!r} is not one of {', '.join(POLICIES)}")
        return v


class SimConfig(_Model):
    name: str = "edgeplane OPC UA simulator"
    path: str = "/edgeplane/sim"
    tick_interval: float = Field(1.0, gt=0)
    namespaces: list[str] = Field(default_factory=lambda: ["urn:edgeplane:sim"])
    security: Security | None = None
    users: list[User] = Field(default_factory=list)
    anonymous: bool | None = None
    objects: list[SimObject] = Field(default_factory=list)
    base_dir: Path | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _node_ids(self) -> SimConfig:
        seen: set[str] = set()
        for obj in self.objects:
            for item, label in (
                [(obj, obj.name)]
                + [(v, f"{obj.name}.{v.name}") for v in obj.variables]
                + [(m, f"{obj.name}.{m.name}") for m in obj.methods]
            ):
                if item.node_id is None:
                    continue
                try:
                    parsed = parse_node_id(item.node_id)
                except NodeIdError as err:
                    raise ValueError(f"{label}: nodeId {err}") from None
                if parsed.namespace_uri is None and parsed.namespace_index > len(self.namespaces) + 1:
                    raise ValueError(
                        f"{label}: nodeId {item.node_id!r} uses ns={parsed.namespace_index}, but only ns=0.."
                        f"{len(self.namespaces) + 1} exist (declare more namespaces)"
                    )
                if str(parsed) in seen:
                    raise ValueError(f"{label}: nodeId {item.node_id!r} is used twice")
                seen.add(str(parsed))
        return self

    @property
    def allow_anonymous(self) -> bool:
        return self.anonymous if self.anonymous is not None else not self.users


_NUMERIC = {
    ua.VariantType.SByte,
    ua.VariantType.Byte,
    ua.VariantType.Int16,
    ua.VariantType.UInt16,
    ua.VariantType.Int32,
    ua.VariantType.UInt32,
    ua.VariantType.Int64,
    ua.VariantType.UInt64,
    ua.VariantType.Float,
    ua.VariantType.Double,
}
_INTS = _NUMERIC - {ua.VariantType.Float, ua.VariantType.Double}


def parse_config(data: Any, base_dir: Path | None = None) -> SimConfig:
    try:
        config = SimConfig.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())
        raise SimConfigError(f"simulator configuration: {problems}") from None
    config.base_dir = base_dir
    return config


def load_config(path: str | Path) -> SimConfig:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise SimConfigError(f"{path}: not YAML: {err}") from None
    try:
        return parse_config(data, path.parent)
    except SimConfigError as err:
        raise SimConfigError(f"{path}: {err}") from None


def default_value(vt: ua.VariantType) -> Any:
    if vt is ua.VariantType.Boolean:
        return False
    if vt in _INTS:
        return 0
    if vt in (ua.VariantType.Float, ua.VariantType.Double):
        return 0.0
    if vt is ua.VariantType.DateTime:
        return dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    if vt is ua.VariantType.ByteString:
        return b""
    if vt is ua.VariantType.Guid:
        return uuid.UUID(int=0)
    if vt is ua.VariantType.LocalizedText:
        return ua.LocalizedText("")
    if vt is ua.VariantType.QualifiedName:
        return ua.QualifiedName("")
    if vt is ua.VariantType.NodeId:
        return ua.NodeId(0, 0)
    return ""


def coerce(value: Any, vt: ua.VariantType) -> Any:
    """A YAML value as the Python value asyncua wants for `vt`."""
    if value is None:
        return default_value(vt)
    if vt is ua.VariantType.Boolean:
        return bool(value)
    if vt in _INTS:
        return int(value)
    if vt in (ua.VariantType.Float, ua.VariantType.Double):
        return float(value)
    if vt is ua.VariantType.DateTime:
        if isinstance(value, dt.datetime):
            return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    if vt is ua.VariantType.ByteString:
        return value.encode() if isinstance(value, str) else bytes(value)
    if vt is ua.VariantType.Guid:
        return uuid.UUID(str(value))
    if vt is ua.VariantType.LocalizedText:
        return ua.LocalizedText(str(value))
    if vt is ua.VariantType.QualifiedName:
        return ua.QualifiedName(str(value))
    if vt is ua.VariantType.NodeId:
        return ua.NodeId.from_string(str(value))
    return str(value)


class Behaviour:
    """The next value of one variable at each tick."""

    def __init__(self, var: Variable) -> None:
        self.var = var
        self.kind = var.behaviour
        self.tick = 0
        self.rng = random.Random(var.random.seed if var.random else None)
        self.counter = var.counter.start if var.counter else 0

    def next(self, elapsed: float) -> Any:
        var = self.var
        self.tick += 1
        value: float
        if var.sine is not None:
            s = var.sine
            value = s.offset + s.amplitude * math.sin(2 * math.pi * elapsed / s.period_s)
        elif var.ramp is not None:
            r = var.ramp
            span = r.max - r.min
            value = r.min + ((self.tick * r.step) % span if span else 0.0)
        elif var.random is not None:
            value = self.rng.uniform(var.random.min, var.random.max)
        elif var.counter is not None:
            self.counter += var.counter.step
            return self._int(self.counter)
        else:
            return None
        if var.variant_type in _INTS:
            return self._int(round(value))
        return value

    def _int(self, value: int) -> int:
        lo, hi = INT_RANGES[self.var.variant_type]
        if value > hi or value < lo:  # wrap like a register would
            value = lo + (value - lo) % (hi - lo + 1)
        return value
