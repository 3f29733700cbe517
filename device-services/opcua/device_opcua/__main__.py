from device_opcua.client_only import keep_server_out

keep_server_out()  # before asyncua is imported: its __init__ would load the server, which a client never uses

from device_opcua.main import run  # noqa: E402

run()
