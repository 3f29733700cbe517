"""edgeplane device-modbus: Modbus TCP, RTU and RTU-over-TCP device service."""

__version__ = "0.1.0"
