"""app services exporting over HTTP (to a real local aiohttp server that can be made to fail) and MQTT (to a
real mosquitto started by the test), with JetStream as trigger and buffer; plus the HTTP trigger and a
disabled instance."""

from __future__ import annotations

import asyncio
import base64
import logging
import uuid
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest
from aiohttp import web

from app_services.main import create_app
from app_services.settings import AppServiceSettings
from edgeplane_common.bus import MessageEnvelope, Topics
from edgeplane_common.bus.nats import NatsMessageBus
from edgeplane_common.embedded import free_port
from tests.support.apps import event, reading, write_pipeline
from tests.support.export_targets import MOSQUITTO, NO_MOSQUITTO, Mosquitto, running_app, status
from tests.support.stack import wait_until


class Receiver:
    """A local HTTP server recording what it is sent; `answer` sets the status it replies with."""

    def __init__(self) -> None:
        self.port = free_port()
        self.answer = 200
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        if self.answer != 200:
            return web.Response(status=self.answer, text="not now", headers={"Retry-After": "0"})
        self.requests.append((request.raw_path, dict(request.headers), await request.read()))
        return web.Response(status=200)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


def settings(name: str, path: Path, nats_url: str) -> AppServiceSettings:
    return AppServiceSettings.model_validate(
        {"service_name": name, "pipeline_file": str(path), "nats": {"url": nats_url}}
    )


async def publish(bus: NatsMessageBus, dsvc: str, events: list[dict[str, Any]]) -> None:
    for ev in events:
        topic = Topics.events(dsvc, ev["profileName"], ev["deviceName"], ev["sourceName"])
        await bus.publish_durable(topic, MessageEnvelope(payload=ev, content_type="application/json"))


def numbered(n: int, start: int = 0, device: str = "pump 1") -> list[dict[str, Any]]:
    return [event(device, [reading("Flow", str(start + i))]) for i in range(n)]


HTTP_PIPELINE = """Trigger: {Type: edgex-messagebus, SubscribeTopics: "events/device/DSVC/#"}
Writable:
  Pipeline:
    ExecutionOrder: "Transform, Batch, HTTPExport"
    Functions:
      Transform: {Parameters: {Type: json}}
      Batch: {Parameters: {Mode: bytimecount, BatchThreshold: "10", TimeInterval: 200ms}}
      HTTPExport:
        Parameters:
          Method: put
          Url: "URL/ingest/{deviceName}"
          HttpRequestHeaders: '{"X-Site": "plant-a"}'
          HeaderName: X-Token
          SecretName: cloud
          SecretValueKey: token
  StoreAndForward: {RetryInterval: 50ms, MaxRetryInterval: 200ms}
"""


