"""App-service functions one by one: filters, deadband edge cases, transforms (line-protocol escaping), field
mapping, tags, compress and encrypt round trips."""

from __future__ import annotations

import base64
import gzip
import math
import re
import zlib
from typing import Any
from xml.etree import ElementTree

import orjson
import pytest

from app_services.application.data import Context
from app_services.application.errors import PipelineError
from app_services.application.functions import codec, filters, transforms
from app_services.application.functions.codec import MissingKey
from app_services.application.functions.deadband import deadband
from app_services.application.lineprotocol import LineProtocol, escape_key, escape_measurement, escape_string
from app_services.application.params import Params
from edgeplane_common.secrets import SecretStore
from tests.support.apps import ORIGIN, ctx_of, event, reading


def P(name: str, **params: Any) -> Params:
    return Params(name, params)


async def run(fn: Any, ev: Any) -> Any:
    return await fn(ctx_of(ev) if isinstance(ev, dict) else Context(), ev)


# -- filters ------------------------------------------------------------------------------------------------


async def test_filter_by_device_name_keeps_or_drops_matches() -> None:
    keep = filters.filter_by_device_name(P("FilterByDeviceName", DeviceNames="pump-1, pump-2"))
    drop = filters.filter_by_device_name(P("FilterByDeviceName", DeviceNames="pump-1", FilterOut="true"))
    assert await run(keep, event("pump-2")) is not None
    assert await run(keep, event("other")) is None
    assert await run(drop, event("pump-1")) is None
    assert await run(drop, event("other")) is not None


async def test_filter_by_profile_and_source_name() -> None:
    by_profile = filters.filter_by_profile_name(P("FilterByProfileName", ProfileNames=["Pump"]))
    by_source = filters.filter_by_source_name(P("FilterBySourceName", SourceNames="Temp", FilterOut=True))
    assert await run(by_profile, event(profile="Pump")) is not None
    assert await run(by_profile, event(profile="Meter")) is None
    assert await run(by_source, event(source="Temp")) is None
    assert await run(by_source, event(source="Flow")) is not None


async def test_filter_by_resource_name_trims_readings_and_drops_empty_events() -> None:
    ev = event(readings=[reading("Flow", "1"), reading("Temp", "2"), reading("Level", "3")])
    keep = filters.filter_by_resource_name(P("FilterByResourceName", ResourceNames="Flow,Level"))
    out = await run(keep, ev)
    assert [r["resourceName"] for r in out["readings"]] == ["Flow", "Level"]
    assert len(ev["readings"]) == 3  # the input is not changed
    drop_all = filters.filter_by_resource_name(P("FilterByResourceName", ResourceNames="Flow,Temp,Level", FilterOut=1))
    assert await run(drop_all, ev) is None


async def test_filter_by_value_range() -> None:
    ev = event(
        readings=[
            reading("Flow", "5"),
            reading("Flow", "15"),
            reading("Temp", "100"),
            reading("Name", "x", "String"),
            reading("Count", "10", "Int32"),
        ]
    )
    keep = filters.filter_by_value(P("FilterByValue", ResourceNames="Flow,Count", Min="0", Max="10"))
    out = await run(keep, ev)
    # Flow 15 out of range; Temp not listed; String not numeric; Count 10 on the bound (inclusive).
    assert [(r["resourceName"], r["value"]) for r in out["readings"]] == [
        ("Flow", "5"),
        ("Temp", "100"),
        ("Name", "x"),
        ("Count", "10"),
    ]
    out_of_range = filters.filter_by_value(P("FilterByValue", Min="0", Max="10", FilterOut="true"))
    assert [r["value"] for r in (await run(out_of_range, ev))["readings"]] == ["15", "100", "x"]
    with pytest.raises(PipelineError, match="above Max"):
        filters.filter_by_value(P("FilterByValue", Min="5", Max="1"))


# -- deadband -----------------------------------------------------------------------------------------------


def _series(values: list[float], step_ns: int = 1_000_000_000, resource: str = "Flow") -> list[dict[str, Any]]:
    return [event(readings=[reading(resource, repr(v), origin=ORIGIN + i * step_ns)]) for i, v in enumerate(values)]


async def _kept(fn: Any, events: list[dict[str, Any]]) -> list[float]:
    out = []
    for ev in events:
        res = await run(fn, ev)
        if res is not None:
            out.extend(float(r["value"]) for r in res["readings"])
    return out


