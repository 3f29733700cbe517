"""InfluxDBExport: line protocol through influxdb-client's v2 write API (`/api/v2/write`), one write per
batch. The target comes from the parameters, else from influxdb-client's own environment names
(INFLUXDB_V2_URL, INFLUXDB_V2_ORG, INFLUXDB_V2_TOKEN) plus INFLUXDB_V2_BUCKET. No URL: the export is not
configured (the instance is disabled). The library call is only "write this batch": batching, retries
(Retry-After) and the durable buffer are the runtime's."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from app_services.application.data import Context
from app_services.application.errors import ExportFailed, TargetNotConfigured
from app_services.application.functions.codec import SecretSource
from app_services.application.functions.transforms import line_protocol_options
from app_services.application.params import Params
from app_services.infrastructure.http_status import is_refusal, retry_after
from edgeplane_common.settings import redact_url

DEFAULT_BATCH = 5000


class InfluxExporter:
    name = "InfluxDBExport"
    accepts = frozenset({"lp"})

    def __init__(
        self,
        p: Params,
        environ: Mapping[str, str],
        secrets: SecretSource,
    ) -> None:
        url = p.text("Url") or environ.get("INFLUXDB_V2_URL", "").strip()
        if not url:
            raise TargetNotConfigured("no InfluxDB URL: set INFLUXDB_V2_URL (or the Url parameter)")
        self.url = url
        self.org = p.text("Org") or environ.get("INFLUXDB_V2_ORG") or "edgeplane"
        self.bucket = p.text("Bucket") or environ.get("INFLUXDB_V2_BUCKET") or "edgeplane"
        self._token = p.text("Token") or environ.get("INFLUXDB_V2_TOKEN") or ""
        self._secret_name = p.text("SecretName")
        self._secret_key = p.text("SecretValueKey", "token") or "token"
        self._secrets = secrets
        self.timeout_s = p.duration("Timeout", "10s")
        self.max_batch = p.integer("BatchSize", DEFAULT_BATCH, minimum=1)
        self.line_protocol = line_protocol_options(p)
        self.target = f"InfluxDB {redact_url(self.url)} bucket {self.bucket}"
        self._client: InfluxDBClientAsync | None = None

    def _token_now(self) -> str:
        if self._secret_name:
            try:
                return self._secrets.get(self._secret_name).get(self._secret_key, self._token)
            except Exception:
                return self._token
        return self._token

    def _connect(self) -> InfluxDBClientAsync:
        if self._client is None:
            self._client = InfluxDBClientAsync(
                url=self.url, token=self._token_now(), org=self.org, timeout=int(self.timeout_s * 1000)
            )
        return self._client

    async def start(self) -> None:
        return None

    async def export(self, ctx: Context, payload: bytes, count: int) -> None:
        client = self._connect()
        try:
            await client.write_api().write(self.bucket, self.org, payload, write_precision=WritePrecision.NS)  # type: ignore[arg-type]
        except ApiException as err:
            status = int(err.status or 0)
            message = f"HTTP {status} {(err.reason or '').strip()} {(err.body or '')!s:.300}".strip()
            if status in (401, 403):
                await self._reset()  # a rotated token (secret store) is read on the next try
            raise ExportFailed(
                message,
                permanent=is_refusal(status),
                retry_after=retry_after(err.headers),
            ) from err
        except (TimeoutError, aiohttp.ClientError, OSError) as err:
            raise ExportFailed(f"{type(err).__name__}: {err}") from err

    async def _reset(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        await self._reset()


__all__ = ["DEFAULT_BATCH", "InfluxExporter"]
