"""A TCP proxy for tests: forwards a loopback port to a server and can cut every connection at once (a network
drop as the client sees it) and refuse new ones until resumed, or stall: keep every socket open but lose the
bytes both ways (a silent drop: no FIN, no RST, nothing for the client to notice but silence)."""

from __future__ import annotations

import asyncio
import contextlib

from edgeplane_common.embedded import free_port


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, port: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.port = port or free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.accepting = True
        self.stalled = False
        self.connections = 0

    async def __aenter__(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
        await self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def cut(self, *, refuse: bool = False) -> None:
        """Close every open connection; with `refuse`, drop new ones too until `resume()`."""
        if refuse:
            self.accepting = False
        writers, self._writers = list(self._writers), set()
        for w in writers:
            with contextlib.suppress(Exception):
                w.transport.abort()

    def stall(self) -> None:
        """Forward nothing, in either direction, until `resume()`; sockets stay open, new ones are accepted."""
        self.stalled = True

    def resume(self) -> None:
        self.accepting = True
        self.stalled = False

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.accepting:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self._writers.update((writer, up_writer))
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer)),
            asyncio.create_task(self._pump(up_reader, writer)),
        ]
        self._tasks.update(pumps)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for task in pumps:
            task.cancel()
            self._tasks.discard(task)
        for w in (writer, up_writer):
            self._writers.discard(w)
            with contextlib.suppress(Exception):
                w.transport.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                if self.stalled:
                    continue  # lost on the way, as on a dead link
                writer.write(data)
                await writer.drain()