async def test_deadband_absolute_threshold_edges() -> None:
    fn = deadband(P("Deadband", Threshold="1.0"))
    # first always sent; 0.99 away suppressed; exactly 1.0 away from the last SENT value is sent
    assert await _kept(fn, _series([10.0, 10.99, 11.0, 11.5, 10.0, 9.5])) == [10.0, 11.0, 10.0]


async def test_deadband_percent_of_span() -> None:
    fn = deadband(P("Deadband", Percent="1", SpanMin="0", SpanMax="200"))  # 2.0 units
    assert await _kept(fn, _series([50, 51.9, 52, 50.1, 50.0])) == [50, 52, 50.0]
    with pytest.raises(PipelineError, match="SpanMin"):
        deadband(P("Deadband", Percent="1"))
    with pytest.raises(PipelineError, match="not both"):
        deadband(P("Deadband", Threshold="1", Percent="1", SpanMin="0", SpanMax="1"))
    with pytest.raises(PipelineError, match="required"):
        deadband(P("Deadband"))


async def test_deadband_max_silence_sends_an_unchanged_value_by_reading_time() -> None:
    fn = deadband(P("Deadband", Threshold="5", MaxSilence="3s"))
    # one reading a second, never moving: sent at t=0, 3, 6
    assert await _kept(fn, _series([1.0] * 8)) == [1.0, 1.0, 1.0]


async def test_deadband_is_per_device_and_resource_and_passes_other_readings() -> None:
    fn = deadband(P("Deadband", Threshold="1", ResourceNames="Flow"))
    a1 = event("a", [reading("Flow", "1"), reading("Temp", "1")])
    b1 = event("b", [reading("Flow", "1")])
    a2 = event("a", [reading("Flow", "1.1"), reading("Temp", "1.1"), reading("Name", "x", "String")])
    assert len((await run(fn, a1))["readings"]) == 2
    assert await run(fn, b1) is not None  # another device: its own state
    out = await run(fn, a2)
    assert [r["resourceName"] for r in out["readings"]] == ["Temp", "Name"]  # Temp not listed, String not numeric


async def test_deadband_nan_and_infinities_always_pass() -> None:
    fn = deadband(P("Deadband", Threshold="1"))
    kept = await _kept(fn, _series([1.0, math.nan, 1.0, math.inf, math.inf, 1.2]))
    # NaN and the infinities have no distance to compare: every one is sent, and so is the value after them
    assert len(kept) == 6
    assert math.isnan(kept[1])
    assert kept[3:] == [math.inf, math.inf, 1.2]


async def test_deadband_error_is_within_the_threshold_on_a_noisy_signal() -> None:
    import random

    rnd = random.Random(7)
    values = [50 + 40 * math.sin(i / 200) + rnd.uniform(-0.3, 0.3) for i in range(5000)]
    threshold = 0.8
    fn = deadband(P("Deadband", Threshold=str(threshold)))
    held: float | None = None
    worst = 0.0
    sent = 0
    for ev in _series(values, step_ns=1000):
        out = await run(fn, ev)
        value = float(ev["readings"][0]["value"])
        if out is not None:
            held = value
            sent += 1
        assert held is not None
        worst = max(worst, abs(value - held))
    assert worst < threshold
    assert sent < len(values) * 0.2


# -- transforms ---------------------------------------------------------------------------------------------


async def test_transform_json() -> None:
    ev = event()
    ctx = ctx_of(ev)
    out = await transforms.transform(P("Transform", Type="json"))(ctx, ev)
    assert orjson.loads(out) == ev
    assert ctx.kind == "json"


def test_line_protocol_escaping() -> None:
    assert escape_measurement("a b,c=d") == "a\\ b\\,c=d"
    assert escape_key("k e,y=v") == "k\\ e\\,y\\=v"
    assert escape_string('say "hi" \\o/') == 'say \\"hi\\" \\\\o/'
    assert escape_key("line\nbreak") == "line\\nbreak"


