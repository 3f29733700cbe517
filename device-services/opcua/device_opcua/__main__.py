import sys

from device_opcua.client_only import keep_server_out

keep_server_out()  # before asyncua is imported: its __init__ would load the server, which a client never uses
# FastAPI imports pydantic.v1 (1.5 MiB) only to ask whether a route's types are v1 models, and takes an ImportError as
# "not installed": none of ours is. Only in this process (tests import the app next to other code).
sys.modules.setdefault("pydantic.v1", None)  # type: ignore[arg-type]

from device_opcua.main import run  # noqa: E402

run()
