"""edgeplane device-virtual: simulated devices whose resources read random values within their profile's
range, or the value last written (as EdgeX's device-virtual)."""

__version__ = "0.1.0"
