"""edgeplane app services: one configurable runtime (EdgeX app-service-configurable), run as instances."""

__version__ = "0.1.0"
