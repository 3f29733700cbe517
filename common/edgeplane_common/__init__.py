"""edgeplane shared library: EdgeX contracts, errors, message bus, Redis, settings, logging, HTTP."""

API_VERSION = "v3"
EDGEX_VERSION = "4.0.2"
"""The EdgeX release whose API the services implement: what `/api/v3/version` reports as `version`, since EdgeX
clients (and EdgeX's own test suites) gate features on it. Our own release is `serviceVersion` there."""
__version__ = "0.1.0"
