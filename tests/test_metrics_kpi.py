"""The KPI machinery: argument domains, validation messages, scalar/array results."""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from xl_kpis.metrics import _kpi
from xl_kpis.metrics._kpi import COUNT, FRACTION, kpi, safe_div


@kpi(a=COUNT, b=FRACTION)
def _ratio(a, b=0.5):
    return safe_div(a, b)


def test_scalars_in_give_a_python_float():
    out = _ratio(1, 0.5)
    assert type(out) is float and out == 2.0


def test_arrays_in_give_an_array_with_broadcasting():
    out = _ratio([1.0, 2.0, 3.0], 0.5)
    assert isinstance(out, np.ndarray) and out.tolist() == [2.0, 4.0, 6.0]
    out2 = _ratio([[1.0], [2.0]], [0.5, 0.25])
    assert out2.shape == (2, 2)


def test_keyword_and_default_arguments():
    assert _ratio(a=3) == 6.0
    assert _ratio(3, b=0.25) == 12.0


def test_zero_denominator_is_nan_not_inf_and_no_warning():
    with np.errstate(all="raise"):
        assert math.isnan(_ratio(1, 0))
        assert np.isnan(_ratio([1, 0], [0, 0])).all()


@pytest.mark.parametrize("args, kind, words", [
    (("x", 0.5), TypeError, ["_ratio", "'a'", "numeric", "'x'"]),
    ((True, 0.5), TypeError, ["'a'", "True"]),
    (([1, None, "y"], 0.5), TypeError, ["'a'", "'y'"]),
    ((-1, 0.5), ValueError, ["'a'", "count >= 0", "-1"]),
    ((1, 1.5), ValueError, ["'b'", "between 0 and 1", "1.5"]),
    (([1, 2, -3], 0.5), ValueError, ["'a'", "got -3.0"]),  # the value as a number, not np.float64(...)
])
def test_malformed_input_names_argument_rule_and_value(args, kind, words):
    with pytest.raises(kind) as e:
        _ratio(*args)
    for w in words:
        assert w in str(e.value)


def test_none_in_an_array_is_missing_and_propagates_as_nan():
    out = _ratio([1, None], 0.5)
    assert out[0] == 2.0 and math.isnan(out[1])


def test_spec_is_published_for_the_boundary():
    spec = _ratio.__kpi__
    assert spec.name == "_ratio" and spec.shape == "elementwise"
    assert [p[0] for p in spec.params] == ["a", "b"]
    assert spec.required == ("a",)


def test_domains_and_parameters_must_match():
    with pytest.raises(TypeError, match="domains and parameters differ"):
        @kpi(a=COUNT)
        def f(a, b):
            return a


_DOMAINS = [_kpi.COUNT, _kpi.MONEY, _kpi.POSITIVE, _kpi.FRACTION, _kpi.RATING, _kpi.MONTHS,
            _kpi.AMOUNT]
_EDGES = [math.nan, -math.inf, math.inf, -0.0, 0.0, 5e-324, -5e-324, 1.0, 1.0 - 2**-53,
          1.0 + 2**-52, 5.0, 5.0 + 2**-50, 120.0, 120.5, -1.0]


def _outcome(a: np.ndarray, dom) -> str | None:
    try:
        _kpi.check_domain("f", "x", a, dom)
    except ValueError as e:
        return str(e)
    return None


@pytest.mark.parametrize("dom", _DOMAINS, ids=lambda d: d.name)
def test_a_scalar_is_checked_as_the_same_value_in_an_array(dom):
    """Scalars take a shortcut (Python comparisons); it accepts and refuses exactly what the
    array path does, with the same message (NaN is never invalid, -0.0 is >= 0)."""
    for v in _EDGES:
        want = _outcome(np.array([v]), dom)
        assert _outcome(np.asarray(v), dom) == want, (dom.name, v)
        assert want is None or want.endswith(f"got {v!r}")


def test_float64_arrays_are_not_copied_on_the_way_in():
    a = np.arange(5, dtype=float)
    assert _kpi.as_float_array("f", "a", a) is a


_NEG_NAN = float(np.copysign(np.nan, -1.0))     # a NaN with its sign bit set


