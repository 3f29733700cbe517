"""App-service pipeline files and the runtime: loading (file:line errors, unknown functions, EdgeX shape),
building (order rules, implied line protocol), batching boundaries, retries in order, permanent failures,
buffer bounds and policies. The buffer here is the in-memory one; the JetStream one is in integration."""

from __future__ import annotations

import asyncio
import base64
import logging
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest

from app_services.application.build import build_pipeline
from app_services.application.data import Context, Item
from app_services.application.errors import ExportFailed, PipelineError
from app_services.application.pipeline import (
    PipelineFileError,
    edgex_topic_to_subject,
    expand_env,
    load_file,
    parse_config,
)
from app_services.application.runtime import Counters, EventPipeline, Forwarder, RetryPolicy
from app_services.infrastructure.memory_outbox import MemoryOutbox
from app_services.main import export_factories
from edgeplane_common.secrets import SecretStore
from tests.support.apps import ORIGIN, RecordingExporter, ctx_of, event, reading, recording_factory
from tests.support.stack import wait_until

HEADER = """Trigger:
  Type: edgex-messagebus
  SubscribeTopics: events/device/#
Writable:
  Pipeline:
"""


def config(order: str, functions: str = "", saf: str = "") -> str:
    text = HEADER + f'    ExecutionOrder: "{order}"\n'
    if functions:
        text += "    Functions:\n" + functions
    if saf:
        text += "  StoreAndForward:\n" + saf
    return text


def build(text: str, exporter: RecordingExporter | None = None) -> Any:
    cfg = parse_config(text, "p.yaml")
    exporter = exporter or RecordingExporter()
    exports = {"RecordingExport": recording_factory(exporter)}
    try:
        return build_pipeline(cfg, exports, SecretStore())
    except PipelineError as err:
        raise cfg.error(err) from None


# -- files --------------------------------------------------------------------------------------------------


def test_edgex_configuration_shape_loads_with_any_key_casing(tmp_path: Path) -> None:
    text = """trigger:
  type: edgex-messagebus
  subscribeTopics: "events/device/device-modbus/#, events/device/+/Pump/#"
writable:
  pipeline:
    executionOrder: "FilterByDeviceName, Transform, RecordingExport"
    functions:
      FilterByDeviceName:
        parameters:
          DeviceNames: "pump-1"
          FilterOut: "false"
      Transform:
        Parameters: {type: json}
"""
    cfg = parse_config(text, "p.yaml")
    assert cfg.trigger.subjects == ["edgex.events.device.device-modbus.>", "edgex.events.device.*.Pump.>"]
    assert [f.name for f in cfg.functions] == ["FilterByDeviceName", "Transform", "RecordingExport"]
    assert cfg.store_and_forward.enabled is True  # on by default (EdgeX: off)
    pipeline = build(text)
    assert pipeline.kind == "json"


def test_topics_map_to_subjects_inside_the_events_stream() -> None:
    assert edgex_topic_to_subject("events/#") == "edgex.events.device.>"
    assert edgex_topic_to_subject("edgex/events/device/svc/pump 1.a/#") == "edgex.events.device.svc.pump%201%2Ea.>"
    with pytest.raises(PipelineError, match="outside the events stream"):
        edgex_topic_to_subject("system-events/#")
    with pytest.raises(PipelineError, match="may only come last"):
        edgex_topic_to_subject("events/#/x")


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("Trigger:\n  Type: http\nWritable:\n  Pipeline:\n    ExecutionOrder: [a\n")
    with pytest.raises(PipelineFileError, match=r"bad\.yaml: .*line 6"):
        load_file(path, {})


def test_unknown_function_lists_the_known_ones_with_its_line() -> None:
    text = config(
        "FilterByDeviceName, Deadbnad, RecordingExport", "      Deadbnad:\n        Parameters: {Threshold: 1}\n"
    )
    with pytest.raises(PipelineFileError) as err:
        build(text)
    message = str(err.value)
    assert message.startswith("p.yaml:8: unknown function 'Deadbnad'; known functions: FilterByDeviceName,")
    assert "Deadband" in message
    assert "InfluxDBExport" in ", ".join(export_factories({}, SecretStore()))


