"""Process memory housekeeping."""

from __future__ import annotations

import asyncio
import ctypes
import gc


def release_free_heap() -> bool:
    """Collect garbage and give the heap pages freed so far back to the OS (glibc's `malloc_trim`); False where
    there is no glibc. Call it once a service has started: importing modules that have no bytecode cached
    (a fresh venv, PYTHONDONTWRITEBYTECODE) compiles them, and glibc keeps the memory that compiling freed
    (about 37 MB for device-opcua, whose asyncua imports 3 MB of generated source)."""
    gc.collect()
    return trim_heap()


def trim_heap() -> bool:
    """`malloc_trim(0)` alone (no garbage collection, so ~1 ms at most); False where there is no glibc."""
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the symbols the process has loaded: libc's among them
    except (OSError, AttributeError):  # musl, macOS, Windows: no malloc_trim
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    trim(0)
    return True


async def trim_heap_every(seconds: float) -> None:
    """`trim_heap()` every `seconds`, for a service whose work frees as much as it allocates, in blocks too small
    for their own mappings, so glibc's heap keeps what it could give back (the console: each page and chart
    update builds and drops JSON and element trees). Runs until cancelled."""
    while True:
        await asyncio.sleep(seconds)
        trim_heap()


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number


def map_large_blocks(threshold: int = 128 * 1024) -> bool:
    """Serve every allocation of `threshold` bytes or more with its own mapping, returned to the OS when freed
    (glibc's `mallopt(M_MMAP_THRESHOLD)`, which also stops glibc raising the threshold after such a free);
    False where there is no glibc. For a service that allocates large short-lived blocks: each argon2 hash
    takes 19 MiB, which glibc otherwise keeps in the heap afterwards (core-metadata: 121 -> 101 MB RSS)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))
