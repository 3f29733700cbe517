"""edgeplane core-data."""

__version__ = "0.1.0"
