"""edgeplane device-opcua: OPC UA device service (EdgeX device-opc-ua compatible) and OPC UA server simulator."""

__version__ = "0.1.0"