async def test_transform_line_protocol_types_tags_and_timestamps() -> None:
    ev = event(
        "pump 1",
        [
            reading("Flow", "21.5"),
            reading("Count", "-3", "Int16"),
            reading("Total", "7", "Uint64"),
            reading("On", "true", "Bool"),
            reading("Label", 'a "b"', "String"),
            reading("Arr", "[1,2]", "Float32Array"),
            reading("Bad", "NaN", "Float64"),
            reading("Late", "1", "Float64", origin=ORIGIN + 5),
        ],
        profile="Pump,X",
        source="src=1",
        tags={"site": "plant a", "nested": {"x": 1}},
    )
    ctx = ctx_of(ev)
    lp = LineProtocol()
    out = await transforms.to_line_protocol(lp)(ctx, ev)
    lines = out.decode().split("\n")
    tags = "device=pump\\ 1,site=plant\\ a,source=src\\=1"
    assert lines == [
        f"Pump\\,X,{tags} Flow=21.5 {ORIGIN}",
        f"Pump\\,X,{tags} Count=-3i {ORIGIN}",
        f"Pump\\,X,{tags} Total=7u {ORIGIN}",
        f"Pump\\,X,{tags} On=true {ORIGIN}",
        f'Pump\\,X,{tags} Label="a \\"b\\"" {ORIGIN}',
        f"Pump\\,X,{tags} Late=1 {ORIGIN + 5}",
    ]
    assert lp.skipped == 2  # the array and NaN
    assert ctx.kind == "lp"


async def test_line_protocol_mapping_and_empty_tags() -> None:
    p = P(
        "Transform",
        Type="lineprotocol",
        Measurement="edgex",
        FieldKey="{deviceName}_{resourceName}",
        Tags="u={units},p={profileName}",
        EventTags="false",
    )
    fn = transforms.transform(p)
    ev = event(readings=[reading("Flow", "1", units="l/s"), reading("Temp", "2")], tags={"site": "x"})
    lines = (await run(fn, ev)).decode().split("\n")
    assert lines == [f"edgex,p=Pump,u=l/s pump-1_Flow=1 {ORIGIN}", f"edgex,p=Pump pump-1_Temp=2 {ORIGIN}"]
    with pytest.raises(PipelineError, match="unknown placeholder"):
        transforms.transform(P("Transform", Type="lineprotocol", Measurement="{nope}"))


async def test_line_protocol_event_without_encodable_readings_is_filtered() -> None:
    fn = transforms.transform(P("Transform", Type="lineprotocol"))
    assert await run(fn, event(readings=[reading("Arr", "[1]", "Int8Array")])) is None


async def test_add_tags_and_map_fields() -> None:
    ev = event(readings=[reading("Flow", "1"), reading("Temp", "2")], tags={"a": "1"})
    tagged = await run(transforms.add_tags(P("AddTags", tags="b:2, a:3")), ev)
    assert tagged["tags"] == {"a": "3", "b": "2"}
    mapped = await run(transforms.map_fields(P("MapFields", Fields="Flow:flow_lps")), ev)
    assert [r["resourceName"] for r in mapped["readings"]] == ["flow_lps", "Temp"]
    only = await run(transforms.map_fields(P("MapFields", Fields={"Temp": "t"}, DropUnmapped="true")), ev)
    assert [r["resourceName"] for r in only["readings"]] == ["t"]
    with pytest.raises(PipelineError, match="key:value"):
        transforms.add_tags(P("AddTags", tags="novalue"))


# -- compress and encrypt -----------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["gzip", "zlib"])
@pytest.mark.parametrize("encoding", ["base64", "raw"])
async def test_compress_round_trip(algorithm: str, encoding: str) -> None:
    data = b'{"x": "' + b"a" * 5000 + b'"}'
    ctx = Context()
    out = await codec.compress(P("Compress", Algorithm=algorithm, Encoding=encoding))(ctx, data)
    assert codec.decompress(algorithm, out, raw=encoding == "raw") == data
    packed = out if encoding == "raw" else base64.b64decode(out)
    assert len(packed) < len(data) / 10
    assert (gzip.decompress(packed) if algorithm == "gzip" else zlib.decompress(packed)) == data


async def test_encrypt_round_trip_with_a_key_from_the_secret_store() -> None:
    secrets = SecretStore()
    key = bytes(range(32))
    fn = codec.encrypt(P("Encrypt", Algorithm="aes256-gcm", SecretName="aes", SecretValueKey="key"), secrets)
    with pytest.raises(MissingKey, match="no secret"):
        await fn(Context(), b"x")
    await secrets.put("aes", {"key": key.hex()})
    a = await fn(Context(), b"hello")
    b = await fn(Context(), b"hello")
    assert a != b  # a fresh nonce per message
    assert codec.decrypt(key, a) == b"hello"
    await secrets.put("aes", {"key": base64.b64encode(key).decode()})
    assert codec.decrypt(key, await fn(Context(), b"again")) == b"again"
    await secrets.put("aes", {"key": "abcd"})
    with pytest.raises(MissingKey):
        await fn(Context(), b"x")


