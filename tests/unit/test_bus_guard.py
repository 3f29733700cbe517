"""The bus guard's subject check remembers subjects it accepted: what it remembers must not widen what passes."""

from __future__ import annotations

import pytest

from edgeplane_common.bus.guard import UnsendableMessage, check_subject, max_subject_bytes


def test_a_subject_accepted_for_subscribing_is_still_refused_for_publishing() -> None:
    check_subject("edgex.guard-test.*", wildcards=True)
    check_subject("edgex.guard-test.*", wildcards=True)
    with pytest.raises(UnsendableMessage, match="wildcards"):
        check_subject("edgex.guard-test.*", wildcards=False)


def test_a_subject_accepted_under_a_larger_control_line_is_still_refused_under_the_default() -> None:
    long = "edgex." + "x" * max_subject_bytes()
    check_subject(long, wildcards=False, max_control_line=2 * len(long))
    with pytest.raises(UnsendableMessage, match="longer than"):
        check_subject(long, wildcards=False)


def test_a_refused_subject_stays_refused() -> None:
    for _ in range(2):
        with pytest.raises(UnsendableMessage, match="empty token"):
            check_subject("edgex..guard-test", wildcards=False)
