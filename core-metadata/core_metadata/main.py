"""core-metadata composition root: the one place adapters are built and wired to the use cases."""

from __future__ import annotations

import asyncio
import logging
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from fastapi import FastAPI
from prometheus_client import Counter

from core_metadata import __version__
from core_metadata.api import auth, devices, profiles, services, uom, watchers
from core_metadata.api.common import Managers
from core_metadata.application.devices import DeviceManager
from core_metadata.application.ports import MetadataStore
from core_metadata.application.profiles import ProfileManager
from core_metadata.application.services import DeviceServiceManager
from core_metadata.application.users import LoginPolicy, UserManager, UserStore
from core_metadata.application.watchers import ProvisionWatcherManager
from core_metadata.infrastructure.redis_store import RedisMetadataStore
from core_metadata.infrastructure.users import Argon2Hasher, RedisUserStore
from core_metadata.messaging.system_events import BusSystemEventPublisher
from core_metadata.messaging.validation import BusDeviceValidator
from core_metadata.settings import CoreMetadataSettings
from edgeplane_common.auth import LocalKeys, TokenIssuer, TokenVerifier, load_or_create_signing_key
from edgeplane_common.bootstrap import ServiceBootstrap
from edgeplane_common.bus import MessageBus
from edgeplane_common.bus.nats import NatsMessageBus
from edgeplane_common.http import create_service_app, serve
from edgeplane_common.memory import map_large_blocks
from edgeplane_common.redis import connect_redis, create_redis
from edgeplane_common.safe_yaml import YamlLimits

log = logging.getLogger(__name__)


def load_uom(path: str | None) -> dict[str, Any]:
    text = Path(path).read_text() if path else resources.files("core_metadata").joinpath("res/uom.yaml").read_text()
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def create_app(
    settings: CoreMetadataSettings | None = None,
    *,
    store: MetadataStore | None = None,
    bus: MessageBus | None = None,
    users: UserStore | None = None,
) -> FastAPI:
    """Adapters not given are built from `settings` and owned by the app (connected at start, closed at
    stop); a given `store`, `bus` or `users` is the caller's: used as it is, never connected or closed here.
    `users` (secure mode) defaults to Redis, on the metadata store's connection settings."""
    settings = settings or CoreMetadataSettings()
    # Start order: Redis, then NATS; teardown is the reverse.
    boot = ServiceBootstrap(settings.service_name, started_message=f"core-metadata ready on port {settings.http.port}")
    redis_client = None
    if store is None:
        redis_client = create_redis(settings.redis, settings.tls)
        store = RedisMetadataStore(redis_client)
        connect_redis(boot, redis_client, close=store.close)
    sec = settings.security
    user_manager: UserManager | None = None
    if sec.enabled:
        if not sec.signing_key_file:
            raise ValueError("secure mode needs CORE_METADATA_SECURITY__SIGNING_KEY_FILE (created when missing)")
        issuer = TokenIssuer(load_or_create_signing_key(Path(sec.signing_key_file)))
        if users is None:
            if redis_client is None:
                redis_client = create_redis(settings.redis, settings.tls)
                connect_redis(boot, redis_client, close=redis_client.aclose)
            users = RedisUserStore(redis_client)
        login_failures = Counter("edgeplane_login_failures_total", "Failed logins by reason", ["reason"], registry=None)
        user_manager = UserManager(
            users,
            Argon2Hasher(),
            issuer,
            policy=LoginPolicy(
                token_ttl=sec.token_ttl,
                failure_delay=sec.login_failure_delay,
                max_failures=sec.login_max_failures,
                window=sec.login_failure_window,
            ),
            on_failure=lambda reason: login_failures.labels(reason).inc(),
        )
        if sec.admin_password is not None:
            admin, password, manager = sec.admin_user, sec.admin_password.get_secret_value(), user_manager

            async def first_admin() -> None:
                if await manager.ensure_admin(admin, password):
                    log.info("created the first admin user %r", admin)

            boot.step("first admin", first_admin)
    if bus is None:
        bus = NatsMessageBus(settings.nats, name=settings.service_name, tls=settings.tls)
        boot.connect("NATS", bus.connect, close=bus.close)

    lock = asyncio.Lock()
    publisher = BusSystemEventPublisher(bus)
    validator = BusDeviceValidator(
        bus,
        timeout=settings.validation.timeout,
        reject_when_unavailable=settings.validation.reject_when_unavailable,
    )
    common: dict[str, Any] = {"lock": lock, "max_result_count": settings.max_result_count}
    managers = Managers(
        devices=DeviceManager(store, publisher, validator, **common),
        profiles=ProfileManager(
            store,
            publisher,
            strict_changes=settings.strict_profile_changes,
            max_resources=settings.max_profile_resources,
            **common,
        ),
        services=DeviceServiceManager(store, publisher, **common),
        watchers=ProvisionWatcherManager(store, publisher, **common),
    )

    secure_routers = [auth.router] if user_manager is not None else []
    app = create_service_app(
        settings,
        version=__version__,
        title="edgeplane core-metadata",
        routers=[
            *secure_routers,
            devices.router,
            profiles.router,
            profiles.resource_router,
            services.router,
            watchers.router,
            uom.router,
        ],
        bootstrap=boot,
        bus=bus,
        # The issuer verifies with its own key, and knows the users: a removed user's token stops here at once.
        verifier=TokenVerifier(LocalKeys({issuer.kid: issuer.public_key})) if user_manager is not None else None,
        revoked=user_manager.revoked if user_manager is not None else None,
    )
    if user_manager is not None:
        app.state.metrics_registry.register(login_failures)
        app.state.users = user_manager
        app.state.token_issuer = issuer
    app.state.managers = managers
    app.state.yaml_limits = YamlLimits(
        max_bytes=settings.max_upload_size,
        max_nodes=settings.max_profile_nodes,
        max_resources=settings.max_profile_resources,
    )
    app.state.uom = load_uom(settings.uom_file)
    return app


def run() -> None:
    settings = CoreMetadataSettings()
    if settings.security.enabled:
        map_large_blocks()  # each password hash's 19 MiB goes back to the OS afterwards
    serve(settings, lambda: create_app(settings))
