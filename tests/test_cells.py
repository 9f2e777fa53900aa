"""The Excel boundary: every input class x every UDF, without xlwings.

Expected cell values follow the rules in ``xl_kpis.cells`` (and the README's
"Conventions"): blank counts as 0 but all-blank gives blank, Excel-coercible
text is a number, other text / booleans / dates / error values give #VALUE!,
out-of-domain numbers give #NUM!, undefined results give #DIV/0!.
"""

import math
from datetime import datetime

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from xl_kpis import cells, udfs
from xl_kpis.cells import BLANK, DIV0, NA, NUM, VALUE
from xl_kpis.metrics._kpi import LazyCoded
from xl_kpis.metrics.predictive import BgNbd, GammaGamma, simulate_orders

# a valid value for each kind of argument domain
VALID = {"count": 10.0, "money": 100.0, "non-negative number": 2.0, "positive number": 100.0,
         "fraction": 0.4, "rating": 4.0, "labels": "a", "amount": 5.0, "months": 12.0,
         "unit": "weeks"}

UDFS = sorted(udfs.__all__)


def _order_history():
    """Order lines the CLV models can fit (drawn from known BG/NBD and Gamma-Gamma
    parameters), as the columns of a sheet: buyer, date (an Excel serial), amount, order id."""
    ids, days, amounts = simulate_orders(200, BgNbd(0.6, 5.0, 0.7, 2.5, 0.0),
                                         GammaGamma(6.0, 4.0, 15.0, 0.0), seed=2)
    serials = (days - np.datetime64("1899-12-30")).astype(np.int64).astype(float)
    return {"customer_ids": [[f"buyer{i}"] for i in ids.tolist()],
            "order_dates": [[x] for x in serials.tolist()],
            "order_amounts": [[round(a, 2)] for a in amounts.tolist()],
            "order_ids": [[f"o{k}"] for k in range(ids.size)],
            "as_of": float(serials.max())}


ORDERS = _order_history()


def is_model(name):
    """The UDFs that fit a model to order lines (their ranges are order histories)."""
    return any(dom.kind == "date" for _, dom, _ in spec(name).params)


def spec(name):
    return udfs.KPI_OF[name].__kpi__


def udf_params(name):
    """(udf parameter name, domain) pairs, positionally matched with the core KPI."""
    f = getattr(udfs, name)
    names = f.__code__.co_varnames[: f.__code__.co_argcount]
    return list(zip(names, [p[1] for p in spec(name).params]))


def range_args(name):
    """Whether the UDF takes ranges (aggregates, tables) rather than cells."""
    return spec(name).shape != "elementwise"


def base_args(name):
    """Valid arguments: plain numbers for element-wise UDFs, 2-row ranges for the others,
    an order history the models can fit for the model UDFs."""
    if is_model(name):
        return [ORDERS[core] if core in ORDERS else VALID[dom.name]
                for core, dom, _ in spec(name).params]
    out = []
    for pname, dom in udf_params(name):
        v = VALID[dom.name]
        if range_args(name) and pname != "top_n":
            out.append([[v], [v if dom.kind == "label" else v + 1]])
        else:
            out.append(v)
    return out


def put(args, i, value, name):
    """``args`` with argument ``i`` set to ``value`` (on every row of a range)."""
    args = list(args)
    args[i] = [[value]] * len(args[i]) if range_args(name) and isinstance(args[i], list) \
        else value
    return args


#: The tables of a fixed size (COHORT_RETENTION with its months): they keep it on blank
#: input and on errors, showing an error in their first value cell.
FIXED_SIZE = {"P_ALIVE_BUCKETS", "CLV_PARAMETERS", "COHORT_RETENTION"}


def call(name, args):
    """The UDF's result; a fixed-size table in error gives its error (the one error cell,
    checked to be alone among blanks and labels)."""
    with cells.strict():  # an unexpected exception fails the test instead of showing #VALUE!
        out = getattr(udfs, name)(*args)
    if name in FIXED_SIZE and isinstance(out, list):
        body = [v for row in out[1:] for v in row]
        errors = [v for v in body if isinstance(v, str) and v in cells.ERRORS]
        if errors:
            assert len(errors) == 1 and not any(isinstance(v, float) for v in body), out
            return errors[0]
    return out


def is_number(x):
    return isinstance(x, float) and math.isfinite(x)


