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


# --- input columns as a columnar reader gives them (numpy arrays, text with its codes) ----

from xl_kpis import udfs  # noqa: E402
from xl_kpis.metrics._kpi import Coded, LazyCoded  # noqa: E402
from xl_kpis.xlsx.dates import to_serial  # noqa: E402

TEXT = st.sampled_from([None, "", "a", "A", " a", "b", "Cancelled", "cancelled", "1,200",
                        "TRUE", "#N/A"])
NUMBER = st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False), st.sampled_from([0.0, 1.0]))


def _coded(values: list, order: list[int], lie: bool = False) -> Coded:
    """``values`` as a reader gives a text column: an object array with its codes, the
    categories in some ``order``; ``lie`` gives the second category's values the first one's
    code (a planted defect: codes that do not describe the values)."""
    distinct = list(dict.fromkeys(v for v in values if v is not None))
    cats = [distinct[i] for i in sorted(range(len(distinct)), key=lambda i: order[i % len(order)])]
    codes = [-1 if v is None else cats.index(v) for v in values]
    if lie and len(cats) >= 2:
        codes = [0 if c == 1 else c for c in codes]
    return Coded(np.array(values, dtype=object), np.array(codes, dtype=np.int64),
                 np.array(cats, dtype=object))


def _array_columns(rows: list, order: list[int], lie: bool = False) -> dict:
    return {"A": _coded([r[0] for r in rows], order, lie),
            "B": _coded([r[1] for r in rows], order[::-1], lie),
            "C": np.array([np.nan if r[2] is None else r[2] for r in rows], dtype=np.float64)}


def _list_columns(rows: list) -> dict:
    """The same columns as a book stores them ("" is a blank cell)."""
    return {c: [None if r[k] == "" else r[k] for r in rows] for k, c in enumerate(COLUMNS)}


def _kpis_of(columns: dict, n: int, computed: bool) -> list:
    """A computed column (``IF(A="Cancelled","",B)``) and KPIs over the columns, as the KPIs
    sheet evaluates them: the aggregate UDFs get whole columns."""
    held: dict = {}

    def column(t, h):
        if h != "D":
            return columns[h]
        if "D" not in held:
            expr = fx.F.IF(fx.Op("=", fx.This("A"), fx.Lit("Cancelled")), "", fx.This("B"))
            held["D"] = (ev.column_values if computed else ev.column)(expr, "T", n)
        return held["D"]

    ev = fx.Evaluator(column, {}.__getitem__, lambda k, r, c: None)
    col = lambda h: fx.Column("T", h)  # noqa: E731
    calls = [fx.F.ORDER_COUNT(col("D")), fx.F.ORDER_COUNT(col("A")),
             fx.F.ORDER_REVENUE(col("D"), col("C")), fx.F.BUYER_COUNT(col("A"), col("D")),
             fx.F.REPEAT_PURCHASE_RATE(col("B"), col("A")), fx.F.SUM(col("C")),
             fx.F.COUNT(col("C"))]
    return [ev.cell(c) for c in calls] + [fx.column_array(column("T", "D")).tolist()]


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.tuples(TEXT, TEXT, NUMBER), min_size=1, max_size=12), expr=_expr(),
       order=st.permutations(range(12)))
def test_array_columns_evaluate_as_lists(rows, expr, order):
    """Columns as a reader gives them (arrays, text with its codes in any order of the
    categories) give what the same columns as lists give: per-row formulas and KPIs."""
    lists, arrays = _list_columns(rows), _array_columns(rows, order)
    want = fx.Evaluator(lambda t, h: lists[h], {}.__getitem__, lambda k, r, c: None,
                        headers={"T": COLUMNS}).column(expr, "T", len(rows))
    ev = fx.Evaluator(lambda t, h: arrays[h], {}.__getitem__, lambda k, r, c: None,
                      headers={"T": COLUMNS})
    got = fx.column_array(ev.column_values(expr, "T", len(rows))).tolist()
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert _same(g, w), (i, g, w, rows[i])
    got, want = _kpis_of(arrays, len(rows), True), _kpis_of(lists, len(rows), False)
    assert len(got) == len(want) and all(map(_same, got[:-1], want[:-1])), (got, want)
    assert got[-1] == want[-1]


def test_codes_that_do_not_describe_the_values_are_caught():
    # the comparison above fails when the codes lie (a planted defect): the evaluation
    # trusts them, so a reader's codes must describe its values
    rows = [("Cancelled", "x", 1.0), ("a", "y", 2.0), ("a", "x", 3.0)]
    lies = _array_columns(rows, list(range(12)), lie=True)
    assert _kpis_of(lies, 3, True) != _kpis_of(_list_columns(rows), 3, False)
    assert _kpis_of(_array_columns(rows, list(range(12))), 3, True) == \
        _kpis_of(_list_columns(rows), 3, False)


