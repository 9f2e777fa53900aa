"""Engagement KPIs: known values (source in each comment) and invariants."""

import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from xl_kpis import completion_rate, ctr, engagement_rate, profile_visit_rate, total_views

counts = st.floats(min_value=0, max_value=1e9, allow_nan=False)


@pytest.mark.parametrize("args, expected", [
    # TikTok's definition (docs/kpi-definitions.md §1): (likes+comments+shares)/views
    ((300, 40, 60, 10_000), 0.04),
    # saves added as some tools do (julmil.com, shyftup.com)
    ((300, 40, 60, 10_000, 100), 0.05),
    # hand computed: 1+1+1 / 3
    ((1, 1, 1, 3), 1.0),
])
def test_engagement_rate_known_values(args, expected):
    assert engagement_rate(*args) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("fn, args, expected", [
    # P100 / plays (docs/kpi-definitions.md §1, completion rate)
    (completion_rate, (450, 1_000), 0.45),
    # profile visits / views (mLabs definition)
    (profile_visit_rate, (25, 1_000), 0.025),
    # destination clicks / impressions: 0.73% is Triple Whale's e-commerce average (§4)
    (ctr, (73, 10_000), 0.0073),
])
def test_rates_known_values(fn, args, expected):
    assert fn(*args) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("fn, args", [
    (engagement_rate, (1, 1, 1, 0)),
    (completion_rate, (0, 0)),
    (profile_visit_rate, (3, 0)),
    (ctr, (5, 0)),
])
def test_zero_denominator_is_nan(fn, args):
    assert math.isnan(fn(*args))


def test_total_views_ignores_blanks():
    # 1,200 + 800 (a blank cell is NaN in the core and is skipped, as SUM skips it)
    assert total_views([1_200, 800, float("nan")]) == 2000.0
    assert total_views([]) == 0.0
    with pytest.raises(ValueError, match="'views'"):
        total_views([1, -1])


@given(clicks=counts, extra=counts)
def test_ctr_is_a_fraction_when_clicks_do_not_exceed_impressions(clicks, extra):
    r = ctr(clicks, clicks + extra)
    assert math.isnan(r) or 0.0 <= r <= 1.0


@given(st.lists(st.tuples(counts, counts, counts, counts), min_size=1, max_size=20))
def test_engagement_array_call_equals_elementwise_calls(rows):
    cols = [np.array(c) for c in zip(*rows)]
    arr = engagement_rate(*cols)
    one = [engagement_rate(*r) for r in rows]
    np.testing.assert_array_equal(arr, np.array(one))
