"""The rest action's HTTP client (httpx): one pooled client for every rule."""

from __future__ import annotations

import ssl

import httpx

from edgeplane_common.errors import CommunicationError, ServiceUnavailable


class HttpxSender:
    def __init__(self, ca_file: str | None = None) -> None:
        # A rest action may call a webhook on the internet or a service of this gateway: with `ca_file` (the
        # gateway's TLS__CA_FILE) both verify, the local CA added to the default store rather than replacing it.
        verify: ssl.SSLContext | bool = True
        if ca_file:
            verify = ssl.create_default_context()
            verify.load_verify_locations(cafile=ca_file)
        self.client = httpx.AsyncClient(follow_redirects=False, verify=verify)

    async def send(self, method: str, url: str, headers: dict[str, str], body: bytes | None, timeout: float) -> int:
        try:
            response = await self.client.request(method, url, headers=headers, content=body, timeout=timeout)
        except httpx.TimeoutException as err:
            raise ServiceUnavailable(f"{method} {url}: no answer within {timeout:g}s") from err
        except httpx.HTTPError as err:
            raise CommunicationError(f"{method} {url}: {err or type(err).__name__}") from err
        return response.status_code

    async def close(self) -> None:
        await self.client.aclose()
