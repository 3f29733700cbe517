"""JSON-lines logging with the request's correlation id; libraries only call logging.getLogger.

`configure_logging` also throttles repeated identical warnings and errors (`RepeatThrottle`): a loop that
fails the same way every second logs its traceback once and then a count, not a traceback a second.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)

_STD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        cid = correlation_id.get()
        if cid:
            out["correlationId"] = cid
        for key, value in record.__dict__.items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class _PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        cid = correlation_id.get()
        line = super().format(record)
        return f"{line} [cid={cid}]" if cid else line


REPEAT_INTERVAL_S = 60.0
REPEAT_MAX_KEYS = 512
"""Distinct repeating messages tracked at once; beyond that new ones pass unthrottled (memory stays bounded)."""


@dataclass
class _Window:
    started: float
    suppressed: int = 0
    last: logging.LogRecord | None = None


class RepeatThrottle(logging.Filter):
    """Lets the first of identical WARNING+ records through, then counts copies for `interval` seconds.

    Identical means same logger, level, message template (not its arguments: "failed on a batch of %d"
    with any count is one message) and exception type. When the window has passed, the next record of
    any kind first emits a summary through `sink`, e.g. "... (repeated 57 times in the last 60 s)", built
    from the last copy without its traceback; `flush()` does the same for every pending window (at exit).
    """

    def __init__(
        self,
        sink: Callable[[logging.LogRecord], object],
        *,
        interval: float = REPEAT_INTERVAL_S,
        level: int = logging.WARNING,
        max_keys: int = REPEAT_MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.sink = sink
        self.interval = interval
        self.level = level
        self.max_keys = max_keys
        self.clock = clock
        self._windows: dict[tuple[str, int, str, str], _Window] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(record: logging.LogRecord) -> tuple[str, int, str, str]:
        exc = record.exc_info[0].__qualname__ if record.exc_info and record.exc_info[0] else ""
        return record.name, record.levelno, str(record.msg), exc

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_throttle_summary", False):
            return True
        now = self.clock()
        with self._lock:
            due = self._expire(now)
            passed = True
            if record.levelno >= self.level:
                key = self._key(record)
                window = self._windows.get(key)
                if window is not None:
                    window.suppressed += 1
                    window.last = record
                    passed = False
                elif len(self._windows) < self.max_keys:
                    self._windows[key] = _Window(now)
        for summary in due:
            self.sink(summary)
        return passed

    def flush(self) -> None:
        """Emit the counts of every window still open (nothing is lost at shutdown)."""
        with self._lock:
            due = self._expire(self.clock(), force=True)
        for summary in due:
            self.sink(summary)

    def _expire(self, now: float, *, force: bool = False) -> list[logging.LogRecord]:
        due: list[logging.LogRecord] = []
        for key, window in list(self._windows.items()):
            if now - window.started < self.interval and not force:
                continue
            del self._windows[key]
            if window.suppressed and window.last is not None:
                span = min(now, window.started + self.interval) - window.started
                due.append(_summary(window.last, window.suppressed, span))
        return due


def _summary(last: logging.LogRecord, count: int, span: float) -> logging.LogRecord:
    times = "once" if count == 1 else f"{count} times"
    summary = logging.makeLogRecord(last.__dict__)
    summary.msg = f"{last.getMessage()} (repeated {times} in the last {span:.0f} s)"
    summary.args = None
    summary.exc_info = summary.exc_text = summary.stack_info = None
    summary.repeated = count  # a field of its own in the JSON line
    summary._throttle_summary = True
    return summary


class _ThrottledHandler(logging.StreamHandler[IO[str]]):
    """stderr, with the repeat throttle; closing (logging.shutdown at exit) reports the pending counts."""

    def __init__(self, interval: float) -> None:
        super().__init__(sys.stderr)
        self.throttle = RepeatThrottle(self.handle, interval=interval)
        self.addFilter(self.throttle)

    def close(self) -> None:
        self.throttle.flush()
        super().close()


def configure_logging(
    service: str, level: str = "INFO", *, json: bool = True, repeat_interval: float = REPEAT_INTERVAL_S
) -> None:
    """Called once by a service main; replaces root handlers so every line has one format."""
    handler = _ThrottledHandler(repeat_interval)
    if json:
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(_PlainFormatter(f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Uvicorn's access log duplicates our request metrics; keep its errors.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


# ---------------------------------------------------------------- process log files

LOG_MAX_BYTES = 10 * 2**20
LOG_BACKUPS = 3


def open_process_log(
    path: Path, title: str, *, max_bytes: int = LOG_MAX_BYTES, backups: int = LOG_BACKUPS
) -> IO[bytes]:
    """Open a child process's log for appending, after a start marker line; never truncates.

    A file past `max_bytes` is first rotated to `.1` (`.1` to `.2`, ... up to `backups`), so the previous
    run's lines (its traceback) stay readable and the disk use stays bounded. Rotation happens here, at
    each (re)start: the running process writes straight to the file descriptor.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        size = 0
    if size > max_bytes and backups > 0:
        for i in range(backups - 1, 0, -1):
            older = path.with_name(f"{path.name}.{i}")
            if older.exists():
                older.replace(path.with_name(f"{path.name}.{i + 1}"))
        path.replace(path.with_name(f"{path.name}.1"))
    log = path.open("ab")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    log.write(f"----- {stamp} {title} -----\n".encode())
    log.flush()
    return log
