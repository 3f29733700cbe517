"""Keep asyncua's server out of device-opcua's process.

`import asyncua` (2.1) imports `asyncua.server` (the server, its address space and the PubSub stack: ~1.8 MiB
RSS here) to export `Server` and `EventGenerator` from its `__init__`; the client never uses them and asyncua
has no client-only import. `python -m device_opcua` calls `keep_server_out()` before anything imports asyncua:
`asyncua.server` is then a module without those classes' code, whose names raise if used. Only in the
service's own process: the simulator (`python -m device_opcua.sim`) and tests, which import the package
without this, keep the real server. An asyncua whose `__init__` takes more from `asyncua.server`, or whose
client imports from it, fails the service's start loudly (ImportError), never a request at run time;
tests/integration/test_device_opcua_process.py runs the service this way.
"""

from __future__ import annotations

import sys
import types

SERVER = "asyncua.server"
NAMES = ("Server", "EventGenerator")
"""What asyncua's `__init__` imports from `asyncua.server`."""


def _absent(name: str) -> type:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError(f"{SERVER}.{name} is not loaded in device-opcua's process (see {__name__})")

    return type(name, (), {"__init__": refuse, "__module__": SERVER})


def keep_server_out() -> None:
    """Stand in for `asyncua.server` before asyncua is imported; nothing if asyncua is imported already."""
    if "asyncua" in sys.modules or SERVER in sys.modules:
        return
    stub = types.ModuleType(SERVER, f"Not loaded in this process: see {__name__}.")
    for name in NAMES:
        setattr(stub, name, _absent(name))
    sys.modules[SERVER] = stub