async def test_http_export_survives_refusals_and_outages_in_order(
    bus: NatsMessageBus, nats_url: str, tmp_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    dsvc = f"dev-{uuid.uuid4().hex[:8]}"
    url = f"http://127.0.0.1:{receiver.port}"
    path = write_pipeline(tmp_path, HTTP_PIPELINE.replace("DSVC", dsvc).replace("URL", url))
    app = create_app(settings("app-it-http", path, nats_url), bus=bus, environ={})
    caplog.set_level(logging.INFO, logger="app_services")
    async with running_app(app) as client:
        await wait_until(lambda: app.state.app_service.trigger.subscriptions, timeout=20)
        # 1. no secret yet: the header cannot be made, nothing is sent, nothing is lost
        await publish(bus, dsvc, numbered(25))

        async def failing_with(text: str) -> Any:
            async def check() -> bool:
                s = await status(client)
                return s["state"] == "failing" and text in (s["lastError"] or "")

            return check

        await wait_until(await failing_with("secret store"), timeout=20)
        post = {"apiVersion": "v3", "secretName": "cloud", "secretData": [{"key": "token", "value": "s3cret"}]}
        assert (await client.post("/api/v3/secret", json=post)).status_code == 201
        # 2. the target refuses (401): an error retrying will not fix; the data is kept
        receiver.answer = 401
        await wait_until(await failing_with("HTTP 401"), timeout=20)
        s = await status(client)
        assert s["lastErrorPermanent"] is True
        assert s["failedPermanent"] >= 1
        # 3. the target is down (503, Retry-After), then back: every event arrives once, in order
        receiver.answer = 503
        await publish(bus, dsvc, numbered(25, start=25))
        await wait_until(await failing_with("HTTP 503"), timeout=20)
        receiver.answer = 200

        async def all_sent() -> bool:
            return (await status(client))["exported"] == 50

        await wait_until(all_sent, timeout=30)
    values = []
    for request_path, headers, body in receiver.requests:
        assert request_path == "/ingest/pump%201"
        assert headers["X-Token"] == "s3cret"
        assert headers["X-Site"] == "plant-a"
        assert headers["Content-Type"] == "application/json"
        batch = orjson.loads(body)
        assert isinstance(batch, list)
        assert len(batch) <= 10
        values.extend(e["readings"][0]["value"] for e in batch)
    assert values == [str(i) for i in range(50)]
    refused = [r for r in caplog.records if "retrying will not fix" in r.getMessage()]
    assert len(refused) <= 1  # reported once per interval, not once per try
    assert sum("works again" in r.getMessage() for r in caplog.records) == 1


async def test_http_trigger_runs_the_pipeline_and_refuses_bad_events(
    bus: NatsMessageBus, nats_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    url = f"http://127.0.0.1:{receiver.port}/in"
    text = f"""Trigger: {{Type: http}}
Writable:
  Pipeline:
    ExecutionOrder: "FilterByDeviceName, Transform, HTTPExport"
    Functions:
      FilterByDeviceName: {{Parameters: {{DeviceNames: keep}}}}
      Transform: {{Parameters: {{Type: lineprotocol, Measurement: m, Tags: "d={{deviceName}}"}}}}
      HTTPExport: {{Parameters: {{Url: "{url}"}}}}
"""
    app = create_app(
        settings(f"app-it-trigger-{uuid.uuid4().hex[:6]}", write_pipeline(tmp_path, text), nats_url), bus=bus
    )
    async with running_app(app) as client:
        await wait_until(lambda: app.state.app_service.buffer_ready.is_set(), timeout=20)
        kept = event("keep", [reading("Flow", "1")])
        response = await client.post("/api/v3/trigger", json={"apiVersion": "v3", "event": kept})
        assert (response.status_code, response.content) == (200, b"")
        assert (await client.post("/api/v3/trigger", json=event("other"))).status_code == 200
        bad = await client.post("/api/v3/trigger", json={"deviceName": "x"})
        assert bad.status_code == 400
        assert "event.id" in bad.json()["message"]
        assert (await client.post("/api/v3/trigger", content=b"{no json")).status_code == 400

        async def sent() -> bool:
            return (await status(client))["exported"] == 1

        await wait_until(sent, timeout=20)
        s = await status(client)
        assert (s["received"], s["filtered"], s["invalid"]) == (2, 1, 2)
    assert receiver.requests[0][2].decode() == f"m,d=keep Flow=1 {kept['origin']}"
    assert receiver.requests[0][1]["Content-Type"] == "text/plain; charset=utf-8"


async def test_instance_without_target_is_disabled_with_one_log_line(
    nats_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from app_services.settings import RES

    caplog.set_level(logging.INFO)
    app = create_app(
        AppServiceSettings.model_validate(
            {
                "service_name": "app-influx-export",
                "pipeline_file": str(RES / "app-influx-export.yaml"),
                "nats": {"url": nats_url},
            }
        ),
        environ={},
    )
    async with running_app(app) as client:
        s = await status(client)
        assert (s["state"], s["disabledReason"]) == (
            "disabled",
            "no InfluxDB URL: set INFLUXDB_V2_URL (or the Url parameter)",
        )
        assert (await client.get("/api/v3/ping")).status_code == 200
        # ready: a disabled instance depends on nothing (it does not even connect to NATS)
        assert (await client.get("/api/v3/health")).status_code == 200
        assert (await client.post("/api/v3/trigger", json=event())).status_code == 503
        assert "edgeplane_app_enabled" in (await client.get("/metrics")).text
    disabled = [r for r in caplog.records if r.name.startswith("app_services") and "disabled" in r.getMessage()]
    assert len(disabled) == 1
    assert (
        disabled[0].getMessage()
        == "app-influx-export is disabled: no InfluxDB URL: set INFLUXDB_V2_URL (or the Url parameter)"
    )


MQTT_PIPELINE = """Trigger: {Type: edgex-messagebus, SubscribeTopics: "events/device/DSVC/#"}
Writable:
  Pipeline:
    ExecutionOrder: "Transform, MQTTExport"
    Functions:
      Transform: {Parameters: {Type: json}}
      MQTTExport:
        Parameters:
          BrokerAddress: "tcp://127.0.0.1:PORT"
          Topic: "edgex/export/{profilename}/{devicename}"
          ClientId: "exporter-DSVC"
          QOS: "1"
  StoreAndForward: {RetryInterval: 100ms, MaxRetryInterval: 300ms}
"""


@pytest.mark.skipif(MOSQUITTO is None, reason=NO_MOSQUITTO)
async def test_mqtt_export_qos1_through_a_broker_outage(bus: NatsMessageBus, nats_url: str, tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "mosquitto", persistence=True)
    broker.start()
    dsvc = f"dev-{uuid.uuid4().hex[:8]}"
    path = write_pipeline(tmp_path, MQTT_PIPELINE.replace("DSVC", dsvc).replace("PORT", str(broker.port)))
    got: list[tuple[str, dict[str, Any]]] = []
    sub_id = f"sub-{dsvc}"

    async def subscribe_once() -> None:
        # A persistent session (clean_session off): what is published while the subscriber is away is kept
        # for it by the broker, across the broker's restart too.
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier=sub_id, clean_session=False) as sub:
            await sub.subscribe("edgex/export/#", qos=1)

    async def collect(until: int) -> None:
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier=sub_id, clean_session=False) as sub:
            await sub.subscribe("edgex/export/#", qos=1)
            async with asyncio.timeout(30):
                async for message in sub.messages:
                    got.append((str(message.topic), orjson.loads(message.payload)))  # type: ignore[arg-type]
                    if len(got) >= until:
                        return

    await subscribe_once()
    app = create_app(settings("app-it-mqtt", path, nats_url), bus=bus, environ={})
    try:
        async with running_app(app) as client:
            await wait_until(lambda: app.state.app_service.trigger.subscriptions, timeout=20)
            await publish(bus, dsvc, numbered(10))
            await collect(10)
            broker.stop()
            await publish(bus, dsvc, numbered(20, start=10))

            async def failing() -> bool:
                s = await status(client)
                return s["state"] == "failing" and s["buffered"] == 30

            await wait_until(failing, timeout=20)
            broker.start()

            async def exported() -> bool:
                return (await status(client))["exported"] == 30

            await wait_until(exported, timeout=30)
            await collect(30)
    finally:
        broker.stop()
    assert {t for t, _ in got} == {"edgex/export/Pump/pump 1"}
    assert [e["readings"][0]["value"] for _, e in got] == [str(i) for i in range(30)]


async def test_set_response_data_answers_the_http_trigger_as_edgex_does(nats_url: str, tmp_path: Path) -> None:
    """EdgeX's trigger tests (edgex-taf POST-positive): FilterByDeviceName, Transform, SetResponseData, with
    no export: a filtered event gets an empty 200, a kept one its XML (application/xml) or compressed JSON."""
    from xml.etree import ElementTree

    def pipeline(transform: str, extra: str = "") -> str:
        order = f"FilterByDeviceName, Transform, {extra + ', ' if extra else ''}SetResponseData"
        return f"""Trigger: {{Type: http}}
Writable:
  Pipeline:
    ExecutionOrder: "{order}"
    Functions:
      FilterByDeviceName: {{Parameters: {{DeviceNames: keep}}}}
      Transform: {{Parameters: {{Type: {transform}}}}}
      Compress: {{Parameters: {{Algorithm: zlib}}}}
      SetResponseData: {{Parameters: {{}}}}
"""

    kept = event("keep", [reading("Level", "a<b & 'c'", "String")])
    xml_app = create_app(settings("app-it-response-xml", write_pipeline(tmp_path, pipeline("xml"), "x.yaml"), nats_url))
    async with running_app(xml_app) as client:
        filtered = await client.post("/api/v3/trigger", json=event("other"))
        assert (filtered.status_code, filtered.content) == (200, b"")
        response = await client.post("/api/v3/trigger", json={"apiVersion": "v3", "event": kept})
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/xml"
        root = ElementTree.fromstring(response.content)
        assert (root.tag, root.findtext("DeviceName"), root.findtext("Readings/Value")) == (
            "Event",
            "keep",
            "a<b & 'c'",
        )
        assert b"<Value>a&lt;b &amp; &#39;c&#39;</Value>" in response.content
        s = await status(client)
        assert (s["state"], s["target"], s["received"], s["filtered"], s["buffered"]) == ("running", None, 2, 1, 0)

    zlib_path = write_pipeline(tmp_path, pipeline("json", "Compress"), "z.yaml")
    async with running_app(create_app(settings("app-it-response-zlib", zlib_path, nats_url))) as client:
        response = await client.post("/api/v3/trigger", json=kept)
        assert (response.status_code, response.headers["content-type"]) == (200, "text/plain; charset=utf-8")
        assert orjson.loads(zlib.decompress(base64.b64decode(response.content)))["deviceName"] == "keep"


async def test_set_response_data_before_an_export_answers_once_buffered(
    bus: NatsMessageBus, nats_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    url = f"http://127.0.0.1:{receiver.port}/in"
    text = f"""Trigger: {{Type: http}}
Writable:
  Pipeline:
    ExecutionOrder: "Transform, SetResponseData, HTTPExport"
    Functions:
      Transform: {{Parameters: {{Type: xml}}}}
      SetResponseData: {{Parameters: {{ResponseContentType: text/xml}}}}
      HTTPExport: {{Parameters: {{Url: "{url}"}}}}
"""
    app = create_app(
        settings(f"app-it-respond-{uuid.uuid4().hex[:6]}", write_pipeline(tmp_path, text), nats_url), bus=bus
    )
    async with running_app(app) as client:
        await wait_until(lambda: app.state.app_service.buffer_ready.is_set(), timeout=20)
        response = await client.post("/api/v3/trigger", json=event("pump-9"))
        assert (response.status_code, response.headers["content-type"]) == (200, "text/xml; charset=utf-8")
        assert response.content.startswith(b"<Event><ApiVersion>v3</ApiVersion>")

        async def sent() -> bool:
            return (await status(client))["exported"] == 1

        await wait_until(sent, timeout=20)
    path, headers, body = receiver.requests[0]
    assert (path, headers["Content-Type"], body) == ("/in", "application/xml", response.content)
