"""Where the EdgeX reference files (OpenAPI specs, sample profiles) are: read in place, never copied in.

Looked up in $EDGEPLANE_REFERENCE_DIR, then ../shared/reference next to the checkout, then
/work/shared/reference. Tests that need them are skipped, with the reason, when none is found."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def find_reference() -> Path | None:
    env = os.environ.get("EDGEPLANE_REFERENCE_DIR")
    candidates = [Path(env)] if env else []
    candidates += [ROOT.parent / "shared" / "reference", Path("/work/shared/reference")]
    return next((p for p in candidates if (p / "edgex-openapi" / "v4.0.2").is_dir()), None)


REFERENCE = find_reference()
MISSING_REASON = "EdgeX reference files not found (set EDGEPLANE_REFERENCE_DIR to shared/reference)"
needs_reference = pytest.mark.skipif(REFERENCE is None, reason=MISSING_REASON)
