"""release_free_heap gives freed heap back where glibc is, and is harmless everywhere."""

from __future__ import annotations

import platform

from edgeplane_common.memory import release_free_heap


def test_release_free_heap() -> None:
    released = release_free_heap()
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert released is True
    else:
        assert released in (True, False)
