"""Repeated identical errors are logged once per interval with a count; log files are appended, never
truncated (edgeplane_common.logging)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from edgeplane_common.logging import JsonFormatter, RepeatThrottle, configure_logging, open_process_log


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def setup(clock: Clock) -> Iterator[tuple[logging.Logger, list[logging.LogRecord], RepeatThrottle]]:
    """A logger whose handler keeps the records that pass, throttled with a 60 s window."""
    kept: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            kept.append(record)

    handler = Keep()
    throttle = RepeatThrottle(handler.handle, interval=60, clock=clock)
    handler.addFilter(throttle)
    logger = logging.getLogger("test.throttle")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    yield logger, kept, throttle
    logger.handlers[:] = []
    logger.propagate = True


def _fail(logger: logging.Logger, batch: int) -> None:
    try:
        raise ConnectionError("Connection refused")
    except ConnectionError:
        logger.exception("consumer failed on a batch of %d", batch)


def test_first_error_in_full_then_copies_counted_and_summarised(
    setup: tuple[logging.Logger, list[logging.LogRecord], RepeatThrottle], clock: Clock
) -> None:
    logger, kept, _ = setup
    for i in range(58):  # one a second, as a redelivery loop during a Redis outage
        _fail(logger, i)
        clock.now += 1
    assert len(kept) == 1
    assert kept[0].exc_info is not None, "the first occurrence keeps its traceback"

    clock.now += 5
    logger.info("writes succeed again")  # any later record reports the closed window first
    assert [r.getMessage() for r in kept[1:]] == [
        "consumer failed on a batch of 57 (repeated 57 times in the last 60 s)",
        "writes succeed again",
    ]
    summary = kept[1]
    assert summary.levelno == logging.ERROR
    assert summary.exc_info is None
    line = orjson.loads(JsonFormatter("core-data").format(summary))
    assert line["repeated"] == 57
    assert "exc" not in line
    assert "_throttle_summary" not in line


def test_after_the_window_the_error_is_logged_in_full_again(
    setup: tuple[logging.Logger, list[logging.LogRecord], RepeatThrottle], clock: Clock
) -> None:
    logger, kept, _ = setup
    _fail(logger, 1)
    _fail(logger, 2)
    clock.now += 61
    _fail(logger, 3)
    assert [(r.getMessage(), r.exc_info is not None) for r in kept] == [
        ("consumer failed on a batch of 1", True),
        ("consumer failed on a batch of 2 (repeated once in the last 60 s)", False),
        ("consumer failed on a batch of 3", True),
    ]


def test_different_messages_levels_and_exception_types_are_separate(
    setup: tuple[logging.Logger, list[logging.LogRecord], RepeatThrottle],
) -> None:
    logger, kept, _ = setup
    for _ in range(3):
        _fail(logger, 1)
        logger.warning("consumer failed on a batch of %d", 1)
        logger.error("other %s", "thing")
        try:
            raise TimeoutError
        except TimeoutError:
            logger.exception("consumer failed on a batch of %d", 1)
        logger.info("request handled")  # below WARNING: never throttled
    assert len(kept) == 4 + 3


def test_flush_reports_pending_counts(
    setup: tuple[logging.Logger, list[logging.LogRecord], RepeatThrottle],
) -> None:
    logger, kept, throttle = setup
    for _ in range(4):
        logger.error("redis down")
    throttle.flush()
    assert [r.getMessage() for r in kept] == ["redis down", "redis down (repeated 3 times in the last 0 s)"]
    throttle.flush()
    assert len(kept) == 2


def test_tracked_messages_are_bounded(clock: Clock) -> None:
    kept: list[logging.LogRecord] = []
    throttle = RepeatThrottle(kept.append, interval=60, clock=clock, max_keys=2)
    records = [logging.makeLogRecord({"msg": f"m{i}", "levelno": logging.ERROR}) for i in range(3)]
    assert [throttle.filter(r) for r in records + records] == [True, True, True, False, False, True]


def test_configure_logging_throttles_every_service(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("svc", json=True)
        log = logging.getLogger("test.configured")
        for _ in range(5):
            log.error("store unreachable")
        logging.getLogger().handlers[0].close()  # as logging.shutdown does at exit
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["msg"] for line in lines] == [
        "store unreachable",
        "store unreachable (repeated 4 times in the last 0 s)",
    ]


def test_process_log_appends_with_a_marker_and_rotates_when_large(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "core-data.log"
    with open_process_log(path, "core-data started") as log:
        log.write(b"Traceback: the first run's crash\n")
    with open_process_log(path, "core-data restarted") as log:
        log.write(b"second run\n")
    text = path.read_text()
    assert "the first run's crash" in text
    assert "second run" in text
    assert text.count("-----") == 4
    assert "core-data restarted" in text

    for i in range(4):
        with open_process_log(path, f"run {i}", max_bytes=10, backups=2) as log:
            log.write(f"output of run {i}\n".encode())
    assert sorted(p.name for p in path.parent.iterdir()) == ["core-data.log", "core-data.log.1", "core-data.log.2"]
    assert "output of run 3" in path.read_text()
    assert "output of run 2" in path.with_name("core-data.log.1").read_text()
    assert "output of run 1" in path.with_name("core-data.log.2").read_text()