def _first_invalid(a: np.ndarray, dom) -> str | None:
    """The reference: the message naming the first value outside ``dom`` in C order, read
    one Python float at a time with the rule's own comparisons (NaN compares False)."""
    for v in a.ravel().tolist():
        if (dom.lo is not None and v < dom.lo) or (dom.hi is not None and v > dom.hi):
            return f"f: argument 'x' {dom.rule}, got {v!r}"
    return None


def _outside(dom) -> list[float]:
    """Values just outside ``dom`` and far outside it (none for an unbounded domain)."""
    out = []
    if dom.lo is not None:
        out += [float(np.nextafter(dom.lo, -np.inf)), -np.inf, -1e300]
    if dom.hi is not None:
        out += [float(np.nextafter(dom.hi, np.inf)), np.inf, 1e300]
    return out


def _inside(dom) -> list[float]:
    """Values inside ``dom``, NaN (not measured) and, where 0 is allowed, -0.0."""
    lo = -1e300 if dom.lo is None else dom.lo
    hi = 1e300 if dom.hi is None else dom.hi
    out = [lo, hi, (lo + hi) / 2, np.nan, _NEG_NAN]
    return out + ([-0.0] if lo <= 0.0 <= hi else [])


@settings(max_examples=300, deadline=None)
@given(dom=st.sampled_from(_DOMAINS), data=st.data(),
       shape=hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=40),
       view=st.sampled_from(["contiguous", "reversed", "every other", "transposed"]))
def test_the_array_check_names_the_first_invalid_value_as_a_plain_loop_does(dom, data, shape,
                                                                           view):
    """check_domain's reductions accept and refuse exactly what a loop over the values does,
    naming the same (first, in C order) value: over edge values (signed zeros and NaNs,
    infinities, subnormals, the bounds and their neighbours) and any float, in contiguous
    arrays and in views, with a value outside the domain planted at a drawn place in half
    the cases, so both verdicts are drawn."""
    values = st.sampled_from(_EDGES + [_NEG_NAN] + _inside(dom) + _outside(dom)) | st.floats()
    a = data.draw(hnp.arrays(np.float64, shape, elements=values))
    if _outside(dom) and data.draw(st.booleans()):
        a.flat[data.draw(st.integers(0, a.size - 1))] = data.draw(st.sampled_from(_outside(dom)))
    a = {"contiguous": a, "reversed": a[::-1], "every other": a[::2],
         "transposed": a.T}[view]
    assert _outcome(a, dom) == _first_invalid(a, dom)


_SIZES = [1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129,
          8191, 8192, 8193, 16384, 65537]


@pytest.mark.parametrize("dom", [d for d in _DOMAINS if _outside(d)], ids=lambda d: d.name)
def test_a_value_planted_anywhere_in_a_long_array_is_found(dom):
    """Arrays of many sizes (around SIMD widths, unrolled loops and numpy's 8,192-value
    buffers) hold only valid values, NaNs of both signs and -0.0 where 0 is allowed: they
    pass.  One value outside the domain planted at the start, on either side of every
    such boundary or at the very end fails them, naming that value."""
    inside = np.array(_inside(dom))
    for n in _SIZES:
        a = np.resize(inside, n)
        assert _outcome(a, dom) is None, n
        for at in sorted({0, n - 1} | {k + d for k in _SIZES if k < n for d in (-1, 0)}):
            for bad in _outside(dom):
                b = a.copy()
                b[at] = bad
                assert _outcome(b, dom) == f"f: argument 'x' {dom.rule}, got {bad!r}", \
                    (n, at, bad)


@pytest.mark.parametrize("dom", _DOMAINS, ids=lambda d: d.name)
def test_a_python_number_is_checked_and_computed_as_an_array_is(dom):
    """A plain float or int skips the array conversion (a numpy scalar goes to the body): it
    is accepted or refused exactly as the same value in a 0-d array and in a list, with the
    same message, and gives the same number."""
    @kpi(x=dom)
    def f(x):
        return x * 2.0 + 1.0

    def outcome(v):
        try:
            out = f(v)
        except ValueError as e:
            return str(e)
        return np.asarray(out).ravel().tolist()

    for v in _EDGES + [_NEG_NAN, 0, 1, -1, 3, 2**70, -2**70]:
        want = outcome(np.asarray(float(v)))
        assert repr(outcome(v)) == repr(want) == repr(outcome([v])), (dom.name, v)
        if isinstance(want, list):              # accepted: a Python float, as before
            assert type(f(v)) is float