@pytest.mark.parametrize("name", UDFS)
def test_valid_numbers_give_a_number_or_table(name):
    out = call(name, base_args(name))
    if spec(name).shape == "table":
        assert isinstance(out, list) and len(out) >= 2 and all(isinstance(h, str) for h in out[0])
    else:
        assert is_number(out), out


BAD = [("abc", "plain text"), (True, "boolean"), ("#N/A", "error value (err_to_str)"),
       ("#DIV/0!", "error value"), (datetime(2026, 1, 2), "date"), (" ", "blank-looking text")]


@pytest.mark.parametrize("name", UDFS)
@pytest.mark.parametrize("bad, why", BAD)
def test_non_numeric_input_anywhere_gives_value_error(name, bad, why):
    for i, (pname, dom) in enumerate(udf_params(name)):
        if dom.kind == "label" and isinstance(bad, str) and bad not in cells.ERRORS:
            continue  # text is a valid product name / buyer id
        if dom.kind in ("label", "date") and isinstance(bad, datetime):
            continue  # a date is a valid id (as text) and a valid date
        out = call(name, put(base_args(name), i, bad, name))
        assert out == VALUE, (pname, bad, out)


COERCED = [("1,200", 1200.0), ("$1,200.50", 1200.5), ("5%", 0.05), ("(3)", -3.0),
           (" 7 ", 7.0), ("1e2", 100.0), ("+4", 4.0), (".5", 0.5)]


@pytest.mark.parametrize("text, number", COERCED)
def test_text_excel_coerces_is_a_number(text, number):
    assert cells.to_number(text) == number


@pytest.mark.parametrize("text", ["abc", "1,2", "12,34,567", "$", "5%%", "(3", "--5", "1 2",
                                  "nan", "inf", "TRUE"])
def test_text_excel_does_not_coerce_is_value_error(text):
    assert cells.to_number(text) == VALUE


@pytest.mark.parametrize("name", [n for n in UDFS if not range_args(n)])
def test_coercible_text_equals_the_number(name):
    args = base_args(name)
    for i in range(len(args)):
        as_text = put(args, i, f"{args[i]:,}" if args[i] >= 1 else f"{args[i] * 100}%", name)
        assert call(name, as_text) == pytest.approx(call(name, args), rel=1e-12)


@pytest.mark.parametrize("name", [n for n in UDFS if not range_args(n)])
@pytest.mark.parametrize("blank", [None, ""])
def test_one_blank_counts_as_zero(name, blank):
    args = base_args(name)
    optional = {i for i, p in enumerate(spec(name).params) if i >= len(spec(name).required)}
    for i in range(len(args)):
        if blank is None and i in optional:
            continue  # a scalar None is an omitted optional argument, tested below
        assert call(name, put(args, i, blank, name)) == call(name, put(args, i, 0.0, name))


@pytest.mark.parametrize("name", UDFS)
@pytest.mark.parametrize("blank", [None, ""])
def test_all_blank_gives_blank(name, blank):
    n = len(udf_params(name))
    if range_args(name):
        args = [[[blank], [blank]]] * n
        if name == "TOP_PRODUCTS":
            args = args[:2]
    else:
        args = [[[blank]]] * n
    out = call(name, args)
    if name == "TOP_PRODUCTS":  # a fixed-size table: the header and 5 blank rows
        assert out[0][0] == "Product" and out[1:] == [[BLANK] * 4] * 5
        return
    if name in FIXED_SIZE and isinstance(out, list):   # its header, labels and blanks
        assert len(out) >= 2 and all(v == BLANK or (isinstance(v, str) and v[0].isalpha())
                                     for row in out[1:] for v in row), out
        return
    assert out in (BLANK, [[BLANK]]), out


AGGREGATES = [n for n in UDFS if spec(n).shape == "aggregate"]


@pytest.mark.parametrize("name", [n for n in AGGREGATES if len(udf_params(n)) > 1])
@pytest.mark.parametrize("blank", [None, ""])
def test_an_aggregate_with_one_range_blank_everywhere_is_not_measured(name, blank):
    # ORDER_REVENUE of orders without amounts, REPEAT_PURCHASE_RATE without buyers: blank
    # (not measured), never a measured-looking 0; the other ranges hold valid values
    args = base_args(name)
    # (the ranges are the required arguments; a blank option takes its default)
    assert is_number(call(name, args)), call(name, args)
    for i in range(len(spec(name).required)):
        assert call(name, put(args, i, blank, name)) == BLANK, udf_params(name)[i]


