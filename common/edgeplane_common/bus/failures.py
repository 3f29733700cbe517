"""A durable consumer's handler failures, logged once per streak and their recovery once (Home Assistant's
coordinator does the same): a handler that fails on every delivery, e.g. core-data's ingest while Redis is
down, would otherwise log a traceback per redelivery, about one a second, for as long as the outage lasts."""

from __future__ import annotations

import logging

from edgeplane_common.bus import is_transient


class FailureStreak:
    """The first failure of a streak is logged with its traceback (and the first of each other exception
    type, which is a different problem); the rest are counted silently until a handler call succeeds, which
    is logged once with the count."""

    def __init__(self, logger: logging.Logger, consumer: str) -> None:
        self._logger = logger
        self._consumer = consumer
        self.failures = 0
        self._seen: set[type[BaseException]] = set()

    def failed(self, err: BaseException, outcome: str) -> None:
        """The handler raised `err`; `outcome` says what happens to the message(s), e.g. "the message on
        x.y will be redelivered"."""
        self.failures += 1
        if type(err) in self._seen:
            return
        self._seen.add(type(err))
        # A failing dependency (transient) is a warning; a handler that breaks on a message is an error.
        level = logging.WARNING if is_transient(err) else logging.ERROR
        self._logger.log(
            level,
            "consumer %s: handler failed (%s: %s); %s (repeats are counted until the handler recovers)",
            self._consumer,
            type(err).__name__,
            err,
            outcome,
            exc_info=err,
        )

    def succeeded(self) -> None:
        if not self.failures:
            return
        self._logger.info(
            "consumer %s: handler succeeds again after %d failed attempt(s)", self._consumer, self.failures
        )
        self.failures = 0
        self._seen.clear()
