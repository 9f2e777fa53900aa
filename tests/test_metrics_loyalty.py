"""Order-line aggregates, repeat purchase rate and rating statistics."""

import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from xl_kpis import (average_rating, buyer_count, order_count, order_revenue,
                     positive_rating_share, repeat_purchase_rate, review_rate)


@pytest.mark.parametrize("buyers, orders, expected, why", [
    (["ann", "ann", "ann", "bob"], ["o1", "o1", "o2", "o3"], 0.5,
     "ann: 2 distinct orders (o1 spans two SKU lines), bob: 1 -> 1 of 2"),
    (["a", "b", "c"], ["1", "2", "3"], 0.0, "nobody came back"),
    (["a", "a", "b", "b"], ["1", "2", "3", "4"], 1.0, "everybody came back"),
    (["a", "a", None, ""], ["1", "2", "3", "4"], 1.0, "lines without a buyer are ignored"),
    (["a", "a", "b"], ["1", None, "3"], 0.0, "lines without an order (cancelled) are ignored"),
    ([1001.0, 1001, "1001"], ["x", "y", "z"], 1.0, "numeric ids read as the same buyer"),
])
def test_repeat_purchase_rate(buyers, orders, expected, why):
    # definition: customers with >= 2 orders / customers with >= 1 (firstpier.com)
    assert repeat_purchase_rate(buyers, orders) == expected


def test_repeat_purchase_rate_without_customers_is_nan_and_lengths_must_match():
    assert math.isnan(repeat_purchase_rate([], []))
    with pytest.raises(ValueError, match="same length"):
        repeat_purchase_rate(["a"], ["1", "2"])


def test_order_aggregates_count_each_order_once():
    # a TikTok Shop export repeats Order Amount on every SKU line (docs/tiktok-exports.md §B)
    ids = ["576", "576", "577", None]
    assert order_count(ids) == 2.0
    assert order_revenue(ids, [30.0, 30.0, 12.5, 99.0]) == 42.5
    assert buyer_count(["ann", "ann", "bob", "cy"], ids) == 2.0


def test_long_order_ids_are_not_merged():
    # 19-digit ids differ in the last digit; as floats they would collide
    ids = ["5764012345678901231", "5764012345678901232"]
    assert order_count(ids) == 2.0


@pytest.mark.parametrize("fn, ratings, expected", [
    (average_rating, [5, 4, float("nan"), 3], 4.0),   # (5+4+3)/3, blank ignored
    (positive_rating_share, [5, 4, 2, 1], 0.5),      # 2 of 4 reviews with 4-5 stars
    (positive_rating_share, [4, 4, 4], 1.0),
])
def test_rating_stats(fn, ratings, expected):
    assert fn(ratings) == expected


def test_rating_domain_and_empty():
    assert math.isnan(average_rating([float("nan")]))
    with pytest.raises(ValueError, match="between 1 and 5"):
        average_rating([6])


def test_review_rate():
    assert review_rate(12, 200) == 0.06   # 12 reviews on 200 delivered orders


@given(st.lists(st.tuples(st.sampled_from("abcdefg"), st.integers(0, 30)), min_size=1))
def test_repeat_rate_is_a_fraction_and_matches_a_plain_python_count(lines):
    buyers = [b for b, _ in lines]
    orders = [f"o{o}" for _, o in lines]
    got = repeat_purchase_rate(buyers, orders)
    per = {}
    for b, o in zip(buyers, orders):
        per.setdefault(b, set()).add(o)
    assert got == sum(len(v) >= 2 for v in per.values()) / len(per)
    assert 0.0 <= got <= 1.0


@given(st.lists(st.integers(1, 5), min_size=1))
def test_average_rating_within_bounds(r):
    assert 1.0 <= average_rating(np.array(r)) <= 5.0


# --- integer codes (what report --orders passes) count in linear time: same answers ------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_lines = st.lists(st.tuples(st.integers(-1, 6), st.integers(-1, 9), st.floats(0, 100)),
                  min_size=1, max_size=40)


def _plain(lines):
    """The KPIs computed in plain Python from (buyer, order, amount) lines; -1 is blank."""
    kept = [(b, o, a) for b, o, a in lines if o >= 0]
    orders = {o for _, o, _ in kept}
    first_amount = {}
    for _, o, a in kept:
        first_amount.setdefault(o, a)
    pairs = {(b, o) for b, o, _ in kept if b >= 0}
    per_buyer = {}
    for b, _ in pairs:
        per_buyer[b] = per_buyer.get(b, 0) + 1
    buyers = len(per_buyer)
    rpr = sum(n >= 2 for n in per_buyer.values()) / buyers if buyers else float("nan")
    return len(orders), sum(first_amount.values()), buyers, rpr


@settings(max_examples=200, deadline=None)
@given(lines=_lines, offset=st.sampled_from([0, 10**15]))
def test_codes_and_raw_integer_ids_agree_with_plain_python(lines, offset):
    # offset 10**15: integer ids far too large to count with bincount take the sorting path
    b = np.array([x if x < 0 else x + offset for x, _, _ in lines], dtype=np.int64)
    o = np.array([x if x < 0 else x + offset for _, x, _ in lines], dtype=np.int64)
    a = np.array([x for _, _, x in lines])
    n_orders, revenue, buyers, rpr = _plain(lines)
    assert order_count(o) == n_orders
    assert order_revenue(o, a) == pytest.approx(revenue, rel=1e-12, abs=1e-12)
    assert buyer_count(b, o) == buyers
    got = repeat_purchase_rate(b, o)
    assert (np.isnan(got) and np.isnan(rpr)) or got == pytest.approx(rpr)