@pytest.mark.parametrize("name", UDFS)
def test_negative_where_the_domain_forbids_it_gives_num(name):
    for i, (pname, dom) in enumerate(udf_params(name)):
        if dom.kind == "label" or dom.lo is None:
            continue
        out = call(name, put(base_args(name), i, -1.0, name))
        assert out == NUM, (pname, out)


@pytest.mark.parametrize("name, i", [("CLV", 3), ("ROI", 2), ("BREAKEVEN_ROAS", 0),
                                     ("BREAKEVEN_ROAS", 1), ("DISCOUNTED_CLV", 1)])
def test_fraction_above_one_gives_num(name, i):
    assert call(name, put(base_args(name), i, 1.5, name)) == NUM


# Arguments with a zero denominator, one row per UDF that divides (the known value: #DIV/0!).
DIV0_CASES = [
    ("ROAS", [100, 0]), ("CTR", [3, 0]), ("ENGAGEMENT_RATE", [1, 2, 3, 0]),
    ("COMPLETION_RATE", [0, 0]), ("PROFILE_VISIT_RATE", [1, 0]), ("CONVERSION_RATE", [1, 0]),
    ("AOV", [10, 0]), ("CAC", [10, 0]), ("CPM", [1, 0]), ("CPC", [1, 0]), ("CPA", [1, 0]),
    ("ROI", [1, 0, 0.5]), ("BREAKEVEN_ROAS", [0]), ("DISCOUNTED_CLV", [10, 1, 0]),
    ("LTV_CAC", [10, 0]), ("CAC_PAYBACK", [10, 0]), ("REVIEW_RATE", [1, 0]),
    ("FOLLOWER_GROWTH_RATE", [0, 10]), ("SHARE_OF_VOICE", [0, 0]),
    ("SUPPORT_QUERY_RATE", [1, 0]),
    ("AVERAGE_RATING", [[[None], [None], [3.0]]]),
]


@pytest.mark.parametrize("name, args", DIV0_CASES)
def test_zero_denominator_gives_div0(name, args):
    if name == "AVERAGE_RATING":
        assert call(name, args) == 3.0
        return
    assert call(name, args) == DIV0


def test_every_elementwise_udf_is_covered_by_the_div0_table():
    no_division = {"CLV"}
    covered = {name for name, _ in DIV0_CASES if not range_args(name)}
    elementwise = {n for n in UDFS if not range_args(n)}
    assert elementwise == covered | no_division


# --- ranges and shapes -------------------------------------------------------------

def test_issue_example_column():
    assert udfs.ROAS([[100], [200], [None]], [[50], [0], [None]]) == [[2.0], [DIV0], [BLANK]]


def test_single_cell_broadcasts_against_a_column():
    assert udfs.ROAS([[100], [200]], [[50]]) == [[2.0], [4.0]]
    assert udfs.ROAS(300, [[100], [150]]) == [[3.0], [2.0]]


def test_row_and_column_broadcast_to_a_grid_like_excel():
    assert udfs.ROAS([[1, 2]], [[1], [2]]) == [[1.0, 2.0], [0.5, 1.0]]


def test_mismatched_ranges_give_na_where_they_do_not_overlap():
    assert udfs.ROAS([[1], [2], [3]], [[1], [1]]) == [[1.0], [2.0], [NA]]


def test_first_argument_in_error_wins():
    assert udfs.ROI("x", -1, 2) == VALUE
    assert udfs.ROI(-1, "x", 2) == NUM


def test_ragged_range_is_value_error():
    assert udfs.ROAS([[1], [2, 3]], 1) == VALUE


def test_one_dimensional_lists_give_a_flat_column():
    assert udfs.CTR([10, 20], [1000, 0]) == [0.01, DIV0]


def test_numpy_and_tuple_ranges_are_accepted():
    assert udfs.ROAS(np.array([[100.0], [50.0]]), ((50,), (25,))) == [[2.0], [2.0]]


def test_share_of_voice_competitors_across_columns():
    assert udfs.SHARE_OF_VOICE([[120], [0]], [[80, 100], [0, 0]]) == [[0.4], [DIV0]]
    assert udfs.SHARE_OF_VOICE([[1], [1]], [["x", 1], [None, None]]) == [[VALUE], [1.0]]


