"""The rules engine's SQL: every operator, function, aggregate and window parses and computes as eKuiper's
does (see the compiler's docstring for the documented differences); malformed SQL is refused with its line,
column and reason."""

from __future__ import annotations

import math
from typing import Any

import pytest

from rules_engine.application.sql.compiler import META, RuleSqlError, compile_condition, compile_query
from rules_engine.application.sql.windows import WindowKind, WindowSpec


def value(expr: str, row: dict[str, Any] | None = None) -> Any:
    q = compile_query(f"SELECT {expr} AS v FROM events")
    return q.project(row or {})["v"]


def where(cond: str, row: dict[str, Any]) -> Any:
    q = compile_query(f"SELECT * FROM events WHERE {cond}")
    assert q.where is not None
    return q.where(row)


def agg(expr: str, rows: list[dict[str, Any]]) -> Any:
    q = compile_query(f"SELECT {expr} AS v, count(*) AS n FROM events GROUP BY CountWindow(10)")
    return q.project(rows)["v"]


ROW = {"t": 35, "f": 2.5, "s": "pump-7", "b": True, "n": None, "deviceName": "pump-1"}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("t + 1", 36),
        ("t - 5", 30),
        ("t * 2", 70),
        ("t / 2", 17.5),
        ("t DIV 2", 17),
        ("t % 4", 3),
        ("-t", -35),
        ("f * 2", 5.0),
        ("t & 3", 3),
        ("t | 64", 99),
        ("t ^ 1", 34),
        ("~t", -36),
        ("t << 1", 70),
        ("(t + 1) * 2", 72),
        ("t + n", None),
        ("t / 0", None),
        ("s + 1", None),
        ("'a' = 'a'", True),
    ],
)
def test_arithmetic(expr: str, expected: Any) -> None:
    assert value(expr, ROW) == expected


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ("t > 30", True),
        ("t >= 35", True),
        ("t < 35", False),
        ("t <= 34", False),
        ("t = 35", True),
        ("t != 35", False),
        ("t <> 36", True),
        ("t BETWEEN 30 AND 40", True),
        ("t NOT BETWEEN 30 AND 40", False),
        ("t IN (1, 35)", True),
        ("t NOT IN (1, 35)", False),
        ("s IN ('pump-7', 'x')", True),
        ("s LIKE 'pump-%'", True),
        ("s LIKE 'pump-_'", True),
        ("s LIKE 'PUMP%'", False),
        ("s NOT LIKE 'valve%'", True),
        ("n IS NULL", True),
        ("t IS NOT NULL", True),
        ("b", True),
        ("NOT b", False),
        ("t > 30 AND s = 'pump-7'", True),
        ("t > 40 OR f < 3", True),
        ("t > 40 AND n > 1", False),  # FALSE AND NULL is FALSE
        ("t > 30 AND n > 1", None),  # TRUE AND NULL is NULL: not a match
        ("t > 30 OR n > 1", True),
        ("n > 1", None),
        ("s > 3", None),  # a string against a number is NULL, not an error
        ("deviceName = 'pump-1'", True),
    ],
)
def test_comparisons_and_logic(cond: str, expected: Any) -> None:
    assert where(cond, ROW) is expected


