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
