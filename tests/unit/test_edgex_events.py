"""The kernel's event validation (used by core-data): what EdgeX's DTO validation accepts and refuses, and the stored
shape."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import orjson
import pytest

from edgeplane_common.bus import MessageEnvelope
from edgeplane_common.edgex.events import (
    check_simple_value,
    decode_event_message,
    normalize_event,
    unwrap_request,
    validate_event,
)
from edgeplane_common.errors import ContractInvalid
from edgeplane_common.models import Event
from tests.support.core_data import event, reading


def test_a_valid_event_is_stored_in_edgex_shape() -> None:
    ev = event("dev-1", origin=1_000, tags={"site": "A"})
    ev["readings"][0]["units"] = "degC"
    record = validate_event(ev)
    doc = record.doc
    assert list(doc) == ["apiVersion", "id", "deviceName", "profileName", "sourceName", "origin", "readings", "tags"]
    assert doc["readings"][0]["units"] == "degC"
    assert doc["readings"][1]["valueType"] == "Int16"
    assert all(uuid.UUID(r["id"]) for r in doc["readings"])
    assert (record.id, record.device, record.source, record.origin) == (ev["id"], "dev-1", "Climate", 1_000)
    assert [(r.resource, r.value_type, r.value) for r in record.readings] == [
        ("Temperature", "Float64", "21.5"),
        ("Humidity", "Int16", "40"),
    ]
    # the pydantic contract model agrees with the stored document
    assert Event.model_validate(doc).to_json_dict() == doc


def test_defaults_key_casing_and_deterministic_reading_ids() -> None:
    ev = {
        "ID": str(uuid.uuid4()),
        "devicename": "d",
        "PROFILENAME": "p",
        "sourceName": "s",
        "origin": 5,
        "readings": [{"resourcename": "r", "VALUETYPE": "float32", "Value": "1.5", "unknown": 1}],
        "extra": "dropped",
    }
    doc = normalize_event(ev)
    r = doc["readings"][0]
    # deviceName/profileName/origin come from the event, valueType is canonical, unknown keys are dropped
    assert r == {
        "id": r["id"],
        "origin": 5,
        "deviceName": "d",
        "resourceName": "r",
        "profileName": "p",
        "valueType": "Float32",
        "value": "1.5",
    }
    assert "extra" not in doc
    # a reading without an id gets the same one on every delivery
    assert normalize_event(ev)["readings"][0]["id"] == r["id"]


def test_binary_object_null_and_scalar_values() -> None:
    readings = [
        reading("img", None, value_type="Binary", binaryValue="AAEC", mediaType="image/png"),
        reading("obj", None, value_type="Object", objectValue={"a": [1, 2]}),
        reading("none", None, value_type="Int32"),
        {**reading("n", None, value_type="Int32"), "value": 42},
        {**reading("b", None, value_type="Bool"), "value": True},
        {**reading("f", None, value_type="Float64"), "value": 1.25},
        reading("arr", "[1, 2, -3]", value_type="Int8Array"),
        reading("strs", "[a, b]", value_type="StringArray"),
    ]
    doc = normalize_event(event(readings=readings))
    got = {r["resourceName"]: r for r in doc["readings"]}
    assert (got["img"]["binaryValue"], got["img"]["mediaType"]) == ("AAEC", "image/png")
    assert got["obj"]["objectValue"] == {"a": [1, 2]}
    assert "value" not in got["none"]
    assert (got["n"]["value"], got["b"]["value"], got["f"]["value"]) == ("42", "true", "1.25")
    assert got["arr"]["value"] == "[1, 2, -3]"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e.pop("id"), "event.id is required"),
        (lambda e: e.update(id="not-a-uuid"), "event.id must be a UUID"),
        (lambda e: e.update(deviceName=" "), "event.deviceName must be a non-empty string"),
        (lambda e: e.pop("profileName"), "event.profileName is required"),
        (lambda e: e.update(sourceName=7), "event.sourceName must be a non-empty string"),
        (lambda e: e.pop("origin"), "event.origin is required"),
        (lambda e: e.update(origin="now"), "event.origin must be an integer"),
        (lambda e: e.update(origin=2**64), "does not fit a 64-bit integer"),
        (lambda e: e.update(readings=[]), "event.readings must be a non-empty array"),
        (lambda e: e.update(readings={"a": 1}), "event.readings must be a non-empty array"),
        (lambda e: e.update(tags=["x"]), "event.tags must be an object"),
        (lambda e: e["readings"].append("x"), "event.readings[2] must be an object"),
        (lambda e: e["readings"][0].update(valueType="Float128"), "event.readings[0].valueType: unknown valueType"),
        (lambda e: e["readings"][0].pop("resourceName"), "event.readings[0].resourceName is required"),
        (lambda e: e["readings"][0].update(value="warm"), "does not match valueType Float64"),
        (lambda e: e["readings"][1].update(value="40000"), "out of the Int16 range"),
        (lambda e: e["readings"][1].update(value="4.5"), "is not an integer"),
        (lambda e: e["readings"][0].update(value=[1]), "event.readings[0].value must be a string"),
        (lambda e: e["readings"][0].update(id=5), "event.readings[0].id must be a string"),
        (lambda e: e["readings"][0].update(units=5), "event.readings[0].units must be a string"),
        (lambda e: e["readings"][0].update(origin=True), "event.readings[0].origin must be an integer"),
    ],
)
def test_invalid_events_say_what_is_wrong(change: Any, message: str) -> None:
    ev = event()
    change(ev)
    with pytest.raises(ContractInvalid, match=message.replace("[", r"\[").replace("]", r"\]")):
        validate_event(ev)


@pytest.mark.parametrize(("field", "blank"), [("deviceName", ""), ("profileName", None), ("origin", 0)])
def test_incomplete_readings_refused_unless_completed(field: str, blank: Any) -> None:
    # EdgeX's REST API refuses them (400); events from the stream are completed from the event
    ev = event("dev-1", origin=7)
    ev["readings"][0][field] = blank
    with pytest.raises(ContractInvalid, match=rf"event.readings\[0\].{field} is required"):
        validate_event(ev, complete_readings=False)
    completed = validate_event(ev).doc["readings"][0]
    assert (completed["deviceName"], completed["profileName"], completed["origin"]) == ("dev-1", "Thermostat", 7)


def test_binary_needs_a_media_type() -> None:
    with pytest.raises(ContractInvalid, match="mediaType is required"):
        validate_event(event(readings=[reading("img", None, value_type="Binary", binaryValue="AAEC")]))


@pytest.mark.parametrize(
    ("value_type", "text", "ok"),
    [
        ("Int8", "-128", True),
        ("Int8", "128", False),
        ("Uint8", "-1", False),
        ("Uint64", "18446744073709551615", True),
        ("Int64", "9223372036854775808", False),
        ("Int32", "1_000", False),
        ("Int32", " 1", False),
        ("Float32", "1.5e+01", True),
        ("Float32", "3.5e38", False),
        ("Float32", "NaN", True),
        ("Float64", "1e308", True),
        ("Float64", "1_0", False),
        ("Float64", " 1.0", False),
        ("Float64", "", False),
        ("Bool", "true", True),
        ("Bool", "T", True),
        ("Bool", "yes", False),
        ("String", "anything", True),
        ("Uint16Array", "[1, 65535]", True),
        ("Uint16Array", "[1, 65536]", False),
        ("BoolArray", "[true, false]", True),
        ("Float32Array", "1.0", False),
        ("Float64Array", "[]", True),
    ],
)
def test_simple_values_are_checked_as_edgex_does(value_type: str, text: str, ok: bool) -> None:
    assert (check_simple_value(value_type, text) is None) is ok


def test_add_event_request_unwrapping() -> None:
    ev = event()
    rid = str(uuid.uuid4())
    assert unwrap_request({"apiVersion": "v3", "requestId": rid, "event": ev}) == (ev, rid)
    assert unwrap_request({"Event": ev}) == (ev, None)
    with pytest.raises(ContractInvalid, match="has no event"):
        unwrap_request({"apiVersion": "v3"})
    with pytest.raises(ContractInvalid, match="requestId must be a UUID"):
        unwrap_request({"requestId": "r1", "event": ev})
    with pytest.raises(ContractInvalid, match="AddEventRequest JSON object"):
        unwrap_request([ev])


def test_an_event_is_decoded_straight_from_the_message_bytes() -> None:
    e = event()
    assert decode_event_message(MessageEnvelope(payload=e).encode()) == e
    # Go device services marshal a []byte payload as base64; keys of the envelope in any casing.
    encoded = base64.b64encode(orjson.dumps(e)).decode()
    assert decode_event_message(orjson.dumps({"PAYLOAD": encoded, "ContentType": "application/json"})) == e
    for bad, message in [
        (b"not json", "not an EdgeX message envelope"),
        (b"[1]", "not an EdgeX message envelope"),
        (orjson.dumps({"payload": 3}), "payload must be an event object"),
        (orjson.dumps({"payload": "{}", "contentType": "application/cbor"}), "CBOR"),
    ]:
        with pytest.raises(ContractInvalid, match=message):
            decode_event_message(bad)