def test_bad_parameter_points_at_its_line() -> None:
    text = config(
        "Deadband, RecordingExport",
        "      Deadband:\n        Parameters:\n          Threshold: 1\n          MaxSilence: forever\n",
    )
    with pytest.raises(PipelineFileError, match=r"^p\.yaml:11: Deadband: parameter MaxSilence is not a duration"):
        build(text)
    typo = config("Deadband, RecordingExport", "      Deadband:\n        Parameters:\n          Treshold: 1\n")
    with pytest.raises(PipelineFileError, match=r"^p\.yaml:9: Deadband: parameter Threshold or Percent"):
        build(typo)


@pytest.mark.parametrize(
    ("order", "problem"),
    [
        ("Transform, FilterByDeviceName, RecordingExport", "must come before Transform/Batch"),
        ("RecordingExport, Transform", "the export must be last"),
        ("Transform, Compress, Batch, RecordingExport", "only one Batch, before Compress/Encrypt"),
        ("Transform", "the pipeline has no export"),
    ],
)
def test_order_rules(order: str, problem: str) -> None:
    functions = "      Compress:\n        Parameters: {Algorithm: gzip}\n      Batch:\n        Parameters: {Mode: bycount, BatchThreshold: 2}\n"
    with pytest.raises(PipelineFileError, match=problem):
        build(config(order, functions))


def test_store_and_forward_settings_and_bounds() -> None:
    cfg = parse_config(
        config(
            "RecordingExport",
            saf="    MaxBytes: 2MiB\n    MaxAge: 1h\n    Policy: drop-newest\n    RetryInterval: 100ms\n",
        ),
        "p.yaml",
    )
    saf = cfg.store_and_forward
    assert (saf.max_bytes, saf.max_age, saf.policy, saf.retry_initial) == (2 * 2**20, 3600.0, "drop-newest", 0.1)
    with pytest.raises(PipelineFileError, match=r"p\.yaml:8: Policy must be one of drop-oldest, drop-newest"):
        parse_config(config("RecordingExport", saf="    Policy: keep-all\n"), "p.yaml")
    with pytest.raises(PipelineFileError, match="always bounded"):
        parse_config(config("RecordingExport", saf="    MaxBytes: 0\n"), "p.yaml")


def test_env_expansion() -> None:
    assert expand_env("a ${X} ${Y:-d} ${Z:-}", {"X": "1"}) == "a 1 d "


def test_influx_export_implies_line_protocol_and_disables_without_url() -> None:
    from app_services.application.errors import TargetNotConfigured

    cfg = parse_config(
        config("InfluxDBExport", "      InfluxDBExport:\n        Parameters: {Measurement: m}\n"), "p.yaml"
    )
    with pytest.raises(TargetNotConfigured, match="INFLUXDB_V2_URL"):
        build_pipeline(cfg, export_factories({}, SecretStore()), SecretStore())
    pipeline = build_pipeline(
        cfg, export_factories({"INFLUXDB_V2_URL": "http://127.0.0.1:9"}, SecretStore()), SecretStore()
    )
    assert pipeline.kind == "lp"
    assert pipeline.exporter.target == "InfluxDB http://127.0.0.1:9 bucket edgeplane"
    json_first = parse_config(
        config("Transform, InfluxDBExport", "      Transform:\n        Parameters: {Type: json}\n"), "p.yaml"
    )
    with pytest.raises(PipelineError, match="takes line protocol"):
        build_pipeline(json_first, export_factories({"INFLUXDB_V2_URL": "http://x"}, SecretStore()), SecretStore())


