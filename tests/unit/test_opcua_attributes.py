"""device-opcua's pure parts: NodeId text, resource attributes, protocol properties, value conversion."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from asyncua import ua

from device_opcua.attributes import SecurityMode, SecurityPolicy, parse_attributes, parse_protocols
from device_opcua.convert import ValueMismatch, edgex_type, to_raw, to_variant
from device_opcua.nodeids import NodeIdError, parse_node_id
from edgeplane_common.errors import ContractInvalid
from edgeplane_common.models import ValueType


@pytest.mark.parametrize(
    ("text", "kind", "ident", "ns", "uri"),
    [
        ("i=85", "i", 85, 0, None),
        ("ns=2;i=5001", "i", 5001, 2, None),
        ("ns=3;s=Line 1.Temp", "s", "Line 1.Temp", 3, None),
        (
            "ns=1;g=09087e75-8e5e-499b-954f-f2a9603db28a",
            "g",
            uuid.UUID("09087e75-8e5e-499b-954f-f2a9603db28a"),
            1,
            None,
        ),
        ("ns=2;b=ZWRnZXBsYW5l", "b", b"edgeplane", 2, None),
        ("nsu=urn:edgeplane:sim;s=Line1.Temperature", "s", "Line1.Temperature", 0, "urn:edgeplane:sim"),
        ("nsu=http://x/y;i=7", "i", 7, 0, "http://x/y"),
    ],
)
def test_every_node_id_form_parses_and_prints_back(
    text: str, kind: str, ident: object, ns: int, uri: str | None
) -> None:
    parsed = parse_node_id(text)
    assert (parsed.kind, parsed.identifier, parsed.namespace_index, parsed.namespace_uri) == (kind, ident, ns, uri)
    assert parse_node_id(str(parsed)) == parsed


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("ns=2;q=1", r"i= \(numeric\)"),
        ("ns=x;i=1", "namespace index"),
        ("ns=70000;i=1", "namespace index"),
        ("ns=2;i=-4", "numeric identifier"),
        ("ns=2;i=4294967296", "numeric identifier"),
        ("ns=2;g=not-a-guid", "not a GUID"),
        ("ns=2;b=***", "not base64"),
        ("ns=2", "no identifier"),
        ("nsu=;s=x", "URI"),
        ("ns=2;s=", "empty"),
    ],
)
def test_malformed_node_ids_say_why(text: str, why: str) -> None:
    with pytest.raises(NodeIdError, match=why):
        parse_node_id(text)


def test_attributes_name_the_resource_and_the_problem() -> None:
    attrs = parse_attributes({"nodeId": "ns=2;s=A", "deadband": "0.5"}, resource="A")
    assert (str(attrs.node), attrs.deadband, attrs.is_method) == ("ns=2;s=A", 0.5, False)
    method = parse_attributes({"objectId": "ns=2;s=O", "methodId": "ns=2;s=O.M", "inputMap": [1, "x"]}, resource="M")
    assert (method.is_method, method.inputs, method.node) == (True, ("1", "x"), None)
    with pytest.raises(ContractInvalid, match=r"resource 'T'.*nodeId"):
        parse_attributes({"nodeId": "ns=2;z=1"}, resource="T")
    with pytest.raises(ContractInvalid, match="needs attribute nodeId"):
        parse_attributes({}, resource="T")
    with pytest.raises(ContractInvalid, match="objectId"):
        parse_attributes({"methodId": "ns=2;s=M"}, resource="T")
    with pytest.raises(ContractInvalid, match="deadband"):
        parse_attributes({"nodeId": "i=1", "deadband": -1}, resource="T")


def test_protocol_properties_per_device() -> None:
    conn = parse_protocols(
        {
            "opcua": {
                "Endpoint": "opc.tcp://plc:4840/x",
                "SecurityPolicy": "basic256sha256",
                "CertFile": "c.der",
                "KeyFile": "k.pem",
                "Username": "op",
                "SecretName": "line",
                "Timeout": "1500ms",
            }
        },
        device="d",
    )
    assert (conn.policy, conn.mode, conn.timeout) == (SecurityPolicy.BASIC256SHA256, SecurityMode.SIGN_AND_ENCRYPT, 1.5)
    assert "line" not in conn.describe()
    for props, why in [
        ({"Endpoint": "http://x"}, "opc.tcp"),
        ({"Endpoint": "opc.tcp://x:1", "Password": "p"}, "SecretName"),
        ({"Endpoint": "opc.tcp://x:1", "SecurityPolicy": "Basic256Sha256"}, "CertFile"),
        ({"Endpoint": "opc.tcp://x:1", "SecurityPolicy": "Basic128"}, "not one of"),
        ({"Endpoint": "opc.tcp://x:1", "SecurityMode": "Sign"}, "do not go together"),
        ({"Endpoint": "opc.tcp://x:1", "Timeout": "soon"}, "Timeout"),
    ]:
        with pytest.raises(ContractInvalid, match=why):
            parse_protocols({"opcua": props}, device="d")
    with pytest.raises(ContractInvalid, match="no 'opcua' protocol"):
        parse_protocols({"modbus-tcp": {}}, device="d")


def test_values_convert_by_edgex_type_and_node_type() -> None:
    when = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    assert to_raw(when, ValueType.STRING, "n") == "2026-03-01T12:00:00Z"
    assert to_raw(when, ValueType.INT64, "n") == 1772366400000000000
    assert to_raw(b"\x00\x01", ValueType.BINARY, "n") == b"\x00\x01"
    assert to_raw(ua.LocalizedText("Kessel"), ValueType.STRING, "n") == "Kessel"
    assert to_raw([1, 2], ValueType.INT32_ARRAY, "n") == [1, 2]
    assert to_raw(3, ValueType.FLOAT64, "n") == 3.0
    with pytest.raises(ValueMismatch, match="a str"):
        to_raw("x", ValueType.INT32, "n")
    with pytest.raises(ValueMismatch, match="array"):
        to_raw([1], ValueType.INT32, "n")

    assert to_variant(200, ua.VariantType.Byte, False, "n") == ua.Variant(200, ua.VariantType.Byte)
    assert to_variant([1.5], ua.VariantType.Float, True, "n").Value == [1.5]
    assert to_variant("2026-03-01T12:00:00Z", ua.VariantType.DateTime, False, "n").Value == when
    assert to_variant(7, ua.VariantType.String, False, "n").Value == "7"
    with pytest.raises(ContractInvalid, match=r"Byte: out of range 0\.\.255"):
        to_variant(300, ua.VariantType.Byte, False, "n")
    with pytest.raises(ContractInvalid, match="true or false"):
        to_variant(1, ua.VariantType.Boolean, False, "n")
    with pytest.raises(ContractInvalid, match="array"):
        to_variant(1, ua.VariantType.Int32, True, "n")
    assert edgex_type(ua.VariantType.UInt64, False) is ValueType.UINT64
    assert edgex_type(ua.VariantType.Float, True) is ValueType.FLOAT32_ARRAY
    assert edgex_type(ua.VariantType.ExtensionObject, False) is ValueType.OBJECT
