"""App-service composition root: the one place adapters are built and wired to the pipeline."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI

from app_services import __version__
from app_services.api import routes
from app_services.application.build import ExportFactory, build_pipeline
from app_services.application.errors import PipelineError, TargetNotConfigured
from app_services.application.functions.codec import SecretSource
from app_services.application.params import Params
from app_services.application.pipeline import PipelineFileError, load_file
from app_services.application.ports import Outbox
from app_services.application.runtime import Counters, EventPipeline, Forwarder, RetryPolicy
from app_services.infrastructure.jetstream_outbox import JetStreamOutbox
from app_services.messaging.trigger import EventTrigger
from app_services.metrics import AppCollector
from app_services.service import AppService
from app_services.settings import AppServiceSettings, load_settings
from edgeplane_common.bootstrap import ServiceBootstrap
from edgeplane_common.bus import MessageBus
from edgeplane_common.bus.nats import NatsMessageBus
from edgeplane_common.http import create_service_app, serve
from edgeplane_common.logging import configure_logging

log = logging.getLogger(__name__)


def export_factories(environ: Mapping[str, str], secrets: SecretSource) -> dict[str, ExportFactory]:
    """The exports by name. Each client library is imported only by the instance that uses it
    (influxdb-client alone adds ~35 MB to a process)."""

    def influx(p: Params) -> Any:
        from app_services.infrastructure.influx_export import InfluxExporter

        return InfluxExporter(p, environ, secrets)

    def http(p: Params) -> Any:
        from app_services.infrastructure.http_export import HttpExporter

        return HttpExporter(p, secrets)

    def mqtt(p: Params) -> Any:
        from app_services.infrastructure.mqtt_export import MqttExporter

        return MqttExporter(p, secrets)

    return {"InfluxDBExport": influx, "HTTPExport": http, "MQTTExport": mqtt}


class _AppSecrets:
    """The app's secret store (`POST /api/v3/secret`), which exists only once the app does: functions built
    before it read through this."""

    store: SecretSource | None = None

    def get(self, name: str) -> Mapping[str, str]:
        if self.store is None:
            raise LookupError("the secret store is not ready")
        return self.store.get(name)


def create_app(
    settings: AppServiceSettings | None = None,
    *,
    bus: MessageBus | None = None,
    outbox: Outbox | None = None,
    environ: Mapping[str, str] | None = None,
) -> FastAPI:
    """The app of one instance. A malformed pipeline file raises PipelineFileError (file:line: reason); an
    export whose target is not configured leaves the instance running but disabled (one log line). Adapters
    not given are built here and owned by the app; a given `bus` is connected already."""
    settings = settings or load_settings()
    environ = os.environ if environ is None else environ
    config = load_file(settings.pipeline_path(), environ)
    counters = Counters()
    service = AppService(settings.service_name, config, counters)
    secrets = _AppSecrets()
    pipeline = None
    try:
        pipeline = build_pipeline(config, export_factories(environ, secrets), secrets)
    except PipelineError as err:
        raise config.error(err) from None
    except TargetNotConfigured as err:
        service.disabled = str(err)
        counters.state = "disabled"
        log.warning("%s is disabled: %s", settings.service_name, err)
    boot = ServiceBootstrap(
        settings.service_name, started_message=f"{settings.service_name} ready on port {settings.http.port}"
    )
    own_bus = bus is None
    # A disabled instance needs no NATS: its readiness must not wait for it.
    needs_bus = pipeline is not None and config.trigger.type == "edgex-messagebus"
    if bus is None and needs_bus:
        bus = NatsMessageBus(settings.nats, name=settings.service_name, tls=settings.tls)
    app = create_service_app(
        settings,
        version=__version__,
        title=f"edgeplane {settings.service_name}",
        routers=[routes.router],
        bootstrap=boot,
        bus=bus if needs_bus else None,
        collectors=[AppCollector(service)],
    )
    secrets.store = app.state.secrets
    app.state.app_service = service
    app.state.pipeline_config = config
    if pipeline is None:
        return app
    if pipeline.exporter is None:  # it ends with SetResponseData: it runs within each request, no buffer
        service.pipeline = pipeline
        service.events = EventPipeline(pipeline, None, counters)
        service.buffer_ready.set()
        counters.state = "running"
        log.info(
            "%s: pipeline %s -> the HTTP trigger's response",
            settings.service_name,
            ", ".join(f.key for f in config.functions),
        )
        return app
    exporter = pipeline.exporter

    saf = config.store_and_forward
    if outbox is None:
        outbox = JetStreamOutbox(
            settings.nats,
            settings.service_name,
            max_bytes=saf.max_bytes,
            max_age=saf.max_age,
            policy=saf.policy,
            tls=settings.tls,
        )
        boot.close("export buffer", outbox.close)
    service.pipeline = pipeline
    service.outbox = outbox
    service.events = EventPipeline(pipeline, outbox, counters)
    service.forwarder = Forwarder(
        pipeline,
        outbox,
        counters,
        retry=RetryPolicy(initial=saf.retry_initial, maximum=saf.retry_max),
        store_and_forward=saf.enabled,
        report_every=settings.report_interval,
    )
    boot.close("export", exporter.close)
    boot.task("export buffer and forwarder", service.run_forwarder)
    boot.task("buffer depth", service.watch_depth)
    boot.readiness.probe("export buffer", service.buffer_problem)

    if needs_bus:
        assert bus is not None
        trigger = EventTrigger(
            bus,
            service.events,
            counters,
            durable=settings.service_name,
            subjects=config.trigger.subjects,
            consumers=settings.consumers,
            fetch_batch=settings.fetch_batch,
        )
        service.trigger = trigger
        boot.close("events consumer", trigger.stop)
        if own_bus:
            boot.close("NATS", bus.close)

        async def consume() -> None:
            if own_bus:
                assert bus is not None
                await bus.connect()
            await trigger.run(service.buffer_ready)

        boot.task("events consumer", consume, ready=True)
        boot.readiness.probe("events consumer", trigger.problem)
    log.info(
        "%s: pipeline %s -> %s (store-and-forward %s)",
        settings.service_name,
        ", ".join(f.key for f in config.functions),
        exporter.target,
        "on" if saf.enabled else "off",
    )
    return app


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app_services", description="edgeplane app service instance")
    parser.add_argument("--instance", "-i", help="instance name, e.g. app-http-export (reads APP_HTTP_EXPORT_*)")
    args = parser.parse_args(argv)
    settings = load_settings(args.instance)
    try:
        serve(settings, lambda: create_app(settings))
    except PipelineFileError as err:
        configure_logging(settings.service_name, settings.log_level, json=settings.log_json)
        log.error("cannot start %s: %s", settings.service_name, err)
        sys.exit(2)


__all__ = ["create_app", "export_factories", "run"]
