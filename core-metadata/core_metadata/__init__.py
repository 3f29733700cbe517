"""edgeplane core-metadata: device profiles, devices, device services and provision watchers."""

__version__ = "0.1.0"