def test_shipped_instances_load() -> None:
    from app_services.settings import INSTANCES, RES

    for name in INSTANCES:
        cfg = load_file(
            RES / f"{name}.yaml",
            {
                "INFLUXDB_V2_URL": "http://127.0.0.1:9",
                "APP_HTTP_EXPORT_URL": "http://127.0.0.1:9/x",
                "APP_MQTT_EXPORT_BROKER": "tcp://127.0.0.1:9",
            },
        )
        build_pipeline(cfg, export_factories({"INFLUXDB_V2_URL": "http://127.0.0.1:9"}, SecretStore()), SecretStore())


# -- runtime ------------------------------------------------------------------------------------------------


async def feed(pipeline: Any, outbox: MemoryOutbox, counters: Counters, events: list[dict[str, Any]]) -> None:
    await EventPipeline(pipeline, outbox, counters).accept([(ctx_of(e), e) for e in events])


async def drain(forwarder: Forwarder, until: Any, timeout: float = 5.0) -> None:
    task = asyncio.create_task(forwarder.run())
    try:
        await wait_until(until, timeout=timeout, interval=0.005)
    finally:
        forwarder.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def values(ev_payloads: list[bytes]) -> list[str]:
    out = []
    for payload in ev_payloads:
        data = orjson.loads(payload)
        for e in data if isinstance(data, list) else [data]:
            out.extend(r["value"] for r in e["readings"])
    return out


def numbered(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [event(readings=[reading("Flow", str(start + i), origin=ORIGIN + i)]) for i in range(n)]


async def test_batch_by_count_boundaries() -> None:
    exporter = RecordingExporter()
    pipeline = build(
        config(
            "Transform, Batch, RecordingExport",
            "      Batch:\n        Parameters: {Mode: bycount, BatchThreshold: '3'}\n",
        ),
        exporter,
    )
    outbox, counters = MemoryOutbox(), Counters()
    await feed(pipeline, outbox, counters, numbered(7))
    forwarder = Forwarder(pipeline, outbox, counters)
    await drain(forwarder, lambda: counters.exported >= 6)
    assert [count for _, count, _ in exporter.payloads] == [3, 3]  # the 7th waits for two more
    assert values([p for p, _, _ in exporter.payloads]) == [str(i) for i in range(6)]
    assert (await outbox.depth())[0] == 1


async def test_batch_by_time_sends_what_is_there() -> None:
    exporter = RecordingExporter()
    pipeline = build(
        config(
            "Transform, Batch, RecordingExport",
            "      Batch:\n        Parameters: {Mode: bytime, TimeInterval: 50ms}\n",
        ),
        exporter,
    )
    outbox, counters = MemoryOutbox(), Counters()
    await feed(pipeline, outbox, counters, numbered(5))
    await drain(Forwarder(pipeline, outbox, counters), lambda: counters.exported >= 5)
    assert sum(c for _, c, _ in exporter.payloads) == 5
    assert values([p for p, _, _ in exporter.payloads]) == [str(i) for i in range(5)]


async def test_batch_by_time_and_count_whichever_first() -> None:
    exporter = RecordingExporter()
    pipeline = build(
        config(
            "Transform, Batch, RecordingExport",
            "      Batch:\n        Parameters: {Mode: bytimecount, BatchThreshold: 4, TimeInterval: 50ms}\n",
        ),
        exporter,
    )
    outbox, counters = MemoryOutbox(), Counters()
    await feed(pipeline, outbox, counters, numbered(6))
    await drain(Forwarder(pipeline, outbox, counters), lambda: counters.exported >= 6)
    assert [c for _, c, _ in exporter.payloads] == [4, 2]


async def test_json_batch_is_one_array_and_line_protocol_batch_is_lines() -> None:
    exporter = RecordingExporter(max_batch=10, line_protocol=None)
    pipeline = build(
        config(
            "Transform, RecordingExport",
            "      Transform:\n        Parameters: {Type: lineprotocol, Measurement: m, Tags: 'd={deviceName}'}\n",
        ),
        exporter,
    )
    pipeline.exporter.max_batch = 10
    outbox, counters = MemoryOutbox(), Counters()
    await feed(pipeline, outbox, counters, numbered(3))
    forwarder = Forwarder(pipeline, outbox, counters)
    await drain(forwarder, lambda: counters.exported >= 3)
    assert exporter.payloads[0][0].decode().split("\n") == [f"m,d=pump-1 Flow={i} {ORIGIN + i}" for i in range(3)]


async def test_failed_export_is_retried_in_order_and_nothing_is_lost() -> None:
    exporter = RecordingExporter()
    pipeline = build(config("Transform, RecordingExport"), exporter)
    outbox, counters = MemoryOutbox(), Counters()
    await feed(pipeline, outbox, counters, numbered(5))
    exporter.fail_with = ExportFailed("connection refused")
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float) -> None:
        waits.append(delay)
        if len(waits) >= 4:
            exporter.fail_with = None
        await real_sleep(0)

    forwarder = Forwarder(pipeline, outbox, counters, retry=RetryPolicy(initial=0.5, maximum=2.0), sleep=fake_sleep)
    await drain(forwarder, lambda: counters.exported >= 5)
    assert values([p for p, _, _ in exporter.payloads]) == [str(i) for i in range(5)]
    assert waits[:4] == [0.5, 1.0, 2.0, 2.0]  # capped exponential backoff
    assert counters.retried == 4
    assert counters.state == "running"
    assert counters.failing_since is None


