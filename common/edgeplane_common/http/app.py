"""The HTTP app factory every service uses: common routes, errors as EdgeX BaseResponse, middleware."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from pydantic import Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from edgeplane_common import API_VERSION, EDGEX_VERSION
from edgeplane_common.auth.claims import LazyVerifier, Verifier
from edgeplane_common.auth.roles import RoutePolicy
from edgeplane_common.bootstrap import Readiness, ServiceBootstrap
from edgeplane_common.bus import MessageBus
from edgeplane_common.bus.metrics import BusCollector
from edgeplane_common.errors import EdgeError
from edgeplane_common.http.middleware import Metrics, Revoked, ServiceMiddleware
from edgeplane_common.http.openapi import error_responses
from edgeplane_common.http.responses import EdgeJSONResponse, error_body, error_response, json_response
from edgeplane_common.logging import configure_logging
from edgeplane_common.models.base import BaseRequest, BaseResponse, ContractModel
from edgeplane_common.secrets import SecretStore, open_secret_store
from edgeplane_common.settings import ServiceSettings, TlsSettings
from edgeplane_common.tls import TlsConfigError, check_server_files, client_verify, serves_https

if TYPE_CHECKING:  # loaded in secure mode only (PyJWT, cryptography)
    from edgeplane_common.auth import TokenVerifier

log = logging.getLogger(__name__)
API_PREFIX = "/api/v3"


class PingResponse(ContractModel):
    api_version: str = API_VERSION
    timestamp: str
    service_name: str


class HealthCheck(ContractModel):
    status: str = Field(description="up or down")
    message: str


class HealthResponse(ContractModel):
    api_version: str = API_VERSION
    service_name: str
    status: str = Field(description="up when every check is up, else down")
    checks: dict[str, HealthCheck]


class VersionResponse(ContractModel):
    api_version: str = API_VERSION
    version: str = Field(EDGEX_VERSION, description="The EdgeX release whose API this service implements")
    service_name: str
    service_version: str = Field(description="This service's own (edgeplane) release")


class ConfigResponse(ContractModel):
    api_version: str = API_VERSION
    service_name: str
    config: dict[str, Any]


class SecretDataKeyValue(ContractModel):
    key: str = Field(min_length=1)
    value: str


class SecretRequest(BaseRequest):
    secret_name: str = Field(min_length=1)
    secret_data: list[SecretDataKeyValue] = Field(min_length=1)


def validation_message(exc: RequestValidationError) -> str:
    """Say what is wrong in the user's terms: where (body[0].device.name) and why."""
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        where = ".".join(loc)
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if not where and err.get("type") == "list_type":
            msg = "the request body must be a JSON array of request objects"
        elif not where:
            where = "request body"
        if err.get("type") == "json_invalid":
            msg = f"request body is not valid JSON ({err.get('ctx', {}).get('error', msg)})"
            where = ""
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts) or "invalid request"


