"""core-data use cases; no fastapi, redis or nats imports here."""