def test_optional_arguments_left_out_or_blank():
    assert udfs.CLV(50, 5, 1) == 250.0                      # margin omitted: revenue CLV
    assert udfs.CLV(50, 5, 1, 0.4) == pytest.approx(100.0)
    assert udfs.CLV([[50]], [[5]], [[1]], [[None]]) == [[0.0]]  # a blank margin cell is 0
    assert udfs.TOP_PRODUCTS([["a"], ["b"]], [[1], [2]])[1] == ["b", 2.0, 2 / 3, 2 / 3]
    assert udfs.TOP_PRODUCTS([["a"], ["b"]], [[1], [2]])[3:] == [[BLANK] * 4] * 3  # 5 rows
    assert len(udfs.TOP_PRODUCTS([["a"], ["b"]], [[1], [2]], 1)) == 2
    assert udfs.TOP_PRODUCTS([["a"]], [[1]], 0) == NUM


@pytest.mark.parametrize("rows", [1_048_576, 1e12, 1e308])
def test_a_table_never_spills_past_the_last_row_of_a_sheet(rows):
    # Excel's sheet has 1,048,576 rows (Microsoft, "Excel specifications and limits"): with
    # the header, at most 1,048,575 below it; more is #NUM! at once instead of a hang
    assert udfs.TOP_PRODUCTS([["a"]], [[1]], rows) == NUM
    assert udfs.CONTENT_RESONANCE([["a"]], [[1]], [[0]], [[0]], [[1]], rows) == NUM
    assert udfs.CONTENT_RESONANCE([[None]], [[None]], [[None]], [[None]], [[None]], rows) == NUM


def test_tables_skip_empty_rows_and_name_blank_labels():
    out = udfs.CONTENT_RESONANCE([["tutorial"], [None], [None]], [[100], [50], [None]],
                                 [[5], [5], [None]], [[1], [0], [None]], [[10], [0], [None]])
    assert [r[0] for r in out[1:]] == ["tutorial", "(blank)"]


def test_aggregate_ranges_of_different_sizes_are_value_error():
    assert udfs.REPEAT_PURCHASE_RATE([["a"], ["b"]], [["1"]]) == VALUE


def test_nan_and_inf_never_reach_a_cell():
    # NaN (only a Python caller can pass it) is a blank cell: it counts as 0 beside a number
    assert udfs.ROAS(float("nan"), 1) == 0.0
    assert udfs.ROAS(float("nan"), float("nan")) == BLANK
    assert udfs.ROAS(1e308, 1e-308) == NUM


cell_values = st.one_of(
    st.none(), st.just(""), st.booleans(), st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-10**6, 10**6), st.text(max_size=8), st.sampled_from(sorted(cells.ERRORS)),
    st.sampled_from(["1,200", "$3.50", "5%", "(2)"]))


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(UDFS), data=st.data())
def test_no_input_ever_raises_or_returns_nan(name, data):
    n = len(udf_params(name))
    shape = data.draw(st.sampled_from(["scalar", "column"]))
    if shape == "scalar" and not range_args(name):
        args = [data.draw(cell_values) for _ in range(n)]
    else:
        rows = data.draw(st.integers(1, 4))
        args = [[[data.draw(cell_values)] for _ in range(rows)] for _ in range(n)]
    out = call(name, args)
    flat = out if isinstance(out, list) else [out]
    while flat and isinstance(flat[0], list):
        flat = [v for row in flat for v in row]
    for v in flat:
        assert isinstance(v, str) or (isinstance(v, float) and math.isfinite(v)), (args, out)
        if isinstance(v, str) and v.startswith("#"):
            assert v in cells.ERRORS


def test_guard_turns_an_unexpected_bug_into_value_and_logs_it(caplog):
    def broken(*a):
        raise RuntimeError("bug")

    broken.__kpi__ = udfs.KPI_OF["ROAS"].__kpi__
    assert cells.elementwise(broken, [1.0, 2.0]) == VALUE
    assert "bug" in caplog.text
    with cells.strict(), pytest.raises(RuntimeError):
        cells.elementwise(broken, [1.0, 2.0])


# --- order lines in, a model out ---------------------------------------------------------------

