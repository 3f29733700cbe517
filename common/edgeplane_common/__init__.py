"""edgeplane shared library: EdgeX contracts, errors, message bus, Redis, settings, logging, HTTP."""

API_VERSION = "v3"
__version__ = "0.1.0"