async def test_permanent_refusal_waits_longest_honours_retry_after_and_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exporter = RecordingExporter()
    pipeline = build(config("Transform, RecordingExport"), exporter)
    outbox, counters = MemoryOutbox(), Counters()
    await feed(pipeline, outbox, counters, numbered(1))
    exporter.fail_with = ExportFailed("HTTP 401 unauthorized", permanent=True)
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float) -> None:
        waits.append(delay)
        if len(waits) == 3:
            exporter.fail_with = ExportFailed("HTTP 429", retry_after=7)
        if len(waits) == 4:
            exporter.fail_with = None
        await real_sleep(0)

    caplog.set_level(logging.INFO, logger="app_services.application.runtime")
    forwarder = Forwarder(
        pipeline, outbox, counters, retry=RetryPolicy(initial=0.1, maximum=3.0), report_every=3600, sleep=fake_sleep
    )
    await drain(forwarder, lambda: counters.exported >= 1)
    assert waits == [3.0, 3.0, 3.0, 7.0]  # a refusal is retried at the slowest pace; Retry-After honoured
    assert counters.failed_permanent == 3
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "retrying will not fix this" in errors[0].getMessage()
    assert sum("works again" in r.getMessage() for r in caplog.records) == 1


async def test_buffer_bound_drop_oldest_is_applied_and_counted() -> None:
    exporter = RecordingExporter()
    pipeline = build(config("Transform, RecordingExport"), exporter)
    size = len(orjson.dumps(numbered(1)[0]))
    outbox, counters = MemoryOutbox(max_bytes=size * 3), Counters()
    await feed(pipeline, outbox, counters, numbered(5))
    assert outbox.dropped == 2
    assert (await outbox.depth())[0] == 3
    await drain(Forwarder(pipeline, outbox, counters), lambda: counters.exported >= 3)
    assert values([p for p, _, _ in exporter.payloads]) == ["2", "3", "4"]  # the newest kept


async def test_buffer_bound_drop_newest_refuses_and_counts() -> None:
    pipeline = build(config("Transform, RecordingExport"))
    size = len(orjson.dumps(numbered(1)[0]))
    outbox, counters = MemoryOutbox(max_bytes=size * 3, policy="drop-newest"), Counters()
    await feed(pipeline, outbox, counters, numbered(5))
    assert (counters.dropped_newest, counters.buffered) == (2, 3)


async def test_store_and_forward_off_drops_on_failure() -> None:
    exporter = RecordingExporter()
    pipeline = build(config("Transform, RecordingExport"), exporter)
    outbox, counters = MemoryOutbox(), Counters()
    await feed(pipeline, outbox, counters, numbered(2))
    exporter.fail_with = ExportFailed("down")
    await drain(Forwarder(pipeline, outbox, counters, store_and_forward=False), lambda: counters.dropped_newest >= 2)
    assert (await outbox.depth())[0] == 0


