"""Top products and content resonance tables."""

import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from xl_kpis import content_resonance, top_products


def test_top_products_ranks_by_revenue_with_pareto_shares():
    # hand computed: tee 30, mug 10+15=25, cap 5; total 60
    t = top_products(["mug", "tee", "mug", "cap"], [10, 30, 15, 5], n=3)
    assert t["product"].tolist() == ["tee", "mug", "cap"]
    assert t["revenue"].tolist() == [30.0, 25.0, 5.0]
    assert t["share"].tolist() == pytest.approx([0.5, 25 / 60, 5 / 60])
    assert t["cumulative_share"][-1] == pytest.approx(1.0)


def test_top_products_ties_keep_first_seen_order_and_n_limits():
    t = top_products(["b", "a", "c"], [5, 5, 1], n=2)
    assert t["product"].tolist() == ["b", "a"]


@pytest.mark.parametrize("n", [0, 1.5, -1, True])
def test_top_products_n_must_be_a_whole_number(n):
    with pytest.raises(ValueError, match="'n'"):
        top_products(["a"], [1], n=n)


def test_content_resonance_per_type():
    # unboxing: 1 video, 4,000 views, $300 -> $75 per 1,000 views;
    # tutorial: 2 videos, 4,000 views, $240 -> $60; ER = 200/4000 and 200/4000
    t = content_resonance(["tutorial", "unboxing", "tutorial"],
                          [1000, 4000, 3000], [80, 200, 120], [4, 10, 6], [100, 300, 140])
    assert t["content_type"].tolist() == ["unboxing", "tutorial"]
    assert t["videos"].tolist() == [1, 2]
    assert t["views"].tolist() == [4000.0, 4000.0]
    assert t["engagement_rate"].tolist() == [0.05, 0.05]
    assert t["orders"].tolist() == [10.0, 10.0]
    assert t["revenue_per_1000_views"].tolist() == [75.0, 60.0]


def test_content_resonance_type_without_views_has_undefined_rates():
    t = content_resonance(["live"], [0], [0], [0], [0])
    assert math.isnan(t["engagement_rate"][0]) and math.isnan(t["revenue_per_1000_views"][0])


def test_content_resonance_lengths_must_match():
    with pytest.raises(ValueError, match="same length"):
        content_resonance(["a", "b"], [1, 2], [1], [1, 2], [1, 2])


@given(st.lists(st.tuples(st.sampled_from(["x", "y", "z"]), st.floats(0, 1e6)), min_size=1))
def test_top_products_conserves_revenue(rows):
    names, amts = zip(*rows)
    t = top_products(list(names), list(amts), n=10)
    assert t["revenue"].sum() == pytest.approx(sum(amts), rel=1e-9, abs=1e-6)
    assert np.all(np.diff(t["revenue"]) <= 0)
