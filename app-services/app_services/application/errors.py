"""The app service's own failures (use cases raise these; adapters translate library exceptions into them)."""

from __future__ import annotations


class PipelineError(Exception):
    """A pipeline configuration that cannot run. `path` locates it in the file (keys and list positions), so
    the loader can name the line."""

    def __init__(self, message: str, path: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


class TargetNotConfigured(Exception):
    """An export whose target (URL, broker) is not set: the instance is disabled, not failed."""


class ExportFailed(Exception):
    """An export that did not go through. `permanent`: the target refused the data itself (4xx such as a bad
    token): retrying as is will not help, so it is retried at the slowest pace and reported, never dropped.
    `retry_after`: seconds the target asked us to wait (HTTP Retry-After)."""

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after


__all__ = ["ExportFailed", "PipelineError", "TargetNotConfigured"]