def test_encrypt_refuses_edgex_cbc_algorithm_and_requires_a_secret() -> None:
    with pytest.raises(PipelineError, match="aes256-gcm"):
        codec.encrypt(P("Encrypt", Algorithm="aes256", SecretName="x"), SecretStore())
    with pytest.raises(PipelineError, match="SecretName is required"):
        codec.encrypt(P("Encrypt"), SecretStore())


def test_params_unknown_names_and_bad_values() -> None:
    p = P("Batch", Mode="bycount", Treshold="3")
    assert p.choice("Mode", ("bycount",)) == "bycount"
    p.integer("BatchThreshold", 1)
    with pytest.raises(PipelineError, match="unknown parameter 'Treshold'; it takes Mode, BatchThreshold"):
        p.check_unknown()
    with pytest.raises(PipelineError, match="true or false"):
        P("X", FilterOut="maybe").flag("FilterOut", False)


# -- Transform Type xml (EdgeX's Event.ToXML: Go's encoding/xml on the Event DTO) ---------------------------

# EdgeX's own expectation for this event (edgex-taf, TAF/testData/app-service/trigger_response_content.py).
TAF_EVENT = {
    "apiVersion": "v3",
    "id": "92eb2e26-0f24-48aa-1111-de9dac3fb903",
    "deviceName": "Random-Integer-Device",
    "profileName": "Random-Integer-Device",
    "sourceName": "Int32",
    "origin": 1540855006469,
    "readings": [
        {
            "id": "82eb2e26-0f24-48aa-ae4c-de9dac3fb920",
            "origin": 1540855006469,
            "deviceName": "Random-Integer-Device",
            "resourceName": "Int32",
            "profileName": "Random-Integer-Device",
            "valueType": "Int32",
            "value": "123",
        }
    ],
}
TAF_XML = (
    "<Event><ApiVersion>v3</ApiVersion><Id>92eb2e26-0f24-48aa-1111-de9dac3fb903</Id>"
    "<DeviceName>Random-Integer-Device</DeviceName><ProfileName>Random-Integer-Device</ProfileName>"
    "<SourceName>Int32</SourceName><Origin>1540855006469</Origin><Readings><Id>82eb2e26-0f24-48aa-ae4c-de9dac3fb920</Id>"
    "<Origin>1540855006469</Origin><DeviceName>Random-Integer-Device</DeviceName><ResourceName>Int32</ResourceName>"
    "<ProfileName>Random-Integer-Device</ProfileName><ValueType>Int32</ValueType><Units></Units><BinaryValue></BinaryValue>"
    "<MediaType></MediaType><Value>123</Value></Readings></Event>"
)


async def test_transform_xml_is_edgex_event_xml() -> None:
    from edgeplane_common.edgex.events import validate_event

    ev = validate_event(TAF_EVENT).doc
    ctx = ctx_of(ev)
    out = await transforms.transform(P("Transform", Type="XML"))(ctx, ev)
    assert out.decode() == TAF_XML
    assert ctx.kind == "xml"
    root = ElementTree.fromstring(out)
    assert [child.tag for child in root] == [
        "ApiVersion", "Id", "DeviceName", "ProfileName", "SourceName", "Origin", "Readings",
    ]  # fmt: skip


async def test_transform_xml_tags_units_and_edgex_element_order() -> None:
    ev = event(
        readings=[reading("Flow", "2", "Int64", units="l/min", tags={"line": "A"})],
        tags={"GatewayID": "Houston-0001", "Latitude": "29.630771"},
    )
    out = (await transforms.to_xml(ctx_of(ev), ev)).decode()
    root = ElementTree.fromstring(out)
    assert [c.tag for c in root.find("Readings")] == [  # type: ignore[union-attr]
        "Id", "Origin", "DeviceName", "ResourceName", "ProfileName", "ValueType", "Units", "Tags",
        "BinaryValue", "MediaType", "Value",
    ]  # fmt: skip
    assert "<Units>l/min</Units><Tags><line>A</line></Tags>" in out
    assert out.endswith(
        "</Readings><Tags><GatewayID>Houston-0001</GatewayID><Latitude>29.630771</Latitude></Tags></Event>"
    )