async def test_filtered_events_are_counted_and_never_buffered() -> None:
    pipeline = build(
        config(
            "FilterByDeviceName, RecordingExport",
            "      FilterByDeviceName:\n        Parameters: {DeviceNames: keep}\n",
        )
    )
    outbox, counters = MemoryOutbox(), Counters()
    await feed(pipeline, outbox, counters, [event("keep"), event("other"), event("other")])
    assert (counters.received, counters.filtered, counters.buffered) == (3, 2, 1)


async def test_encrypt_after_batch_waits_for_its_key() -> None:
    from app_services.application.functions.codec import decrypt

    exporter = RecordingExporter()
    secrets = SecretStore()
    cfg = parse_config(
        config(
            "Transform, Batch, Encrypt, RecordingExport",
            "      Batch:\n        Parameters: {Mode: bycount, BatchThreshold: 2}\n"
            "      Encrypt:\n        Parameters: {Algorithm: aes256-gcm, SecretName: aes}\n",
        ),
        "p.yaml",
    )
    pipeline = build_pipeline(cfg, {"RecordingExport": recording_factory(exporter)}, secrets)
    outbox, counters = MemoryOutbox(), Counters()
    await feed(pipeline, outbox, counters, numbered(2))
    key = bytes(range(32))
    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float) -> None:
        await secrets.put("aes", {"key": key.hex()})  # the key arrives after the first failure
        await real_sleep(0)

    await drain(Forwarder(pipeline, outbox, counters, sleep=fake_sleep), lambda: counters.exported >= 2)
    assert counters.retried == 2
    assert values([decrypt(key, exporter.payloads[0][0])]) == ["0", "1"]


def test_item_context_placeholders() -> None:
    from app_services.application.placeholders import compile_placeholders

    ctx = Context(device="pump 1", profile="P", source="S", topic="t")
    assert compile_placeholders("http://h/{deviceName}/{PROFILENAME}", "Url", url=True)(ctx) == "http://h/pump%201/P"
    assert compile_placeholders("a/{sourcename}/{receivedtopic}", "Topic")(ctx) == "a/S/t"
    with pytest.raises(PipelineError, match="unknown placeholder"):
        compile_placeholders("{nope}", "Url")
    assert Item(b"", "json", ctx).kind == "json"


# -- SetResponseData and Transform xml in pipelines ---------------------------------------------------------

HTTP_HEADER = HEADER.replace("Type: edgex-messagebus", "Type: http")
RESPONSE_FUNCTIONS = (
    "      Transform:\n        Parameters: {Type: xml}\n"
    "      Compress:\n        Parameters: {Algorithm: zlib}\n"
    "      Batch:\n        Parameters: {Mode: bycount, BatchThreshold: 2}\n"
)


def http_config(order: str) -> str:
    return config(order, RESPONSE_FUNCTIONS).replace(HEADER, HTTP_HEADER)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (config("Transform, SetResponseData", RESPONSE_FUNCTIONS), "set Trigger Type http"),
        (http_config("Transform, Compress, SetResponseData, RecordingExport"), "must end the pipeline"),
        (http_config("Transform, Batch, SetResponseData, RecordingExport"), "after Batch is not supported"),
        (http_config("Transform, Batch, Compress, SetResponseData"), "after Batch is not supported"),
        (http_config("Transform"), "or SetResponseData, with Trigger Type http"),
    ],
)
def test_set_response_data_order_rules(text: str, problem: str) -> None:
    with pytest.raises(PipelineFileError, match=problem):
        build(text)