def create_service_app(
    settings: ServiceSettings,
    *,
    version: str,
    title: str,
    routers: list[APIRouter],
    bootstrap: ServiceBootstrap | None = None,
    bus: MessageBus | None = None,
    collectors: Sequence[Collector] = (),
    verifier: Verifier | None = None,
    revoked: Revoked | None = None,
    self_guarded: Callable[[str], bool] | None = None,
) -> FastAPI:
    """The service's app; `bootstrap` is its lifecycle (its readiness is `app.state.readiness`, served by
    `/api/v3/health`). With `bus`, readiness probes the bus ("NATS") and `/metrics` shows its counters.
    `version` is the service's own release (`serviceVersion` of /api/v3/version, whose `version` is the EdgeX
    release). In secure mode (`settings.security.enabled`) requests need a token `verifier` accepts (default:
    one using the keys core-metadata publishes), with a role the route allows, and `revoked` has a last say;
    paths for which `self_guarded` is true are the app's own to guard (the console's pages and login).
    The secret store (`app.state.secrets`) is the encrypted one when `security.secret_key_file` is set: it is
    then loaded as the first start step (a bootstrap is made when none is given)."""
    secrets = open_secret_store(settings)
    if secrets.encrypted:
        from edgeplane_common.redis import REDIS_RETRYABLE, START_WAIT_S  # only then: open mode needs no redis

        bootstrap = bootstrap or ServiceBootstrap(settings.service_name)
        assert secrets.backend is not None
        where = f"secret store ({secrets.backend.where})"
        bootstrap.connect(
            where, secrets.load, close=secrets.close, timeout=START_WAIT_S, retry_on=REDIS_RETRYABLE, first=True
        )
        bootstrap.readiness.probe(where, secrets.problem)
    else:
        log.info("secrets: %s", secrets.describe())
    app = FastAPI(
        title=title,
        version=version,
        lifespan=bootstrap.lifespan if bootstrap is not None else None,
        default_response_class=EdgeJSONResponse,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    readiness = bootstrap.readiness if bootstrap is not None else Readiness()
    app.state.readiness = readiness
    app.state.secrets = secrets
    registry = CollectorRegistry()
    if bus is not None:
        readiness.probe("NATS", bus.problem)
        registry.register(BusCollector(bus))
    for collector in collectors:  # the service's own metrics, read at scrape time
        registry.register(collector)
    app.state.metrics_registry = registry
    token = settings.http.auth_token.get_secret_value() if settings.http.auth_token else None
    policy = RoutePolicy()
    if settings.security.enabled and verifier is None:
        verifier = _jwks_verifier(settings)
    app.add_middleware(
        ServiceMiddleware,
        token=token,
        max_body=settings.http.max_request_size,
        metrics=Metrics(registry),
        verifier=verifier if settings.security.enabled else None,
        policy=policy,
        revoked=revoked,
        self_guarded=self_guarded,
    )

    @app.exception_handler(EdgeError)
    async def _edge_error(_: Request, exc: EdgeError) -> Response:
        if exc.status_code >= 500:
            log.warning("request failed: %s", exc.message)
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> Response:
        return error_body(400, validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = "no such route; see /api/v3/openapi.json for the API"
        return error_body(exc.status_code, message)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Response:
        log.exception("unhandled error")
        return error_body(500, f"internal error: {type(exc).__name__}")

    common = APIRouter(prefix=API_PREFIX, tags=["system"])

    @common.get("/ping", response_model=PingResponse)
    async def ping() -> Response:
        now = time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime())
        return json_response(PingResponse(timestamp=now, service_name=settings.service_name))

    @common.get("/health", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
    async def health() -> Response:
        """Readiness: 200 when every dependency is up, else 503; each check with its message. Unlike ping
        (liveness, always 200), this is what a container healthcheck or load balancer should ask."""
        report = await readiness.report()
        up = all(r.up for r in report.values())
        body = HealthResponse(
            service_name=settings.service_name,
            status="up" if up else "down",
            checks={n: HealthCheck(status="up" if r.up else "down", message=r.message) for n, r in report.items()},
        )
        return json_response(body, 200 if up else 503)

    @common.get("/version", response_model=VersionResponse)
    async def get_version() -> Response:
        return json_response(VersionResponse(service_name=settings.service_name, service_version=version))

    @common.get("/config", response_model=ConfigResponse)
    async def get_config() -> Response:
        return json_response(ConfigResponse(service_name=settings.service_name, config=settings.redacted()))

    @common.post("/secret", status_code=201, response_model=BaseResponse, responses=error_responses(413, 503))
    async def post_secret(body: SecretRequest) -> Response:
        # Never logged; encrypted before it reaches Redis (or kept in memory only, in open mode).
        store: SecretStore = app.state.secrets
        await store.put(body.secret_name, {kv.key: kv.value for kv in body.secret_data})
        return json_response(BaseResponse(request_id=body.request_id, status_code=201), 201)

    app.include_router(common)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    _document_400_not_422(app)
    return app


def _jwks_verifier(settings: ServiceSettings) -> LazyVerifier:
    """Tokens checked with the keys core-metadata publishes. PyJWT and cryptography (~9 MiB) load with the first
    request that carries a token: the console's API may never get one. The URL and the CA are checked now."""
    url, verify = _jwks_url(settings), client_verify(settings.tls.ca_file)

    def build() -> TokenVerifier:
        from edgeplane_common.auth import keys, tokens

        return tokens.TokenVerifier(keys.JwksKeys(url, verify=verify))

    return LazyVerifier(build)


def _jwks_url(settings: ServiceSettings) -> str:
    if settings.security.jwks_url:
        return settings.security.jwks_url
    metadata_url = getattr(settings, "metadata_url", None)
    if not isinstance(metadata_url, str):
        raise ValueError("secure mode needs SECURITY__JWKS_URL: where core-metadata publishes the token keys")
    return metadata_url.rstrip("/") + f"{API_PREFIX}/key"


def _document_400_not_422(app: FastAPI) -> None:
    """Our validation errors answer 400 (EdgeX), never FastAPI's 422: say so in the OpenAPI document."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            bad_request = {
                "description": "Bad request: the message says what is wrong",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BaseResponse"}}},
            }
            for ops in schema.get("paths", {}).values():
                for op in ops.values():
                    responses = op.get("responses", {})
                    if responses.pop("422", None) is not None:
                        responses.setdefault("400", bad_request)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.pop("HTTPValidationError", None)
            components.pop("ValidationError", None)
            components.setdefault("BaseResponse", BaseResponse.model_json_schema(by_alias=True))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def server_config(app: FastAPI, host: str, port: int, tls: TlsSettings | None = None) -> uvicorn.Config:
    """How every service is served: HTTPS only when `tls` names a certificate and key (check them first with
    `check_server_files`: uvicorn's own error is a traceback). uvicorn's own `date`/`server` headers are lower
    case; the middleware sends a canonical `Date` itself, and no `Server` header (EdgeX sends none)."""
    https = tls is not None and serves_https(tls)
    # h11 and asyncio named, not uvicorn's "auto": with httptools installed (NiceGUI brings uvicorn[standard])
    # auto would switch parsers, and httptools' protocol lower-cases the header names the middleware spells.
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        date_header=False,
        http="h11",
        loop="asyncio",
        ssl_certfile=tls.cert_file if https and tls is not None else None,
        ssl_keyfile=tls.key_file if https and tls is not None else None,
    )


def serve(settings: ServiceSettings, build: Callable[[], FastAPI]) -> None:
    """A service main: JSON logging first (so start-up is logged in the same format), the TLS files checked
    (a bad one ends the service with one line naming it, before anything connects), then uvicorn."""
    configure_logging(settings.service_name, settings.log_level, json=settings.log_json)
    try:
        check_server_files(settings.tls)
        if settings.tls.ca_file:
            client_verify(settings.tls.ca_file)
    except TlsConfigError as err:
        log.error("cannot start: %s", err)  # one line, in the service's log format; no traceback
        raise SystemExit(1) from None
    config = server_config(build(), settings.http.host, settings.http.port, settings.tls)
    uvicorn.Server(config).run()