def test_a_domain_error_in_a_clv_column_names_the_first_bad_value():
    # the whole path of a column (float64, no copy) through the decorator: the first
    # argument in error is named with its first invalid value
    from xl_kpis.metrics import clv
    a, r, t = np.full(70_000, 50.0), np.full(70_000, 2.0), np.full(70_000, 1.0)
    r[[8192, 69_999]] = [-0.5, -2.0]
    t[0] = -1.0
    r[100], t[5] = -0.0, _NEG_NAN               # accepted: not below 0, not measured
    with pytest.raises(ValueError, match=r"^clv: argument 'repeat' must be >= 0, got -0\.5$"):
        clv(a, r, t)
    r[[8192, 69_999]] = 2.0
    with pytest.raises(ValueError, match=r"^clv: argument 'retention' .* got -1\.0$"):
        clv(a, r, t)
    t[0] = 1.0
    out = clv(a, r, t)
    assert out[100] == 0.0 and np.isnan(out[5]) and out[6] == 100.0


# --- identifiers: one normalisation whatever the size --------------------------------------

from xl_kpis.metrics import buyer_count  # noqa: E402

_SPACE = "".join(chr(i) for i in range(0x3001) if chr(i).isspace())
_TEXT = st.text(alphabet=st.sampled_from("ab1" + _SPACE), max_size=4)


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(_TEXT, min_size=1, max_size=12), repeat=st.sampled_from([1, 200]))
def test_text_ids_are_stripped_whatever_the_size(texts, repeat):
    """Lists and numpy arrays of text, small or past the vectorised path (> 1,000 values):
    every id is the text stripped of white space, as str.strip does."""
    column = texts * repeat
    want = [t.strip() for t in column]
    assert list(_kpi.as_labels("f", "ids", column)) == want
    assert list(_kpi.as_labels("f", "ids", np.array(column, dtype=str))) == want


def test_buyer_count_does_not_change_past_the_vectorised_size():
    # " ann" and "ann " are one buyer (ids are compared stripped), in 3 lines and in 3,000
    buyers, orders = [" ann", "ann ", "bob"], ["1", "2", "3"]
    assert buyer_count(buyers, orders) == 2
    assert buyer_count(buyers * 1000, [f"{o}-{i}" for i in range(1000) for o in orders]) == 2


# --- labels that carry their codes (a columnar reader's factorisation) --------------------

from xl_kpis.metrics import (order_count, order_revenue,  # noqa: E402
                             repeat_purchase_rate, top_products)

_LABEL = st.one_of(st.none(), _TEXT)


def _coded(values: list, order: list[int], lie: bool = False) -> _kpi.Coded:
    """``values`` with codes into their distinct values in some ``order`` (None: code -1);
    ``lie`` gives the second category's values the first one's code, a planted defect."""
    distinct = list(dict.fromkeys(v for v in values if v is not None))
    cats = [distinct[i] for i in sorted(range(len(distinct)),
                                        key=lambda i: order[i % len(order)])]
    codes = [-1 if v is None else cats.index(v) for v in values]
    if lie and len(cats) >= 2:
        codes = [0 if c == 1 else c for c in codes]
    return _kpi.Coded(np.array(values, dtype=object), codes, np.array(cats, dtype=object))


def _kpis(ids, buyers, amounts) -> list:
    return [order_count(ids), order_revenue(ids, amounts), buyer_count(buyers, ids),
            repeat_purchase_rate(buyers, ids),
            top_products(ids, amounts, 3).tolist()]


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(_LABEL, _LABEL, st.floats(0, 1e6)), min_size=1, max_size=15),
       order=st.permutations(range(15)))