def test_case_both_forms() -> None:
    assert value("CASE WHEN t > 30 THEN 'hot' WHEN t > 20 THEN 'warm' ELSE 'cold' END", ROW) == "hot"
    assert value("CASE WHEN t > 50 THEN 'hot' END", ROW) is None
    assert value("CASE s WHEN 'pump-7' THEN 1 WHEN 'x' THEN 2 ELSE 0 END", ROW) == 1


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("abs(-3)", 3),
        ("ceil(2.1)", 3),
        ("floor(2.9)", 2),
        ("round(2.567, 2)", 2.57),
        ("round(2.5)", 2.0),
        ("sqrt(16)", 4.0),
        ("power(2, 10)", 1024),
        ("pow(2, 3)", 8),
        ("exp(0)", 1.0),
        ("ln(1)", 0.0),
        ("log(100)", 2.0),
        ("log(2, 8)", 3.0),
        ("mod(7, 3)", 1),
        ("sign(-5)", -1),
        ("sin(0)", 0.0),
        ("cos(0)", 1.0),
        ("atan2(0, 1)", 0.0),
        ("bitand(6, 3)", 2),
        ("bitor(4, 1)", 5),
        ("bitxor(3, 1)", 2),
        ("bitnot(0)", -1),
        ("sqrt(-1)", None),
        ("abs(s)", None),
        ("concat('a', 1, true)", "a1true"),
        ("lower('AbC')", "abc"),
        ("upper(s)", "PUMP-7"),
        ("length(s)", 6),
        ("numbytes('é')", 2),
        ("trim('  x ')", "x"),
        ("ltrim('  x ')", "x "),
        ("rtrim('  x ')", "  x"),
        ("startswith(s, 'pump')", True),
        ("endswith(s, '7')", True),
        ("indexof(s, '-')", 4),
        ("substring(s, 0, 4)", "pump"),
        ("substring(s, 5)", "7"),
        ("lpad('x', 2)", "  x"),
        ("rpad('x', 2)", "x  "),
        ("replace(s, 'pump', 'valve')", "valve-7"),
        ("split_value('a,b,c', ',', 1)", "b"),
        ("regexp_matches(s, '^p.*7$')", True),
        ("regexp_replace(s, '[0-9]', '#')", "pump-#"),
        ("regexp_substr(s, '[0-9]+')", "7"),
        ("format_float(f, 3)", "2.500"),
        ("coalesce(n, t)", 35),
        ("isnull(n)", True),
        ("cast(t AS float)", 35.0),
        ("cast('12' AS bigint)", 12),
        ("cast(t AS string)", "35"),
        ("cast('true' AS boolean)", True),
        ("meta(deviceName)", "pump-1"),
    ],
)
def test_functions(expr: str, expected: Any) -> None:
    got = value(expr, ROW)
    if isinstance(expected, float):
        assert got == pytest.approx(expected)
    else:
        assert got == expected


def test_meta_reads_the_event_document() -> None:
    doc = {"id": "e1", "tags": {"line": "2"}, "readings": [{"resourceName": "t", "value": "35", "units": "C"}]}
    row = {**ROW, META: doc}
    assert value("meta(tags)", row) == {"line": "2"}
    assert value("meta(t)", row) == {"resourceName": "t", "units": "C"}


ROWS = [{"t": 1}, {"t": 3}, {"t": None}, {"t": 8, "s": "last"}]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("avg(t)", 4.0),
        ("sum(t)", 12),
        ("min(t)", 1),
        ("max(t)", 8),
        ("count(t)", 3),
        ("count(*)", 4),
        ("stddev(t)", math.sqrt(((1 - 4) ** 2 + (3 - 4) ** 2 + (8 - 4) ** 2) / 3)),
        ("stddevs(t)", math.sqrt(((1 - 4) ** 2 + (3 - 4) ** 2 + (8 - 4) ** 2) / 2)),
        ("var(t)", ((1 - 4) ** 2 + (3 - 4) ** 2 + (8 - 4) ** 2) / 3),
        ("vars(t)", ((1 - 4) ** 2 + (3 - 4) ** 2 + (8 - 4) ** 2) / 2),
        ("median(t)", 3),
        ("percentile_cont(t, 0.5)", 3.0),
        ("percentile_cont(t, 0.25)", 2.0),
        ("percentile_disc(t, 0.5)", 3),
        ("first_value(t)", 1),
        ("last_value(t)", 8),
        ("collect(t)", [1, 3, None, 8]),
        ("max(t) - min(t)", 7),
        ("round(avg(t) * 10)", 40.0),
        ("s", "last"),  # a bare column in a group: the last row's value
    ],
)
def test_aggregates(expr: str, expected: Any) -> None:
    got = agg(expr, ROWS)
    if isinstance(expected, float):
        assert got == pytest.approx(expected)
    else:
        assert got == expected


@pytest.mark.parametrize(
    ("clause", "spec"),
    [
        ("TumblingWindow(ss, 10)", WindowSpec(WindowKind.TUMBLING, 10_000, 10_000)),
        ("TumblingWindow(ms, 500)", WindowSpec(WindowKind.TUMBLING, 500, 500)),
        ("TUMBLINGWINDOW(mi, 1)", WindowSpec(WindowKind.TUMBLING, 60_000, 60_000)),
        ("HoppingWindow(hh, 2, 1)", WindowSpec(WindowKind.HOPPING, 7_200_000, 3_600_000)),
        ("SlidingWindow(ss, 3)", WindowSpec(WindowKind.SLIDING, 3_000, 0)),
        ("SlidingWindow(ss, 3, 1)", WindowSpec(WindowKind.SLIDING, 3_000, 1_000)),
        ("CountWindow(5)", WindowSpec(WindowKind.COUNT, 5, 5)),
        ("CountWindow(5, 2)", WindowSpec(WindowKind.COUNT, 5, 2)),
        ("TumblingWindow(dd, 1), deviceName", WindowSpec(WindowKind.TUMBLING, 86_400_000, 86_400_000)),
    ],
)
def test_windows_parse_with_ekuipers_units(clause: str, spec: WindowSpec) -> None:
    q = compile_query(f"SELECT avg(t) FROM events GROUP BY {clause}")
    assert q.window == spec


