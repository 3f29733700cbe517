"""HTTPExport (EdgeX's parameters): POST or PUT each payload to `Url` (placeholders filled from the context),
with `HttpRequestHeaders` (a JSON object or a mapping) and EdgeX's secret header (`HeaderName` whose value is
`SecretValueKey` of `SecretName` in the secret store, read at each send so a rotated secret is used at once).
2xx is success; 408, 429 and 5xx are transient (Retry-After honoured); any other 4xx is a refusal that
retrying will not fix."""

from __future__ import annotations

import httpx
import orjson

from app_services.application.data import CONTENT_TYPES, Context
from app_services.application.errors import ExportFailed, TargetNotConfigured
from app_services.application.functions.codec import SecretSource
from app_services.application.params import Params
from app_services.application.placeholders import compile_placeholders
from app_services.infrastructure.http_status import is_refusal, retry_after
from edgeplane_common.settings import redact_url


class HttpExporter:
    name = "HTTPExport"
    accepts = frozenset({"json", "event", "xml", "lp", "bytes"})
    max_batch = 1

    def __init__(self, p: Params, secrets: SecretSource) -> None:
        url = p.text("Url")
        if not url:
            raise TargetNotConfigured("no HTTP export URL (the Url parameter)")
        self.url = compile_placeholders(url, "HTTPExport Url", url=True)
        self.target = f"HTTP {redact_url(url)}"
        self.method = p.choice("Method", ("post", "put"), "post").upper()
        self.mime_type = p.text("MimeType")
        headers = p.text("HttpRequestHeaders")
        self.headers: dict[str, str] = {}
        if headers:
            try:
                parsed = orjson.loads(headers)
            except orjson.JSONDecodeError:
                raise p.fail("HttpRequestHeaders", 'must be a JSON object ({"Name": "value"})') from None
            if not isinstance(parsed, dict):
                raise p.fail("HttpRequestHeaders", 'must be a JSON object ({"Name": "value"})')
            self.headers = {str(k): str(v) for k, v in parsed.items()}
        self.header_name = p.text("HeaderName")
        self.secret_name = p.text("SecretName")
        self.secret_key = p.text("SecretValueKey")
        if bool(self.header_name) != bool(self.secret_name) or (self.secret_name and not self.secret_key):
            raise p.fail("HeaderName", "SecretName and SecretValueKey go together (a secret header)")
        self.secrets = secrets
        self.timeout_s = p.duration("Timeout", "30s")
        for ignored in ("PersistOnError", "ContinueOnSendError", "ReturnInputData"):
            p.flag(ignored, False)  # EdgeX's; store-and-forward is the pipeline's StoreAndForward here
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self.timeout_s)

    async def export(self, ctx: Context, payload: bytes, count: int) -> None:
        if self._client is None:
            await self.start()
        assert self._client is not None
        headers = {"Content-Type": self.mime_type or ctx.content_type or CONTENT_TYPES[ctx.kind], **self.headers}
        if self.header_name and self.secret_name and self.secret_key:
            try:
                value = self.secrets.get(self.secret_name).get(self.secret_key)
            except Exception:
                value = None
            if value is None:
                raise ExportFailed(f"secret {self.secret_name!r} (key {self.secret_key!r}) is not in the secret store")
            headers[self.header_name] = value
        url = self.url(ctx)
        try:
            response = await self._client.request(self.method, url, content=payload, headers=headers)
        except httpx.HTTPError as err:
            raise ExportFailed(f"{type(err).__name__}: {err}") from err
        status = response.status_code
        if 200 <= status < 300:
            return
        raise ExportFailed(
            f"HTTP {status} from {redact_url(url)}: {response.text[:300]}",
            permanent=is_refusal(status),
            retry_after=retry_after(response.headers),
        )

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


__all__ = ["HttpExporter"]