def test_coded_labels_are_the_labels(rows, order):
    """Labels with their codes (categories in any order, unstripped, blank) are read as the
    labels themselves: the same labels, the same factorisation, the same KPIs."""
    ids, buyers = [r[0] for r in rows], [r[1] for r in rows]
    amounts = np.array([r[2] for r in rows])
    coded = _coded(ids, order)
    plain = np.array(ids, dtype=object)
    labels = _kpi.as_labels("f", "ids", coded)
    assert labels.tolist() == _kpi.as_labels("f", "ids", plain).tolist()
    assert [a.tolist() for a in _kpi.factorize(labels)] == \
        [a.tolist() for a in _kpi.factorize(_kpi.as_labels("f", "ids", plain))]
    c, distinct = _kpi.label_codes(coded)
    assert [distinct[k] if k >= 0 else "" for k in c.tolist()] == labels.tolist()
    assert _kpi.present(labels).tolist() == [t != "" for t in labels.tolist()]
    got = _kpis(coded, _coded(buyers, order[::-1]), amounts)
    want = _kpis(plain, np.array(buyers, dtype=object), amounts)
    assert got[:4] == pytest.approx(want[:4], nan_ok=True) and repr(got[4]) == repr(want[4])


def test_codes_that_lie_give_other_kpis():
    # the comparison above is not vacuous: codes that do not describe the values (a
    # planted defect) change the KPIs, because they are trusted
    ids = ["o1", "o1", "o2", None]
    buyers = ["ann", "bob", "ann", "cy"]
    amounts = np.array([5.0, 5.0, 7.0, 1.0])
    honest = _kpis(_coded(ids, [0, 1]), _coded(buyers, [0, 1, 2]), amounts)
    assert honest[:4] == _kpis(np.array(ids, dtype=object), np.array(buyers, dtype=object),
                               amounts)[:4]
    assert _kpis(_coded(ids, [0, 1]), _coded(buyers, [0, 1, 2], lie=True), amounts) != honest


def test_a_view_of_coded_labels_has_no_codes():
    # the codes describe exactly the array made with them: a slice is plain labels
    ids = _kpi.Coded(np.array(["b", None, "a "], dtype=object), [0, -1, 1], ["b", "a "])
    assert _kpi.label_codes(ids[1:]) is None and ids[1:].parts is None
    assert _kpi.as_labels("f", "ids", ids[1:]).tolist() == ["", "a"]
    with pytest.raises(ValueError, match="2 codes"):
        _kpi.Coded(np.array(["b", "a"], dtype=object)[:1], [0, 1], ["b", "a"])


def test_first_indices_are_in_line_order():
    # whatever the numbering of the ids, their first lines in the lines' order (a sum over
    # them adds in that order); by hand: 7 first on line 0, 2 on line 1, 5 on line 3
    assert _kpi.first_indices(np.array([7, 2, 7, 5, 2])).tolist() == [0, 1, 3]
    assert _kpi.first_indices(np.array([1, 0, 1, 2])).tolist() == [0, 1, 3]


def test_plain_categories_are_taken_as_they_are():
    # ids of digits a reader marked plain give the codes and labels a pass over them gives
    ids, codes = ["20", "3", None, "20"], [0, 1, -1, 0]
    cats = np.array(["20", "3"], dtype=object)
    marked = _kpi.Coded(np.array(ids, dtype=object), codes, _kpi.mark_plain(cats.copy()))
    looked_at = _kpi.Coded(np.array(ids, dtype=object), codes, cats)
    got, want = _kpi.label_codes(marked), _kpi.label_codes(looked_at)
    assert [a.tolist() for a in got] == [a.tolist() for a in want] == [[0, 1, -1, 0], ["20", "3"]]
    assert got[1] is marked.parts[1] and not got[1].flags.writeable
    # the mark is trusted (the comparison above can fail): categories that are not plain,
    # marked so, are misread ("  20" is not stripped, "" is not blank)
    lie = np.array(["  20", ""], dtype=object)
    told = _kpi.label_codes(_kpi.Coded(np.array(["  20", ""], dtype=object), [0, 1], lie))
    misread = _kpi.label_codes(_kpi.Coded(np.array(["  20", ""], dtype=object), [0, 1],
                                          _kpi.mark_plain(lie.copy())))
    assert [a.tolist() for a in told] == [[0, -1], ["20"]]
    assert [a.tolist() for a in misread] != [a.tolist() for a in told]
