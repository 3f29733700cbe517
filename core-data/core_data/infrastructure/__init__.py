"""Adapters: the Redis event store (and the in-memory one for unit tests), the core-metadata client."""
