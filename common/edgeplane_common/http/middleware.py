"""One pure-ASGI middleware for what every request needs: correlation id, bearer token, body limit,
content-type check, canonical response header names and Prometheus metrics. Pure ASGI keeps the
per-request cost to a few dict lookups."""

from __future__ import annotations

import hmac
import time
import uuid
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edgeplane_common.auth.claims import Principal, Verifier
from edgeplane_common.auth.roles import RoutePolicy
from edgeplane_common.errors import EdgeError
from edgeplane_common.http.responses import error_body
from edgeplane_common.logging import correlation_id

CORRELATION_HEADER = b"x-correlation-id"
CANONICAL_CORRELATION_HEADER = b"X-Correlation-Id"
OPEN_PATHS = frozenset({"/api/v3/ping", "/api/v3/health"})
"""Open without the bearer token: liveness and readiness, which container healthchecks ask without one."""
SECURE_OPEN_PATHS = OPEN_PATHS | {"/api/v3/key", "/api/v3/auth/login"}
"""Also open in secure mode: the public keys tokens are verified with, and the login that issues them."""
MAX_AUTHORIZATION = 8192
"""A longer Authorization header is refused before any parsing."""
Revoked = Callable[[Principal], Awaitable[str | None]]
"""Why a verified token no longer counts (its user was removed...), or None; core-metadata, which holds the
users, passes one."""
_BODY_TYPES = (
    b"application/json",
    b"multipart/form-data",
    b"application/x-yaml",
    b"application/yaml",
    b"text/yaml",
    b"application/cbor",
)


_CANONICAL: dict[bytes, bytes] = {}


def canonical_header(name: bytes) -> bytes:
    """Go's CanonicalMIMEHeaderKey (`content-type` -> `Content-Type`), as EdgeX's net/http sends them.

    Header names are case-insensitive by RFC 9110, but EdgeX clients exist that compare them exactly
    (EdgeX's own TAF suites test `'Content-Type' in headers`); Starlette emits lower case. h11 sends the
    names as given, so spelling them here is enough."""
    found = _CANONICAL.get(name)
    if found is None:
        found = b"-".join(part[:1].upper() + part[1:].lower() for part in name.split(b"-"))
        if len(_CANONICAL) < 256:  # header names come from our own code: a small, fixed set
            _CANONICAL[name] = found
    return found


_date_cache: tuple[int, bytes] = (0, b"")


def http_date() -> bytes:
    """The `Date` header value, formatted once per second."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True).encode("ascii"))
    return _date_cache[1]


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests by method, route and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            ["method", "route"],
            registry=registry,
        )


class ServiceMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None,
        max_body: int,
        metrics: Metrics,
        verifier: Verifier | None = None,
        policy: RoutePolicy | None = None,
        revoked: Revoked | None = None,
        self_guarded: Callable[[str], bool] | None = None,
    ) -> None:
        """`verifier` switches secure mode on: signed tokens and roles (`policy`) instead of `token`.
        `self_guarded` names the paths the app guards itself in secure mode (the console's pages, behind its
        own login), which then pass without a bearer token."""
        self.app = app
        self.token = f"Bearer {token}".encode() if token else None
        self.verifier = verifier
        self.policy = policy or RoutePolicy()
        self.revoked = revoked
        self.self_guarded = self_guarded
        self.max_body = max_body
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        cid = headers.get(CORRELATION_HEADER, b"").decode("latin-1") or str(uuid.uuid4())
        token_ctx = correlation_id.set(cid)
        start = time.perf_counter()
        status_holder = [500]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                message["headers"] = [
                    *((canonical_header(k), v) for k, v in message.get("headers", ())),
                    (CANONICAL_CORRELATION_HEADER, cid.encode("latin-1")),
                    (b"Date", http_date()),
                ]
            await send(message)

        try:
            rejection = await self._authorize(scope, headers) if self.verifier is not None else None
            if rejection is None:
                rejection = self._reject(scope, headers)
            if rejection is not None:
                await rejection(scope, receive, send_wrapper)
                return
            received = 0

            async def limited_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body:
                        # FastAPI re-raises HTTPException from body reading; the app renders it as 413.
                        raise HTTPException(413, self._too_large_message())
                return message

            await self.app(scope, limited_receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            method = scope["method"]
            self.metrics.requests.labels(method, path, str(status_holder[0])).inc()
            self.metrics.latency.labels(method, path).observe(time.perf_counter() - start)
            correlation_id.reset(token_ctx)

    def _too_large_message(self) -> str:
        return f"request body exceeds the maximum of {self.max_body} bytes"

    async def _authorize(self, scope: Scope, headers: dict[bytes, bytes]) -> Any:
        """Secure mode: 401 unless a valid signed token comes with the request, 403 unless its role allows
        the request. The verified principal is left in `request.state.principal`."""
        assert self.verifier is not None
        path = scope["path"]
        if path in SECURE_OPEN_PATHS or (self.self_guarded is not None and self.self_guarded(path)):
            return None
        given = headers.get(b"authorization", b"")
        if not given:
            return error_body(401, "missing bearer token (Authorization: Bearer <token>); log in first")
        if len(given) > MAX_AUTHORIZATION:
            return error_body(401, "Authorization header is too long")
        scheme, _, token = given.partition(b" ")
        if scheme.lower() != b"bearer" or not token.strip():
            return error_body(401, "Authorization must be `Bearer <token>`")
        try:
            principal = await self.verifier.verify(token.strip().decode("latin-1"))
            reason = await self.revoked(principal) if self.revoked is not None else None
        except EdgeError as err:
            return error_body(err.status_code, err.message)
        if reason is not None:
            return error_body(401, reason)
        method = scope["method"]
        if not self.policy.loaded:
            self.policy.load_openapi(scope["app"].openapi())
        if not self.policy.allows(principal.role, method, path):
            needed = self.policy.needed(method, path)
            return error_body(403, f"role {principal.role!r} may not {method} {path}: it needs {needed!r}")
        scope.setdefault("state", {})["principal"] = principal
        return None

    def _reject(self, scope: Scope, headers: dict[bytes, bytes]) -> Any:
        if self.verifier is None and self.token is not None and scope["path"] not in OPEN_PATHS:
            given = headers.get(b"authorization", b"")
            if not hmac.compare_digest(given, self.token):
                return error_body(401, "missing or invalid bearer token (Authorization: Bearer <token>)")
        if scope["method"] in ("POST", "PUT", "PATCH"):
            length = headers.get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self.max_body:
                return error_body(413, self._too_large_message())
            ctype = headers.get(b"content-type")
            if (
                ctype
                and not ctype.split(b";")[0].strip().lower().startswith(_BODY_TYPES)
                and not ctype.split(b";")[0].strip().lower().endswith(b"+json")
            ):
                return error_body(
                    415,
                    f"unsupported Content-Type {ctype.decode('latin-1')!r}: send application/json"
                    " (or multipart/form-data for file uploads)",
                )
        return None
