"""Presentation rules (numeric=true, aggregates), paging, durations and settings of core-data."""

from __future__ import annotations

import pytest

from core_data.application.pagination import check_range, check_time_range, page_of
from core_data.application.ports import AggregateGroup
from core_data.application.values import (
    AggregateFunc,
    aggregate_reading,
    event_with_numeric_values,
    numeric,
    query_flag,
    with_numeric_value,
)
from core_data.settings import CoreDataSettings
from edgeplane_common.durations import parse_retention_duration
from edgeplane_common.errors import ContractInvalid, RangeNotSatisfiable


def test_numeric_values() -> None:
    assert numeric("Int64", "-9223372036854775808") == -(2**63)
    assert numeric("Uint64", "18446744073709551615") == 2**64 - 1
    assert numeric("Float32", "2.15e+01") == 21.5
    assert numeric("Float64", "NaN") == "NaN"  # JSON has no NaN: the text stays
    assert with_numeric_value({"valueType": "Int8", "value": "7"}) == {"valueType": "Int8", "value": 7}
    same = {"valueType": "String", "value": "7"}
    assert with_numeric_value(same) is same
    assert with_numeric_value({"valueType": "Int8"}) == {"valueType": "Int8"}
    ev = {"id": "x", "readings": [{"valueType": "Float64", "value": "1.5"}, {"valueType": "Bool", "value": "true"}]}
    assert event_with_numeric_values(ev)["readings"] == [
        {"valueType": "Float64", "value": 1.5},
        {"valueType": "Bool", "value": "true"},
    ]
    assert ev["readings"][0]["value"] == "1.5", "the stored document is not modified"


def group(value_type: str, *values: str) -> AggregateGroup:
    g = AggregateGroup("d", "r", "p", value_type)
    for v in values:
        g.add(v)
    return g


@pytest.mark.parametrize(
    ("func", "value_type", "values", "expected"),
    [
        (AggregateFunc.SUM, "Int8", ("1", "-3"), ("Int64", -2)),
        (AggregateFunc.SUM, "Uint32", ("1", "3"), ("Uint64", 4)),
        (AggregateFunc.SUM, "Float32", ("1.5", "3"), ("Float64", 4.5)),
        (AggregateFunc.MIN, "Int16", ("5", "-7", "2"), ("Int64", -7)),
        (AggregateFunc.MAX, "Float64", ("5", "-7.5"), ("Float64", 5.0)),
        (AggregateFunc.AVG, "Int32", ("1", "2"), ("Float64", 1.5)),
        (AggregateFunc.COUNT, "Uint8", ("1", "2", "3"), ("Uint64", 3)),
        (AggregateFunc.COUNT, "Int8", (), ("Uint64", 0)),
        (AggregateFunc.AVG, "Int8", (), ("Int8", "")),
        (AggregateFunc.SUM, "String", ("a",), ("String", "")),
        (AggregateFunc.COUNT, "Bool", ("true",), ("Bool", "")),
    ],
)
def test_aggregate_results_as_edgex_4(
    func: AggregateFunc, value_type: str, values: tuple[str, ...], expected: tuple[str, object]
) -> None:
    out = aggregate_reading(group(value_type, *values), func)
    assert (out["valueType"], out["value"]) == expected
    assert type(out["value"]) is type(expected[1])
    assert (out["deviceName"], out["resourceName"], out["profileName"]) == ("d", "r", "p")


def test_aggregate_func_and_flags_parse() -> None:
    assert AggregateFunc.parse("avg") is AggregateFunc.AVG
    with pytest.raises(ContractInvalid, match="MIN, MAX, COUNT, SUM, AVG"):
        AggregateFunc.parse("median")
    assert query_flag("numeric", "TRUE") is True
    assert query_flag("numeric", None) is False
    with pytest.raises(ContractInvalid, match="numeric must be true or false"):
        query_flag("numeric", "yes")


def test_paging_as_edgex() -> None:
    assert page_of(0, 20, 1024).limit == 20
    assert page_of(5, -1, 1024).limit == 1024
    assert page_of(5, 1024, 1024).limit == 1024
    with pytest.raises(ContractInvalid, match="limit 5000 is out of range"):  # EdgeX: 400, not clamped
        page_of(5, 5000, 1024)
    skip = page_of(-1, 10, 1024)
    assert (skip.offset, skip.count_total) == (0, False)
    with pytest.raises(ContractInvalid):
        page_of(-2, 10, 100)
    with pytest.raises(ContractInvalid):
        page_of(0, -2, 100)
    check_range(0, 0)
    check_range(2, 3)
    with pytest.raises(RangeNotSatisfiable):
        check_range(3, 3)
    check_time_range(5, 5)
    with pytest.raises(ContractInvalid, match="end 4 is before start 5"):
        check_time_range(5, 4)


def test_retention_durations_with_days() -> None:
    assert parse_retention_duration("") == 0
    assert parse_retention_duration("0") == 0
    assert parse_retention_duration("30m") == 30 * 60 * 10**9
    assert parse_retention_duration("7d") == 7 * 86_400 * 10**9
    assert parse_retention_duration("1d12h") == 36 * 3600 * 10**9
    assert parse_retention_duration("1.5s") == 1_500_000_000
    with pytest.raises(ValueError, match="invalid duration"):
        parse_retention_duration("1w")


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    s = CoreDataSettings()
    assert (s.http.port, s.service_name, s.metadata_url) == (59880, "core-data", "http://127.0.0.1:59881")
    assert s.max_event_size == 25_000
    assert s.http.max_request_size > s.max_event_size * 1024
    monkeypatch.setenv("EDGEPLANE_METADATA_URL", "http://metadata:59881")
    monkeypatch.setenv("CORE_DATA_HTTP__HOST", "127.0.0.1")
    monkeypatch.setenv("CORE_DATA_RETENTION__DEFAULT_DURATION", "7d")
    monkeypatch.setenv("CORE_DATA_INGEST__CONSUMERS", "4")
    s = CoreDataSettings()
    assert s.metadata_url == "http://metadata:59881"
    assert (s.http.host, s.http.port) == ("127.0.0.1", 59880), "setting one HTTP field keeps the port"
    assert (s.retention.default_duration, s.ingest.consumers) == ("7d", 4)
    monkeypatch.setenv("CORE_DATA_METADATA_URL", "http://own:1")
    assert CoreDataSettings().metadata_url == "http://own:1"
    monkeypatch.setenv("CORE_DATA_RETENTION__DEFAULT_DURATION", "soon")
    with pytest.raises(ValueError, match="invalid duration"):
        CoreDataSettings()