@pytest.mark.parametrize("cell, days", [
    (45000.0, 45000 - 25569), (45000.75, 45000 - 25569),          # a serial; the time is dropped
    (datetime(2023, 3, 15, 18, 30), 45000 - 25569),               # classic xlwings' datetime
    ("2023-03-15", 45000 - 25569), ("2023-03-15 18:30", 45000 - 25569),
    ("45000", 45000 - 25569),                                      # numeric text, as Excel
])
def test_date_cells_become_days(cell, days):
    # 45000 is 2023-03-15 in Excel's 1900 date system (=DATE(2023,3,15) gives 45000)
    out, st = cells._dates([[cell]])
    assert st.tolist() == [0] and out.astype(np.int64).tolist() == [days]


@pytest.mark.parametrize("cell, error", [
    ("soon", VALUE), (True, VALUE), ("#N/A", VALUE), ("2023-02-30", VALUE), (60.0, NUM),
    (-1.0, NUM), (3e6, NUM), (float("inf"), NUM),
])
def test_bad_date_cells(cell, error):
    _, st = cells._dates([[cell]])
    assert {1: BLANK, 2: VALUE, 4: NUM}[int(st[0])] == error


def test_date_fast_path_equals_the_cell_by_cell_path():
    serials = np.array([[45000.2], [np.nan], [61.0], [60.0], [2958465.9]])
    fast = cells._dates(serials)
    slow = cells._dates(serials.tolist())
    np.testing.assert_array_equal(fast[0], slow[0])
    np.testing.assert_array_equal(fast[1], np.where(np.isnan(serials.ravel()), 1, slow[1]))


@pytest.mark.parametrize("serial", [np.nan, 45000.2, 59.0, -1.0])
def test_one_date_broadcast_is_read_as_the_column_it_stands_for(serial):
    # a column left out reaches a model as one blank broadcast: read once, not per row
    one = np.broadcast_to(np.float64(serial), (4, 1))
    got, want = cells._dates(one), cells._dates(np.full((4, 1), serial))
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def test_model_rows_with_a_blank_are_left_out_and_errors_win():
    b, d, a = (ORDERS[k] for k in ("customer_ids", "order_dates", "order_amounts"))
    with cells.strict():
        full = udfs.PREDICTED_CLV(b, d, a)
        # a line with a blank amount (a cancelled order) is left out like a missing line
        assert udfs.PREDICTED_CLV(b + [["late"]], d + [[d[-1][0]]], a + [[None]]) == full
        assert udfs.PREDICTED_CLV(b + [["x"]], d + [["soon"]], a + [[1.0]]) == VALUE
        assert udfs.PREDICTED_CLV(b + [["x"]], d + [[d[-1][0]]], a + [[-1.0]]) == NUM
        assert udfs.PREDICTED_CLV(b[:-1], d, a) == VALUE              # ranges of different sizes


@pytest.mark.parametrize("months, margin, discount, as_of, unit, expected", [
    (0, None, None, None, None, NUM), (2.5, None, None, None, None, NUM),
    (None, 1.5, None, None, None, NUM), (None, None, -0.1, None, None, NUM),
    (None, None, None, "soon", None, VALUE), (None, None, None, None, "months", VALUE),
    (None, None, None, None, 3, VALUE), ("twelve", None, None, None, None, VALUE),
])
def test_model_options_out_of_range(months, margin, discount, as_of, unit, expected):
    b, d, a = (ORDERS[k] for k in ("customer_ids", "order_dates", "order_amounts"))
    with cells.strict():
        assert udfs.PREDICTED_CLV(b, d, a, months, margin, discount, as_of, unit) == expected


def test_degenerate_order_histories_give_num_never_numbers():
    with cells.strict():
        one = udfs.PREDICTED_CLV([["ann"], ["ann"]], [[45000], [45010]], [[5], [6]])
        nobody_twice = udfs.PREDICTED_CLV([["a"], ["b"], ["c"]], [[45000], [45010], [45020]],
                                          [[5], [6], [7]])
        before_the_data = udfs.PREDICTED_CLV(ORDERS["customer_ids"], ORDERS["order_dates"],
                                             ORDERS["order_amounts"], None, None, None, 40000)
    assert one == nobody_twice == before_the_data == NUM