async def test_transform_xml_escapes_special_characters_as_go_and_round_trips() -> None:
    nasty = "a<b>&c \"quoted\" 'single'\ttab\nline\rcr ünï €"
    ev = event(
        readings=[reading("Text", nasty + "\x01", "String")],
        tags={"note": nasty, "1st": "digit", "a b": "space", "ns:x": "colon", "_x0031_": "looks escaped"},
    )
    out = (await transforms.to_xml(ctx_of(ev), ev)).decode()
    # Go's encoding/xml escapes (and a character XML cannot hold becomes U+FFFD)
    assert (
        "<Value>a&lt;b&gt;&amp;c &#34;quoted&#34; &#39;single&#39;&#x9;tab&#xA;line&#xD;cr ünï €\ufffd</Value>" in out
    )
    root = ElementTree.fromstring(out.encode())  # a standard XML parser takes it
    assert root.findtext("Readings/Value") == nasty + "\ufffd"
    tags = root.find("Tags")
    assert tags is not None
    decoded = {re.sub(r"_x([0-9A-F]{4})_", lambda m: chr(int(m.group(1), 16)), c.tag): c.text for c in tags}
    assert decoded == {"note": nasty, "1st": "digit", "a b": "space", "ns:x": "colon", "_x0031_": "looks escaped"}
    assert "<_x0031_st>digit</_x0031_st>" in out


async def test_transform_xml_binary_object_and_null_readings() -> None:
    ev = event(
        readings=[
            reading("Img", None, "Binary", binaryValue=base64.b64encode(b"hi<&>").decode(), mediaType="text/plain"),
            reading("Obj", None, "Object", objectValue={"speed": 1e6, "ok": True, "list": [1, 2.5], "n": None}),
            reading("Nothing", None, "Float64"),
        ]
    )
    for r in ev["readings"]:
        if r["value"] is None:
            del r["value"]
    out = (await transforms.to_xml(ctx_of(ev), ev)).decode()
    root = ElementTree.fromstring(out)
    img, obj, nothing = root.findall("Readings")
    assert (img.findtext("BinaryValue"), img.findtext("MediaType")) == ("hi<&>", "text/plain")
    assert "<BinaryValue>hi&lt;&amp;&gt;</BinaryValue>" in out  # the bytes as text, as Go writes a []byte
    assert "<ObjectValue><speed>1e+06</speed><ok>true</ok><list>1</list><list>2.5</list><n></n></ObjectValue>" in out
    assert obj.find("ObjectValue/speed") is not None
    assert (nothing.findtext("Value"), nothing.find("ObjectValue")) == ("", None)


def test_go_float_formatting() -> None:
    from app_services.application.functions.event_xml import go_float

    cases = {1e6: "1e+06", 123456.0: "123456", 5.0: "5", 0.0001: "0.0001", 2.5e-05: "2.5e-05", -3.25: "-3.25"}
    cases |= {1234567.5: "1.2345675e+06", 0.1: "0.1", 1e21: "1e+21", 0.0: "0"}
    assert {v: go_float(v) for v in cases} == cases
    assert (go_float(math.nan), go_float(math.inf), go_float(-math.inf)) == ("NaN", "+Inf", "-Inf")


def test_transform_type_lists_xml() -> None:
    with pytest.raises(PipelineError, match="must be one of json, xml, lineprotocol"):
        transforms.transform(P("Transform", Type="yaml"))


# -- SetResponseData ------------------------------------------------------------------------------------------


async def test_set_response_data_keeps_the_data_and_its_content_type() -> None:
    ev = event()
    ctx = ctx_of(ev)
    assert await transforms.set_response_data(P("SetResponseData"))(ctx, ev) is ev
    assert (orjson.loads(ctx.response or b""), ctx.response_type) == (ev, "application/json")
    xml = await transforms.to_xml(ctx, ev)
    assert await transforms.set_response_data(P("SetResponseData"))(ctx, xml) is xml
    assert (ctx.response, ctx.response_type) == (xml, "application/xml")
    await transforms.set_response_data(P("SetResponseData", ResponseContentType="text/xml"))(ctx, xml)
    assert ctx.response_type == "text/xml"
