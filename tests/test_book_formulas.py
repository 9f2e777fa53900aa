"""The formula evaluator: whole-column (vectorised) evaluation equals row-by-row evaluation."""

from __future__ import annotations

from datetime import date, datetime, time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xl_kpis.book import formulas as fx

# Every kind of value a table cell can hold: blanks, numbers, text (numeric text, logical
# text, the empty string, a status), logicals, error values, dates and times.
CELL = st.one_of(
    st.none(),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.sampled_from([0, 1, -1, 0.5, 2.0, 1e300]),
    st.sampled_from(["", "a", "B", "Cancelled", "cancelled", "1,200", "5%", "TRUE", "false",
                     " ", "#N/A", "#DIV/0!", "#VALUE!"]),
    st.booleans(),
    st.sampled_from([date(2026, 1, 2), datetime(2026, 3, 4, 12, 30), time(6, 0)]),
)

COLUMNS = ("A", "B", "C")
OPERATORS = ("=", "<>", "<", ">", "<=", ">=", "+", "-", "*", "/")


def _leaf():
    return st.one_of(st.sampled_from([fx.This(c) for c in COLUMNS]),
                     CELL.filter(lambda v: v is not None).map(fx.Lit))


def _expr(depth: int = 2):
    if depth == 0:
        return _leaf()
    sub = _expr(depth - 1)
    return st.one_of(
        _leaf(),
        st.builds(fx.Op, st.sampled_from(OPERATORS), sub, sub),
        st.builds(lambda c, a, b: fx.F.IF(c, a, b), sub, sub, sub),
        st.builds(lambda c, a: fx.F.IF(c, a), sub, sub),
        st.builds(lambda a, b: fx.F.OR(a, b), sub, sub),
        st.builds(lambda a, b: fx.F.AND(a, b), sub, sub),
        st.builds(lambda a: fx.F.ISNUMBER(a), sub),
    )


def _row_by_row(expr: fx.Node, columns: dict, i: int):
    """One row evaluated alone: every this-row reference becomes a single-cell reference."""
    def lift(node):
        if isinstance(node, fx.This):
            return fx.Ref(node.header)
        if isinstance(node, fx.Call):
            return fx.Call(node.fn, tuple(lift(a) for a in node.args))
        if isinstance(node, fx.Op):
            return fx.Op(node.op, lift(node.left), lift(node.right))
        return node

    ev = fx.Evaluator(lambda t, h: columns[h], {}.__getitem__, lambda k, r, c: columns[k][i])
    return ev.cell(lift(expr))


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (np.isnan(a) and np.isnan(b))
    return type(a) is type(b) and a == b or (
        isinstance(a, (int, float)) and not isinstance(a, bool)
        and isinstance(b, (int, float)) and not isinstance(b, bool) and a == b)


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.tuples(CELL, CELL, CELL), min_size=1, max_size=12), expr=_expr())
def test_whole_column_evaluation_equals_row_by_row(rows, expr):
    columns = {c: [r[k] for r in rows] for k, c in enumerate(COLUMNS)}
    ev = fx.Evaluator(lambda t, h: columns[h], {}.__getitem__, lambda k, r, c: None,
                      headers={"T": COLUMNS})
    got = ev.column(expr, "T", len(rows))
    want = [_row_by_row(expr, columns, i) for i in range(len(rows))]
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert _same(g, w), (i, g, w, [columns[c][i] for c in COLUMNS])


# one value of every kind, for the exhaustive table below
KINDS = [None, 0, 1, -2.5, 1e300, "", "a", "A", "1,200", "TRUE", " ", "#N/A", "#DIV/0!",
         True, False, date(2026, 1, 2), time(6, 0)]


@pytest.mark.parametrize("op", OPERATORS)
def test_every_operator_on_every_pair_of_kinds(op):
    # each pair of value kinds on one row: the whole-column result equals row by row
    columns = {"A": [a for a in KINDS for _ in KINDS], "B": KINDS * len(KINDS), "C": None}
    expr = fx.Op(op, fx.This("A"), fx.This("B"))
    ev = fx.Evaluator(lambda t, h: columns[h], {}.__getitem__, lambda k, r, c: None)
    got = ev.column(expr, "T", len(columns["A"]))
    for i, g in enumerate(got):
        w = _row_by_row(expr, columns, i)
        assert _same(g, w), (columns["A"][i], op, columns["B"][i], g, w)


@pytest.mark.parametrize("fn", ["IF", "OR", "AND", "ISNUMBER"])
def test_every_function_on_every_kind(fn):
    columns = {"A": KINDS, "B": ["then"] * len(KINDS), "C": [0.0] * len(KINDS)}
    args = {"IF": (fx.This("A"), fx.This("B"), fx.This("C")),
            "OR": (fx.This("A"), fx.Op("=", fx.This("A"), fx.Lit("a"))),
            "AND": (fx.This("A"), fx.Op("=", fx.This("A"), fx.Lit("a"))),
            "ISNUMBER": (fx.This("A"),)}[fn]
    expr = fx.Call(fn, args)
    ev = fx.Evaluator(lambda t, h: columns[h], {}.__getitem__, lambda k, r, c: None)
    got = ev.column(expr, "T", len(KINDS))
    assert [_same(g, _row_by_row(expr, columns, i)) for i, g in enumerate(got)] == \
        [True] * len(KINDS)


@pytest.mark.parametrize("values", [
    [1.0, None, 3],                          # numbers and a blank
    ["x", None, "#N/A", ""],                 # text, a blank, an error, empty text
    [True, 2.5, "t", date(2026, 1, 1), None],  # everything mixed
])
def test_column_values_round_trip(values):
    # a column converted for whole-column work gives back the same cell values
    assert fx._Vec.of(values).values() == values


def test_unusual_values_fall_back_to_row_by_row():
    # a value that is no cell value (a list) cannot be vectorised; evaluation still works
    assert fx._Vec.of([[1], 2]) is None
    columns = {"A": [1.0, 2.0]}
    ev = fx.Evaluator(lambda t, h: columns[h], {}.__getitem__, lambda k, r, c: None)
    assert ev.column(fx.Op("+", fx.This("A"), fx.Lit(1)), "T", 2) == [2.0, 3.0]