def test_aggregate_kpis_get_codes_of_the_ids_computed_once_per_shared_column():
    """An aggregate KPI over ids gets integer codes (blank -1, the others in the order they
    first appear); a read-only column, which every KPI of one book reads, is factorised once;
    the KPI is the same as over the texts."""
    import numpy as np

    from xl_kpis import cells
    from xl_kpis.metrics import buyer_count, repeat_purchase_rate

    labels = np.array(["b", "", "a", "b", " a"], dtype=object)
    assert cells._label_codes(labels).tolist() == [0, -1, 1, 0, 2]
    column = np.array([["ann"], ["bob"], ["ann"], [None], ["cy "]], dtype=object)
    orders = np.array([["1"], ["2"], ["3"], ["4"], ["5"]], dtype=object)
    column.flags.writeable = orders.flags.writeable = False
    labels, _ = cells._labels(column)
    assert cells._label_codes(labels) is cells._label_codes(labels)
    texts = [["ann"], ["bob"], ["ann"], [None], ["cy"]]
    got = cells.aggregate(repeat_purchase_rate, [column, orders])
    assert got == repeat_purchase_rate(["ann", "bob", "ann", "cy"], ["1", "2", "3", "5"]) == 1 / 3
    assert cells.aggregate(buyer_count, [texts, orders.tolist()]) == 3


# --- labels known by their codes (what the book's evaluator hands a UDF) ------------------

_LABEL_CELL = st.one_of(st.none(), st.sampled_from(["", "a", " a", "b ", "#N/A", "12", "x y"]),
                        st.floats(0, 100, allow_nan=False))


def _lazy(cells_):
    """A column of cells as :class:`LazyCoded` (text and blanks only; None: other cells)."""
    if any(not (v is None or isinstance(v, str)) for v in cells_):
        return None
    cats = list(dict.fromkeys(v for v in cells_ if v))
    codes = np.array([-1 if v is None else -2 if v == "" else cats.index(v) for v in cells_])
    return LazyCoded(codes, np.array(cats, dtype=object), (len(cells_), 1))


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(UDFS), data=st.data())
def test_labels_known_by_their_codes_give_what_the_labels_give(name, data):
    """A text column handed over as its codes (LazyCoded) gives every UDF the result the
    cells themselves give, in every argument: label arguments read the codes, any other
    argument (a number, an option) the labels, made for it."""
    rows = data.draw(st.integers(1, 4))
    plain, lazy = [], []
    for i, _ in enumerate(udf_params(name)):
        column = [data.draw(_LABEL_CELL) for _ in range(rows)]
        # a table's or a model's options are cells, not columns: its first range only
        coded = _lazy(column) if spec(name).shape in ("elementwise", "aggregate") or i == 0 \
            else None
        plain.append([[v] for v in column])
        lazy.append(plain[-1] if coded is None else coded)
    assert repr(call(name, lazy)) == repr(call(name, plain))


def test_an_aggregate_reads_labels_by_their_codes_and_never_makes_them():
    ids = _lazy(["o1", "o2", None, "o1", ""])
    assert udfs.ORDER_COUNT(ids) == 2.0 and ids._values is None
    # a label that reads as an error cannot be told by its code: the labels are made
    errs = _lazy(["o1", "#N/A"])
    assert udfs.ORDER_COUNT(errs) == VALUE == udfs.ORDER_COUNT([["o1"], ["#N/A"]])
    assert errs._values is not None


def test_labels_left_as_codes_where_the_labels_are_needed_are_caught(monkeypatch):
    # the comparison above can fail: hand the codes on everywhere (a planted defect) and an
    # amount column of blanks, or ids one of which reads as an error, are misread
    ids = [["o1"], ["o2"]]
    assert call("ORDER_REVENUE", [ids, [[None], [""]]]) == BLANK
    assert call("ORDER_COUNT", [[["o1"], ["#N/A"]]]) == VALUE
    monkeypatch.setattr(cells, "_without_lazy", lambda fn, args, kwargs: (args, kwargs))
    for name, args, want in [("ORDER_REVENUE", [ids, _lazy([None, ""])], BLANK),
                             ("ORDER_COUNT", [_lazy(["o1", "#N/A"])], VALUE)]:
        try:
            got = call(name, args)
        except Exception as e:      # strict: what the guard would show as #VALUE! in a cell
            got = e
        assert repr(got) != repr(want)
