"""`python -m edgeplane_console`: the console's process."""

import asyncio.sslproto
import sys

# Libraries this process never uses, marked absent before NiceGUI is imported: python-socketio's package
# imports its Redis/Valkey managers and its clients (aiohttp, requests) whenever those are installed, and
# httpx its command-line client (rich) when rich is there (it is in the workspace, for the launcher); each
# one found stays in memory (~22 MiB RSS here, a fifth of the console). The console talks to the services
# over REST and NATS only, never to a store, is a socket.io server, not a client, and has no httpx command
# line; socketio, engineio and httpx treat the ImportError as "not installed". Likewise pygments, which
# httpx's command line imports before rich (the console draws no highlighted code: NiceGUI's ui.markdown and
# ui.code are not used), and watchfiles, which uvicorn imports for --reload and replaces by its stat-based
# reloader when absent (the console never reloads): ~1 MiB more. Only in the console's own process: a test
# that imports the console next to the services keeps them.
UNUSED = ("redis", "valkey", "aiohttp", "requests", "rich", "pygments", "watchfiles")
for _name in UNUSED:
    sys.modules.setdefault(_name, None)  # type: ignore[arg-type]

# asyncio gives each TLS connection a 256 KiB read buffer, zero-filled at once; the console holds ~20 (the
# browser's, one per service it polls, NATS): 64 KiB still takes four 16 KiB TLS records per read.
if isinstance(getattr(asyncio.sslproto.SSLProtocol, "max_size", None), int):
    asyncio.sslproto.SSLProtocol.max_size = 64 * 1024

from edgeplane_console.main import run  # noqa: E402

run()