async def test_pipeline_without_export_runs_within_the_request() -> None:
    pipeline = build(http_config("FilterByDeviceName, Transform, Compress, SetResponseData").replace(
        "    Functions:\n", "    Functions:\n      FilterByDeviceName:\n        Parameters: {DeviceNames: keep}\n"
    ))  # fmt: skip
    assert (pipeline.exporter, pipeline.responds) == (None, True)
    counters = Counters()
    events = EventPipeline(pipeline, None, counters)
    kept, other = event("keep"), event("other")
    ctx, ctx_other = ctx_of(kept), ctx_of(other)
    assert await events.accept([(ctx, kept), (ctx_other, other)]) == 1
    assert ctx_other.response is None  # filtered out: no response (EdgeX's: 200, empty body)
    assert ctx.response is not None
    assert ctx.response_type == "text/plain"  # Compress's (base64 text), as EdgeX's
    assert zlib.decompress(base64.b64decode(ctx.response)).startswith(b"<Event><ApiVersion>v3</ApiVersion>")
    assert (counters.received, counters.filtered, counters.buffered) == (2, 1, 0)


async def test_set_response_data_before_an_export_and_xml_batches() -> None:
    exporter = RecordingExporter(max_batch=10)
    pipeline = build(http_config("Transform, SetResponseData, RecordingExport"), exporter)
    outbox, counters = MemoryOutbox(), Counters()
    evs = numbered(3)
    ctxs = [ctx_of(e) for e in evs]
    await EventPipeline(pipeline, outbox, counters).accept(list(zip(ctxs, evs, strict=True)))
    assert all(c.response is not None and c.response.startswith(b"<Event>") for c in ctxs)
    assert ctxs[0].response_type == "application/xml"
    await drain(Forwarder(pipeline, outbox, counters), lambda: counters.exported >= 3)
    payload, count, ctx = exporter.payloads[0]
    assert (count, ctx.kind) == (3, "xml")
    assert payload.split(b"\n") == [c.response for c in ctxs]  # a batch of XML items: one event per line


def test_set_response_data_with_the_message_bus_trigger_is_ignored_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    pipeline = build(config("Transform, SetResponseData, RecordingExport", RESPONSE_FUNCTIONS))
    assert pipeline.responds
    assert [r.getMessage() for r in caplog.records if "SetResponseData" in r.getMessage()] == [
        "SetResponseData: the message-bus trigger has no response, so its data is ignored (EdgeX publishes it "
        "to the trigger's PublishTopic, which edgeplane does not have: use MQTTExport)"
    ]


# -- export groups bounded by bytes -------------------------------------------------------------------------


async def test_export_groups_are_bounded_by_bytes_as_well_as_by_count() -> None:
    from app_services.application.runtime import ENTRY_OVERHEAD

    exporter = RecordingExporter(max_batch=1000)
    pipeline = build(config("Transform, RecordingExport"), exporter)
    outbox, counters = MemoryOutbox(), Counters()
    big = [event(readings=[reading(f"R{r}", str(i)) for r in range(40)]) for i in range(30)]
    await feed(pipeline, outbox, counters, big)
    item_bytes = len(orjson.dumps(big[0]))
    cap = 5 * (item_bytes + ENTRY_OVERHEAD) + 10
    forwarder = Forwarder(pipeline, outbox, counters, max_group_bytes=cap)
    await drain(forwarder, lambda: counters.exported >= 30)
    counts = [c for _, c, _ in exporter.payloads]
    assert sum(counts) == 30
    assert max(counts) <= 5  # not 30 in one export although the export takes 1000 items
    assert all(len(p) <= cap for p, _, _ in exporter.payloads)
    order = [e["readings"][0]["value"] for p, _, _ in exporter.payloads for e in orjson.loads(p)]
    assert order == [str(i) for i in range(30)]  # still in order


async def test_one_item_larger_than_the_byte_bound_goes_alone() -> None:
    exporter = RecordingExporter(max_batch=1000)
    pipeline = build(config("Transform, RecordingExport"), exporter)
    outbox, counters = MemoryOutbox(), Counters()
    await feed(pipeline, outbox, counters, numbered(3))
    await drain(Forwarder(pipeline, outbox, counters, max_group_bytes=10), lambda: counters.exported >= 3)
    assert [c for _, c, _ in exporter.payloads] == [1, 1, 1]
