"""The error responses every service documents come from one table."""

from __future__ import annotations

from edgeplane_common.http import ERROR_RESPONSES, error_responses
from edgeplane_common.models import BaseResponse


def test_a_selection_adds_401_and_500_in_status_order() -> None:
    selected = error_responses(503, 404)
    assert list(selected) == [401, 404, 500, 503]
    assert all(selected[code] is ERROR_RESPONSES[code] for code in selected)
    assert all(entry["model"] is BaseResponse and entry["description"] for entry in ERROR_RESPONSES.values())
