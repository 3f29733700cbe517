"""What every page of the console reads: the gateway client, the live values, the rules' firings and the
last status snapshot, refreshed in the background (one poll for every open tab)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from edgeplane_common.clients.gateway import GatewayClient
from edgeplane_console.application.live import Firings, LiveHub
from edgeplane_console.application.status import Snapshot, collect

log = logging.getLogger(__name__)


@dataclass
class ConsoleState:
    client: GatewayClient
    services: dict[str, str]
    """Base URL of each service whose health the overview shows."""
    app_service_urls: list[str]
    hub: LiveHub = field(default_factory=LiveHub)
    firings: Firings = field(default_factory=Firings)
    snapshot: Snapshot = field(default_factory=Snapshot)
    refresh_interval: float = 3.0
    chart_interval: float = 0.5
    history_limit: int = 2000
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    async def refresh(self) -> Snapshot:
        self.snapshot = await collect(self.client, self.services, self.app_service_urls)
        return self.snapshot

    def refresh_soon(self) -> None:
        """After a change made from a page: poll now rather than at the next interval."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:  # the loop must survive anything a service answers
                log.exception("status refresh failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.refresh_interval)