def test_a_text_column_reaches_a_udf_with_its_codes():
    # IF(A="Cancelled","",A) keeps A's categories (the empty text is code -2), and the
    # aggregate UDF gets them (no label is hashed again)
    ids = _coded(["o1", "o2", "o3", "o1"], list(range(12)))
    status = _coded(["Done", "Cancelled", "Done", "Done"], list(range(12)))
    columns = {"A": ids, "S": status}
    ev = fx.Evaluator(lambda t, h: columns[h], {}.__getitem__, lambda k, r, c: None)
    counted = ev.column_values(fx.F.IF(fx.Op("=", fx.This("S"), fx.Lit("Cancelled")), "",
                                       fx.This("A")), "T", 4)
    codes, cats = counted.cat
    assert cats is ids.parts[1] and codes.tolist() == [0, -2, 2, 0]
    arg = counted.column()
    assert isinstance(arg, LazyCoded) and arg.parts[0] is codes
    assert udfs.ORDER_COUNT(arg) == 2.0
    assert arg._values is None               # the count never made the labels
    assert arg.values.ravel().tolist() == ["o1", "", "o3", "o1"] and arg.values.parts is not None
    assert fx.column_array(counted).tolist() == ["o1", "", "o3", "o1"]


@pytest.mark.parametrize("values, want", [
    (np.array([1.5, np.nan, -2.0]), [1.5, None, -2.0]),
    (np.array(["2026-01-02T03:04:05", "NaT"], dtype="datetime64[s]"),
     [datetime(2026, 1, 2, 3, 4, 5), None]),
    (np.array(["x", None, ""], dtype=object), ["x", None, None]),
])
def test_array_columns_are_cell_values(values, want):
    # float NaN, NaT and "" are blank cells; a datetime64 is a date with its serial
    vec = fx._Vec.of(values)
    assert vec.values() == want
    if values.dtype.kind == "M":
        assert vec.num[0] == to_serial(want[0])


# --- the native evaluator ----------------------------------------------------------------

def _eval(node, names=None, cells=None):
    ev = fx.Evaluator(lambda t, h: [], (names or {}).__getitem__,
                      lambda k, r, c: (cells or {})[k])
    return ev.cell(node)


@pytest.mark.parametrize("node, expected", [
    (fx.F.SUM(fx.Lit(1), fx.Lit("2")), 3.0),
    (fx.F.IF(fx.Lit(0), "a", "b"), "b"),
    (fx.F.IF(fx.Lit("#N/A"), "a", "b"), "#N/A"),
    (fx.F.IF(fx.Lit("x"), "a", "b"), "#VALUE!"),
    (fx.F.OR(fx.Lit(False), fx.Lit(1)), True),
    (fx.F.ISNUMBER(fx.Lit("#DIV/0!")), False),
    (fx.F.ISNUMBER(fx.Lit("")), False),
    (fx.Op("/", fx.Lit(1), fx.Lit(0)), "#DIV/0!"),
    (fx.Op("+", fx.Lit(""), fx.Lit(1)), "#VALUE!"),
    (fx.Op("+", fx.Lit("1,200"), fx.Lit(1)), 1201.0),
    (fx.Op("=", fx.Lit("Cancelled"), fx.Lit("CANCELLED")), True),
    (fx.Op("<", fx.Lit(5), fx.Lit("a")), True),          # numbers sort before text
    (fx.Op(">", fx.Lit(True), fx.Lit("z")), True),       # logicals after text
    (fx.Op("=", fx.Lit("#N/A"), fx.Lit(1)), "#N/A"),
])
def test_native_functions(node, expected):
    assert _eval(node) == expected


def test_references_blank_and_ranges():
    cells = {"blank": None, "text": "5", "range": [[1.0], ["x"], [None], [True], [2]]}
    ref = fx.Ref
    assert _eval(ref("blank"), cells=cells) == 0.0           # =A1 of an empty cell shows 0
    assert _eval(fx.Op("=", ref("blank"), fx.Lit("")), cells=cells) is True
    assert _eval(fx.Op("=", ref("blank"), fx.Lit(0)), cells=cells) is True
    assert _eval(fx.F.SUM(ref("text")), cells=cells) == 0.0  # text in a reference: skipped
    assert _eval(fx.F.SUM(ref("range")), cells=cells) == 3.0
    assert _eval(fx.F.COUNT(ref("range")), cells=cells) == 2.0
    assert _eval(fx.F.OR(ref("range")), cells=cells) is True
    assert _eval(fx.F.SUM(fx.Lit(1), fx.Lit("#NUM!")), cells=cells) == "#NUM!"
    assert _eval(fx.F.IF(fx.Lit(True), ref("blank")), cells=cells) == 0.0
    assert _eval(fx.F.SUM(fx.Lit(1), fx.Lit(date(1900, 1, 1)))) == 3.0   # serial 2


def test_render():
    ctx = fx.RenderContext("KPIs", address=lambda k: {"a": ("KPIs", 4, 1),
                                                        "b": ("Start", 0, 27)}[k])
    assert fx.render(fx.F.CLV(fx.Ref("a"), fx.Ref("b"), 1.5, fx.Name("Margin")), ctx) == \
        "=CLV(B5,Start!$AB$1,1.5,Margin)"
    assert fx.render(fx.Op("/", fx.Op("+", fx.Lit(1), fx.Lit(2)), fx.Lit('say "hi"')),
                     ctx) == '=(1+2)/"say ""hi"""'
    assert fx.render(fx.Ref("a", 2, 3), fx.RenderContext("Other", address=ctx.address)) \
        == "=KPIs!$E$7"
    with pytest.raises(AttributeError, match="neither"):
        fx.F.VLOOKUP