def test_output_names_follow_ekuiper() -> None:
    q = compile_query(
        "SELECT t, avg(t), max(t) AS hottest, meta(deviceName), t + 1 FROM events GROUP BY CountWindow(2)"
    )
    assert [c.name for c in q.columns] == ["t", "avg", "hottest", "deviceName", "kuiper_field_4"]
    assert compile_query("SELECT * FROM events").output_names is None


def test_dispatch_hints() -> None:
    q = compile_query(
        "SELECT t FROM events WHERE deviceName = 'pump-1' AND t > 3 AND (f > 1 OR f < 0) AND x IS NOT NULL"
    )
    assert q.device == "pump-1"
    assert q.required == {"t", "f", "x"}
    q = compile_query("SELECT t FROM events WHERE t > 3 OR f > 1")
    assert (q.device, q.required) == (None, frozenset())


def test_condition_compiles_alone() -> None:
    assert compile_condition("t < 28", windowed=False)({"t": 20}) is True
    assert compile_condition("max(t) < 28", windowed=True)([{"t": 20}, {"t": 30}]) is False


@pytest.mark.parametrize(
    ("sql", "line", "column", "reason"),
    [
        ("SELECT t FROM events WHERE t >", 1, 30, "near '>'"),
        ("SELECT t FROM events WHERE t > 1 AND", 1, 34, "near 'AND'"),
        ("SELECT t FROM pumps", 1, 15, "unknown stream 'pumps'; known streams: events"),
        ("SELECT nope(t) FROM events", 1, 8, "unknown function nope()"),
        ("SELECT t FROM events\nWHERE t > 1 AND t < frob(2)", 2, 21, "unknown function frob()"),
        ("SELECT avg(t) FROM events GROUP BY TumblingWindow(10)", 1, 51, "needs a time unit (dd, hh, mi, ss, ms)"),
        ("SELECT avg(t) FROM events GROUP BY TumblingWindow(xx, 10)", 1, 51, "needs a time unit"),
        ("SELECT avg(t) FROM events GROUP BY TumblingWindow(ss, 0)", 1, 55, "must be a positive integer"),
        ("SELECT avg(t) FROM events GROUP BY HoppingWindow(ss, 10)", 1, 36, "HoppingWindow takes (unit, size, hop)"),
        ("SELECT avg(t) FROM events GROUP BY CountWindow(2, 3)", 1, 51, "must not exceed the count"),
        ("SELECT avg(t) FROM events GROUP BY SessionWindow(ss, 1, 2)", 1, 36, "SessionWindow is not supported"),
        ("SELECT avg(t) FROM events", 1, 8, "needs a window"),
        ("SELECT t FROM events WHERE avg(t) > 1", 1, 28, "not allowed in WHERE"),
        ("SELECT avg(max(t)) FROM events GROUP BY CountWindow(2)", 1, 12, "cannot be nested"),
        ("SELECT t FROM events GROUP BY deviceName", 1, 31, "GROUP BY needs a window"),
        ("SELECT t FROM events HAVING t > 1", 1, 29, "HAVING needs a window"),
        ("SELECT abs(t, 2) FROM events", 1, 16, "greater than the maximum number of supported arguments (1)"),
        ("SELECT indexof(s) FROM events", 1, 8, "indexof() takes 2 argument(s), got 1"),
        ("SELECT t FROM events ORDER BY t", 1, 31, "ORDER is not supported"),
        ("SELECT t FROM events a JOIN events b ON a.t = b.t", None, None, "JOINS is not supported"),
    ],
)
def test_malformed_sql_is_refused_with_position_and_reason(
    sql: str, line: int | None, column: int | None, reason: str
) -> None:
    with pytest.raises(RuleSqlError) as info:
        compile_query(sql)
    err = info.value
    assert err.status_code == 400
    assert reason in err.message
    if line is not None:
        assert (err.line, err.column) == (line, column), err.message
        assert f"line {line}, column {column}" in err.message


@pytest.mark.parametrize(
    "sql", ["", "   ", "DELETE FROM events", "SELECT 1 FROM events; SELECT 2 FROM events", "SELECT t"]
)
def test_not_a_single_select(sql: str) -> None:
    with pytest.raises(RuleSqlError):
        compile_query(sql)
