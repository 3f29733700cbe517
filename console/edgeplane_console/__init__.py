"""edgeplane web console (EdgeX UI's port 4000): talks only to the services' public REST APIs and NATS."""

__version__ = "0.1.0"
