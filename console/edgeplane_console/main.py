"""console composition root: the gateway client, the bus feeding the live values, the status poller, and
the NiceGUI pages mounted on the service app (which keeps /api/v3/ping, health, version, config, metrics)."""

from __future__ import annotations

import secrets

from fastapi import FastAPI
from nicegui import ui

from edgeplane_common.bootstrap import ServiceBootstrap
from edgeplane_common.bus import MessageBus
from edgeplane_common.bus.nats import NatsMessageBus
from edgeplane_common.clients.gateway import Endpoints, GatewayClient
from edgeplane_common.http import create_service_app, serve
from edgeplane_common.memory import release_free_heap, trim_heap_every
from edgeplane_console import __version__
from edgeplane_console.application.live import LiveHub
from edgeplane_console.application.state import ConsoleState
from edgeplane_console.messaging.events import LiveFeed
from edgeplane_console.settings import ConsoleSettings
from edgeplane_console.ui import devices, overview, profiles, registry, rules
from edgeplane_console.ui.auth import ConsoleAuth

HEAP_TRIM_INTERVAL_S = 10.0
"""glibc keeps freed heap memory until trimmed: what pages and chart updates free goes back every 10 s (~1 ms
each; bench/console_bench.py: ~4 MiB less RSS with a device page of 5 live charts)."""


async def _release_free_heap() -> None:
    # Compiling ~1000 modules at start (no bytecode cache) leaves freed memory inside glibc's heap.
    release_free_heap()


def _api_path(path: str) -> bool:
    return path.startswith("/api/") or path == "/metrics"


def create_app(
    settings: ConsoleSettings | None = None,
    *,
    bus: MessageBus | None = None,
    client: GatewayClient | None = None,
) -> FastAPI:
    """The console app. A given `bus` (connected) or `client` is the caller's; others are built and owned.

    NiceGUI keeps its pages in one process-wide app, so one process serves one console."""
    settings = settings or ConsoleSettings()
    boot = ServiceBootstrap(settings.service_name, started_message=f"console ready on port {settings.http.port}")
    urls = settings.service_url_map()
    if client is None:
        token = settings.client_token()
        client = GatewayClient(
            Endpoints(urls), token=token, timeout=settings.request_timeout, ca_file=settings.tls.ca_file
        )
        boot.close("gateway client", client.close)
    state = ConsoleState(
        client=client,
        services=settings.shown_service_urls(),
        app_service_urls=settings.app_service_url_list(),
        hub=LiveHub(keep=settings.chart_points),
        refresh_interval=settings.refresh_interval,
        chart_interval=settings.chart_interval,
        history_limit=settings.history_limit,
    )
    if bus is None:
        bus = NatsMessageBus(settings.nats, name=settings.service_name, tls=settings.tls)
        boot.connect("NATS", bus.connect, close=bus.close)
    feed = LiveFeed(bus, state.hub, state.firings)
    boot.step("live values", feed.start, stop=feed.stop)
    boot.task("status poller", state.run)
    boot.step("start-up memory released", _release_free_heap)
    boot.task("heap trimming", lambda: trim_heap_every(HEAP_TRIM_INTERVAL_S))

    app = create_service_app(
        settings,
        version=__version__,
        title="edgeplane console",
        routers=[],
        bootstrap=boot,
        bus=bus,
        # The pages are behind the console's own login (ui/auth.py); its API keeps the token check (the
        # default verifier, with core-metadata's keys, loaded on the first request that carries a token).
        self_guarded=lambda path: not _api_path(path),
    )
    app.state.console = state
    auth = ConsoleAuth(state, enabled=settings.security.enabled)
    app.state.console_auth = auth
    auth.register()
    for pages in (overview, devices, profiles, registry, rules):
        pages.register(state, auth)
    secret = settings.session_secret.get_secret_value() if settings.session_secret else secrets.token_urlsafe(32)
    ui.run_with(
        app,
        title="edgeplane",
        favicon="⚙",
        show_welcome_message=False,
        reconnect_timeout=10.0,
        # Secure mode: the signed session cookie that names a browser's login (kept server-side); sent over
        # HTTPS only when the console serves HTTPS.
        storage_secret=secret if auth.enabled else None,
        session_middleware_kwargs={"https_only": bool(settings.tls.cert_file and settings.tls.key_file)},
    )
    return app


def run() -> None:
    settings = ConsoleSettings()
    serve(settings, lambda: create_app(settings))


__all__ = ["create_app", "run"]
